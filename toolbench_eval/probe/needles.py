"""Multi-needle retrieval: several named codes hidden in filler text; the model must list all of them.

A sample is `num_needles` needles ("The secret code of the amber door is 4f2a-91c3.") spread evenly through
`sentences` filler sentences drawn (seeded) from neutral prose, then a question asking for every code in
the order the needles appear. The answer is cued with the first door's line (``amber: ``), so a model
that retrieves writes one ``name: code`` line per needle. Scored per needle (is that door's line right?)
and as all-needles exact match; needle slot i sits at depth (i + 0.5) / num_needles of the filler, so the
per-slot accuracy is a curve over distance like the KV probe's.

>>> sample = make_needle_sample(3, 12, sample=0, seed=0)
>>> [sample.text.count(value) for _, value in sample.needles]
[1, 1, 1]
>>> score_needles(expected_answer(sample.needles)[len(answer_cue(sample.needles)):], sample.needles)
[True, True, True]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from toolbench_eval.errors import UserError
from toolbench_eval.probe.kv import KVFormat, random_hex
from toolbench_eval.probe.scoring import normalize_answer

INSTRUCTION = ("The passage below hides several secret door codes. Read it, then list the code of every door "
               "it mentions, in the order they appear, one per line as `door: code`.")
QUESTION = "List the code of every door in the passage, in order, one per line as `door: code`."
FILLER = (
    "The morning train left the station a few minutes late.",
    "Rain had fallen during the night, and the streets were still wet.",
    "A small market opened on the corner every Saturday.",
    "The library kept its older books on the top floor.",
    "Several birds gathered on the roof of the old mill.",
    "The river ran slowly past the fields at the edge of town.",
    "Children played in the park until the lights came on.",
    "The baker started work long before sunrise.",
    "A narrow path led from the church up to the hill.",
    "The wind turned colder as the afternoon went on.",
    "Most of the shops closed early on Sundays.",
    "An old clock in the square had stopped years ago.",
    "The harbour was quiet except for a single fishing boat.",
    "Travellers often stopped at the inn for a warm meal.",
    "The garden behind the school was full of tall sunflowers.",
    "A letter arrived at the post office without a stamp.",
)
DOORS = ("amber", "birch", "cobalt", "delta", "ember", "fern", "granite", "harbor", "indigo", "juniper",
         "kestrel", "lotus", "maple", "nickel", "orchid", "pepper")


@dataclass(frozen=True)
class NeedleSample:
    needles: tuple[tuple[str, str], ...]  # (door, code) in the order they appear
    text: str
    sample: int

    def needle_char_offsets(self) -> list[int]:
        return [self.text.index(needle_sentence(door, code)) for door, code in self.needles]

    def question_char_offset(self) -> int:
        return self.text.rindex("\n\n" + QUESTION)


def needle_sentence(door: str, code: str) -> str:
    return f"The secret code of the {door} door is {code}."


def answer_cue(needles) -> str:
    """The answer's start: the first door's line up to its code."""
    return f"{needles[0][0]}: "


def expected_answer(needles) -> str:
    """What a model that retrieves everything writes, cue included."""
    return "\n".join(f"{door}: {code}" for door, code in needles)


def make_needle_sample(num_needles: int, sentences: int, sample: int, seed: int = 0,
                       fmt: KVFormat | None = None) -> NeedleSample:
    """Sample `sample` of a (needles, filler sentences) cell: doors drawn without replacement, codes
    distinct, filler sentences drawn with replacement, needle i after sentence round((i + 0.5) * S / N)."""
    if not 1 <= num_needles <= len(DOORS):
        raise UserError(f"--num-pairs (needles): need 1..{len(DOORS)} needles, got {num_needles}")
    if sentences < num_needles:
        raise UserError(f"--positions (filler sentences): need at least one sentence per needle, got {sentences} "
                        f"for {num_needles} needles")
    fmt = fmt or KVFormat()
    rng = np.random.default_rng([seed, num_needles, sentences, sample, 7])
    doors = [DOORS[i] for i in rng.permutation(len(DOORS))[:num_needles]]
    codes: list[str] = []
    while len(codes) < num_needles:
        code = random_hex(rng, fmt.value_digits, fmt.group)
        if code not in codes:
            codes.append(code)
    filler = [FILLER[i] for i in rng.integers(0, len(FILLER), size=sentences)]
    slots = [round((i + 0.5) * sentences / num_needles) for i in range(num_needles)]
    parts: list[str] = []
    for index, sentence in enumerate(filler):
        for slot, door, code in zip(slots, doors, codes):
            if slot == index:
                parts.append(needle_sentence(door, code))
        parts.append(sentence)
    text = f"{INSTRUCTION}\n\nPassage:\n{' '.join(parts)}\n\n{QUESTION}"
    return NeedleSample(tuple(zip(doors, codes)), text, sample)


_LINE = re.compile(r"^\s*[`*\-]*\s*([a-z]+)\s*(?:door)?\s*[:=-]\s*(.+)$", re.IGNORECASE)


def score_needles(completion: str, needles) -> list[bool]:
    """Per needle: is its door's code right? The completion continues the cue (the first door's code
    comes first, bare); later lines are ``door: code``. A door listed twice counts by its first line."""
    lines = [line for line in completion.splitlines() if line.strip()]
    found: dict[str, str] = {}
    if lines:
        found[needles[0][0]] = normalize_answer(lines[0])
        for line in lines[1:]:
            match = _LINE.match(line)
            if match:
                found.setdefault(match.group(1).lower(), normalize_answer(match.group(2)))
    return [found.get(door) == code for door, code in needles]


@dataclass(frozen=True)
class RenderedNeedles:
    token_ids: tuple[int, ...]
    needle_tokens: tuple[int, ...]  # first token of each needle sentence
    question_token: int  # first token after the passage (where a position gap goes)

    def distances(self) -> list[int]:
        """Tokens from each needle to the last prompt token (the query of the first answer token)."""
        return [len(self.token_ids) - 1 - t for t in self.needle_tokens]


def render_needles(sample: NeedleSample, tokenizer, style: str = "chat") -> RenderedNeedles:
    """Token ids of a sample in the chat template (or plain text), ending with the answer cue."""
    from toolbench_eval.probe.kv import PROMPT_STYLES, _token_at

    if style not in PROMPT_STYLES:
        raise UserError(f"--prompt-style: choose one of {', '.join(PROMPT_STYLES)}, got {style!r}")
    if style == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise UserError("--prompt-style chat: this tokenizer has no chat template; use --prompt-style plain")
        text = tokenizer.apply_chat_template([{"role": "user", "content": sample.text}], tokenize=False,
                                             add_generation_prompt=True)
    else:
        text = sample.text + "\n"
    text += answer_cue(sample.needles)
    start = text.index(sample.text)
    encoded = tokenizer(text, add_special_tokens=style == "plain", return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    needles = tuple(_token_at(offsets, start + offset) for offset in sample.needle_char_offsets())
    return RenderedNeedles(tuple(encoded["input_ids"]), needles, _token_at(offsets, start + sample.question_char_offset()))


def needle_rows(records, configs, model: str) -> list[dict]:
    """Per-needle accuracy rows shaped like `report.aggregate`'s: ``num_pairs`` holds the filler sentences
    (one panel per length), ``position`` the needle slot (0 = first, deepest); `correct`/`n` count needles."""
    from collections import defaultdict

    from toolbench_eval.probe.scoring import wilson_interval

    groups: dict[tuple, list[tuple[bool, int, int]]] = defaultdict(list)
    for r in records:
        for slot, (hit, distance) in enumerate(zip(r.get("needle_correct", []), r.get("needle_distances", []))):
            groups[(r["config"], int(r["position"]), slot)].append((bool(hit), int(distance), int(r["prompt_tokens"])))
    rows = []
    for sentences, slot in sorted({(s, i) for _, s, i in groups}):
        for config in configs:
            found = groups.get((config.key, sentences, slot))
            if not found:
                continue
            correct = sum(hit for hit, _, _ in found)
            low, high = wilson_interval(correct, len(found))
            rows.append({
                "model": model, "num_pairs": sentences, "position": slot, "config": config.label,
                "config_key": config.key, "kind": config.kind, "bases": " ".join(f"{b:g}" for b in config.bases),
                "fusion": config.fusion if config.kind == "buckets" else "", "n": len(found), "correct": correct,
                "accuracy": round(correct / len(found), 4), "ci_low": round(low, 4), "ci_high": round(high, 4),
                "mean_prompt_tokens": round(sum(t for _, _, t in found) / len(found), 1),
                "mean_target_distance": round(sum(d for _, d, _ in found) / len(found), 1),
            })
    return rows
