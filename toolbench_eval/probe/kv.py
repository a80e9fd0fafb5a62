"""Seeded key-value retrieval prompts (the "Lost in the Middle" KV task, small-model sized).

A sample is K unique key-value pairs of UUID-like hex strings in a JSON object, an instruction and the
query key. The target pair is moved to a chosen index while the other pairs keep their order, so the
same sample number at two positions differs only in where the target sits (a paired design: position
effects are not confounded with which strings were drawn).

The instruction is the one of Liu et al.'s KV retrieval prompt. Keys and values are short hex strings
with a dash every 4 digits ("4f2a-91c3"): a 135M model can copy 8 such digits, not a 36-character UUID.

>>> sample = make_sample(num_pairs=4, target_index=2, sample=0, seed=0)
>>> sample.pairs[2] == (sample.key, sample.value)
True
>>> sample.text.count(sample.value)
1
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toolbench_eval.errors import UserError

INSTRUCTION = "Extract the value corresponding to the specified key in the JSON object below."
PROMPT_STYLES = ("chat", "plain")
HEX_DIGITS = "0123456789abcdef"
QUESTION_MARKER = "\n\nKey: "  # what follows the JSON data; nothing before it contains this text


@dataclass(frozen=True)
class KVFormat:
    """Shape of the random strings: hex digits per key/value, a dash every `group` digits."""

    key_digits: int = 8
    value_digits: int = 8
    group: int = 4

    def __post_init__(self) -> None:
        if self.key_digits < 4 or self.value_digits < 4:
            raise UserError("--key-digits/--value-digits: need at least 4 hex digits (fewer repeat too often)")
        if self.group < 1:
            raise UserError(f"--group: a dash every N digits needs N >= 1, got {self.group}")


@dataclass(frozen=True)
class KVSample:
    """One retrieval question: the pairs in prompt order, the target index and the user text."""

    pairs: tuple[tuple[str, str], ...]
    target_index: int
    sample: int

    @property
    def key(self) -> str:
        return self.pairs[self.target_index][0]

    @property
    def value(self) -> str:
        return self.pairs[self.target_index][1]

    @property
    def data(self) -> str:
        """The JSON object, one pair per line (Liu et al.'s layout)."""
        return json.dumps(dict(self.pairs), indent=1)

    @property
    def text(self) -> str:
        """The whole user message: instruction, JSON data and the query key."""
        return f'{INSTRUCTION}\n\nJSON data:\n{self.data}{QUESTION_MARKER}"{self.key}"\nCorresponding value:'

    def target_char_offset(self) -> int:
        """Character offset of the target pair's line (its opening quote) inside `text`."""
        offset = self.text.index(f'"{self.key}": ')
        return offset

    def question_char_offset(self) -> int:
        """Character offset of the text after the JSON data (the blank line before the query key)."""
        return self.text.index(QUESTION_MARKER)


@dataclass(frozen=True)
class RenderedPrompt:
    """A sample as the model sees it: token ids, the text they encode, and where the target sits."""

    token_ids: tuple[int, ...]
    text: str
    target_token: int  # index of the first token of the target pair's line
    question_token: int = 0  # index of the first token after the data (where a position gap goes)

    @property
    def target_distance(self) -> int:
        """Tokens between the target's first token and the last prompt token (whose query makes the
        first answer token): the relative distance RoPE sees when the answer starts."""
        return len(self.token_ids) - 1 - self.target_token


def random_hex(rng: np.random.Generator, digits: int, group: int) -> str:
    """`digits` random hex digits with a dash every `group` of them.

    >>> random_hex(np.random.default_rng(0), 8, 4)
    'da84-4010'
    """
    chars = "".join(HEX_DIGITS[i] for i in rng.integers(0, 16, size=digits))
    return "-".join(chars[i : i + group] for i in range(0, digits, group))


def draw_pairs(num_pairs: int, sample: int, seed: int, fmt: KVFormat = KVFormat()) -> list[tuple[str, str]]:
    """K pairs for sample `sample`: all strings distinct and none a substring of another.

    Depends only on (seed, K, sample, fmt), not on the target index, so every position of a sample
    uses the same strings.
    """
    if num_pairs < 1:
        raise UserError(f"--num-pairs: need at least 1 pair, got {num_pairs}")
    rng = np.random.default_rng([seed, num_pairs, sample, fmt.key_digits, fmt.value_digits, fmt.group])
    pairs: list[tuple[str, str]] = []
    seen: list[str] = []
    while len(pairs) < num_pairs:
        key = random_hex(rng, fmt.key_digits, fmt.group)
        value = random_hex(rng, fmt.value_digits, fmt.group)
        # A value that also occurs inside another string would make "appears exactly once" false.
        if key == value or any(key in s or s in key or value in s or s in value for s in seen):
            continue
        pairs.append((key, value))
        seen += [key, value]
    return pairs


def make_sample(
    num_pairs: int, target_index: int, sample: int, seed: int = 0, fmt: KVFormat = KVFormat()
) -> KVSample:
    """Sample number `sample` of a (K, target index) cell; the target is the first pair drawn."""
    if not 0 <= target_index < num_pairs:
        raise UserError(f"--positions: target index {target_index} is outside 0..{num_pairs - 1} for K={num_pairs}")
    target, *others = draw_pairs(num_pairs, sample, seed, fmt)
    pairs = others[:target_index] + [target] + others[target_index:]
    return KVSample(tuple(pairs), target_index, sample)


def spread_positions(spec: str | int | Sequence[int], num_pairs: int) -> list[int]:
    """Target indices for K pairs: an int N means N evenly spaced indices from first to last;
    a comma list ("0,4,9") is taken as given (indices past the end are an error).

    >>> spread_positions(8, 20)
    [0, 3, 5, 8, 11, 14, 16, 19]
    >>> spread_positions("0,4,9", 10)
    [0, 4, 9]
    >>> spread_positions(3, 2)
    [0, 1]
    """
    if isinstance(spec, str):
        text = spec.strip()
        try:
            if "," not in text:
                return spread_positions(int(text), num_pairs)
            indices = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise UserError(f"--positions: expected a count (8) or indices (0,4,9), got {spec!r}") from None
        return spread_positions(indices, num_pairs)
    if isinstance(spec, int):
        if spec < 1:
            raise UserError(f"--positions: need at least one position, got {spec}")
        if spec == 1:
            return [0]
        return sorted({round(i * (num_pairs - 1) / (spec - 1)) for i in range(spec)})
    indices = sorted({int(i) for i in spec})
    bad = [i for i in indices if not 0 <= i < num_pairs]
    if bad:
        raise UserError(f"--positions: indices {bad} are outside 0..{num_pairs - 1} for K={num_pairs}; "
                        "give a count instead (e.g. --positions 8) to spread them over every K")
    return indices


def render_prompt(sample: KVSample, tokenizer, style: str = "chat", cue: bool = True) -> RenderedPrompt:
    """Token ids of a sample: `chat` renders the user message with the tokenizer's chat template and
    the generation prompt; `plain` is the text followed by a newline, with the tokenizer's special
    tokens. `cue` starts the answer with the target's JSON line up to the value's opening quote
    (``"KEY": "``), so the model answers with the value itself and a closing quote.
    """
    if style not in PROMPT_STYLES:
        raise UserError(f"--prompt-style: choose one of {', '.join(PROMPT_STYLES)}, got {style!r}")
    body = sample.text
    if style == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise UserError("--prompt-style chat: this tokenizer has no chat template; use --prompt-style plain")
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": body}], tokenize=False, add_generation_prompt=True
        )
        add_special = False  # the template already holds every special token
    else:
        text = body + "\n"
        add_special = True
    if cue:
        text += answer_cue(sample.key)
    body_start = text.index(body)
    encoded = tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    target = _token_at(encoded["offset_mapping"], body_start + sample.target_char_offset())
    question = _token_at(encoded["offset_mapping"], body_start + sample.question_char_offset())
    return RenderedPrompt(tuple(ids), text, target, question)


def answer_cue(key: str) -> str:
    """The start of the answer when cued: the target's JSON line up to the value's opening quote.

    >>> answer_cue("4f2a-91c3")
    '"4f2a-91c3": "'
    """
    return f'"{key}": "'


def _token_at(offsets: Sequence[tuple[int, int]], char: int) -> int:
    """Index of the first token whose character span reaches past `char` (specials have empty spans)."""
    for index, (begin, end) in enumerate(offsets):
        if end > char and end > begin:
            return index
    raise ValueError(f"no token covers character {char}")
