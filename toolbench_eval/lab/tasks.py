"""Seeded synthetic tasks with an in-distribution ('id') setting and out-of-distribution settings.

Each generator turns a `random.Random` and the split's parameters into one `Example`: the token ids and
the positions of the answer tokens. A model is trained on the next-token loss at answer positions only and
scored by exact match: an example is right when the argmax prediction is right at every answer position.
With teacher forcing that is the same as greedy decoding of the answer (every earlier answer token fed back
is the one the model itself would have produced), so scoring needs one forward pass.

All tasks share one 64-token vocabulary, so one model configuration fits every task.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import torch

# ---- the shared vocabulary ----------------------------------------------------------------------------
PAD, BOS, SEP, MARK = 0, 1, 2, 3
WRITE, IGNORE, READ, BIT0, BIT1 = 4, 5, 6, 7, 8  # flip-flop instructions and bits
BLANK = 9  # selective copy's empty cell
SYMBOLS = tuple(range(10, 26))  # 16 content tokens (values, copied tokens, filler)
DIGITS = tuple(range(26, 46))  # counts 0..19
KEYS = tuple(range(46, 62))  # 16 keys for key-value retrieval
VOCAB_SIZE = 64


@dataclass(frozen=True)
class Example:
    tokens: list[int]
    answer_positions: list[int]  # indices into tokens; the model predicts tokens[p] from the prefix tokens[:p]


# ---- generators ---------------------------------------------------------------------------------------
def flipflop(rng: random.Random, n_instructions: int, p_ignore: float) -> Example:
    """Flip-flop language (Liu et al. 2023): pairs 'instruction bit'; after 'r' the bit must equal the bit of
    the latest 'w'; 'i' bits are noise. It starts with a write and ends with a read, so every example asks."""
    tokens, answers, memory = [BOS], [], 0
    for index in range(n_instructions):
        if index == 0:
            instruction = WRITE
        elif index == n_instructions - 1:
            instruction = READ
        else:
            draw = rng.random()
            instruction = IGNORE if draw < p_ignore else WRITE if draw < (1 + p_ignore) / 2 else READ
        bit = rng.randrange(2)
        if instruction == WRITE:
            memory = bit
        elif instruction == READ:
            bit = memory
            answers.append(len(tokens) + 1)
        tokens += [instruction, BIT1 if bit else BIT0]
    return Example(tokens, answers)


def selective_copy(rng: random.Random, length: int, n_tokens: int) -> Example:
    """A grid of `length` blank cells with `n_tokens` symbols at random places; after SEP, the symbols in order."""
    cells = [BLANK] * length
    for place in sorted(rng.sample(range(length), n_tokens)):
        cells[place] = rng.choice(SYMBOLS)
    copied = [cell for cell in cells if cell != BLANK]
    tokens = [BOS, *cells, SEP, *copied]
    return Example(tokens, list(range(len(tokens) - n_tokens, len(tokens))))


def counting(rng: random.Random, length: int, p_marker: float, n_symbols: int = 4) -> Example:
    """Count a queried symbol since the last marker (CoPE's 'count since the last reset' kind of task).

    `length` tokens, each a marker with probability `p_marker`, else one of `n_symbols` symbols; then SEP, the
    queried symbol, and the answer: how often it occurs after the last marker (the whole sequence if none)."""
    while True:
        body = [MARK if rng.random() < p_marker else rng.choice(SYMBOLS[:n_symbols]) for _ in range(length)]
        query = rng.choice(SYMBOLS[:n_symbols])
        last_marker = max((i for i, token in enumerate(body) if token == MARK), default=-1)
        count = body[last_marker + 1:].count(query)
        if count < len(DIGITS):  # counts past the digit range are redrawn (vanishingly rare at these settings)
            tokens = [BOS, *body, SEP, query, DIGITS[count]]
            return Example(tokens, [len(tokens) - 1])


def key_value(rng: random.Random, n_pairs: int) -> Example:
    """`n_pairs` distinct key - value pairs, then SEP and a key; the answer is its value."""
    keys = rng.sample(KEYS, n_pairs)
    values = [rng.choice(SYMBOLS) for _ in keys]
    asked = rng.randrange(n_pairs)
    tokens = [BOS, *(t for pair in zip(keys, values) for t in pair), SEP, keys[asked], values[asked]]
    return Example(tokens, [len(tokens) - 1])


def multi_needle(rng: random.Random, length: int, n_needles: int) -> Example:
    """`n_needles` needles 'MARK value' hidden in `length` filler symbols drawn from the same alphabet as the
    values (so only the marker tells a needle from noise); after SEP, every needle's value in order."""
    filler = [rng.choice(SYMBOLS) for _ in range(length)]
    values = [rng.choice(SYMBOLS) for _ in range(n_needles)]
    places = sorted(rng.sample(range(length + 1), n_needles))
    body: list[int] = []
    previous = 0
    for place, value in zip(places, values):
        body += [*filler[previous:place], MARK, value]
        previous = place
    body += filler[previous:]
    tokens = [BOS, *body, SEP, *values]
    return Example(tokens, list(range(len(tokens) - n_needles, len(tokens))))


@dataclass(frozen=True)
class Task:
    name: str
    generate: Callable[..., Example]
    splits: dict[str, dict]  # 'id' first; the others are out-of-distribution
    describe: str

    def sample(self, rng: random.Random, split: str, n: int) -> list[Example]:
        if split not in self.splits:
            raise ValueError(f"task {self.name!r} has no split {split!r}; choose one of {', '.join(self.splits)}")
        return [self.generate(rng, **self.splits[split]) for _ in range(n)]


TASKS: dict[str, Task] = {
    task.name: task for task in (
        Task("flipflop", flipflop,
             {"id": {"n_instructions": 32, "p_ignore": 0.8},
              "ood": {"n_instructions": 32, "p_ignore": 0.98},
              "ood-long": {"n_instructions": 128, "p_ignore": 0.8}},
             "ood: sparser (p_ignore 0.98, same length); ood-long: 4x longer"),
        Task("selective-copy", selective_copy,
             {"id": {"length": 32, "n_tokens": 4},
              "ood": {"length": 128, "n_tokens": 4}},
             "ood: 4x longer and sparser grid"),
        Task("counting", counting,
             {"id": {"length": 32, "p_marker": 0.15},
              "ood": {"length": 128, "p_marker": 0.15}},
             "ood: 4x longer sequence, same count distribution"),
        Task("kv", key_value,
             {"id": {"n_pairs": 8},
              "ood": {"n_pairs": 16}},
             "ood: twice as many pairs"),
        Task("multi-needle", multi_needle,
             {"id": {"length": 48, "n_needles": 3},
              "ood": {"length": 144, "n_needles": 3},
              "ood-needles": {"length": 48, "n_needles": 5}},
             "ood: 3x more filler; ood-needles: 5 needles instead of 3"),
    )
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]


def collate(examples: list[Example]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids (B, T) and a boolean answer mask (B, T); padding is never an answer and,
    the model being causal, never influences an earlier position."""
    length = max(len(example.tokens) for example in examples)
    tokens = torch.full((len(examples), length), PAD, dtype=torch.long)
    answers = torch.zeros((len(examples), length), dtype=torch.bool)
    for row, example in enumerate(examples):
        tokens[row, :len(example.tokens)] = torch.tensor(example.tokens)
        answers[row, example.answer_positions] = True
    return tokens, answers
