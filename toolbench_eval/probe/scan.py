"""Teacher-forced distance scan: how well the model scores the gold value as the data moves away in RoPE.

`probe kv --position-gap` decodes greedily, one gap per run: too dear on a CPU to sample the RoPE waveform
densely. The scan instead prefills each prompt's context (everything before the question) ONCE per RoPE
base, then for every gap G runs only the question and the gold value on top of that cache, with their
positions moved G later (`question_positions`). Per (prompt, config, distance) it records the gold value's
log-probability and `exact`: every value token is the argmax given the gold prefix, i.e. what greedy decoding
would reproduce token by token (a bucket set fuses its bases' logits first, as bucketed decoding does).

Gaps of one prompt share the context KV, so they run as one batch: the cache is repeated over the batch
rows once and cropped back to the context after each chunk of gaps (`DynamicCache.crop`).

The scan's axis is the *distance*: positions between the query that produces the first value token (the
last prompt token) and the first token of the target pair. A prompt with native distance d runs distance D at
gap D - d, so a trough distance is hit exactly by every prompt (the nominal grid point 0 means gap 0, the
native prompt).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from toolbench_eval.errors import UserError


@dataclass(frozen=True)
class ScanPrompt:
    """One KV prompt split at the question: the context is prefilled once, the rest runs per gap."""

    sample: int
    context_ids: tuple[int, ...]  # everything before the question (instruction, JSON data)
    question_ids: tuple[int, ...]  # question, chat turn end, answer cue: its last token predicts the value
    answer_ids: tuple[int, ...]  # the gold value, tokenized on its own (what the model has to produce)
    target_distance: int  # native distance: last prompt token -> first token of the target pair
    value: str


@dataclass(frozen=True)
class ScanConfig:
    """One line of the scan: a single base (N=1) or a bucket set fused with `fusion`, under one RoPE scaling."""

    bases: tuple[float, ...]
    scaling: str = "none"
    fusion: str = "max_logit"

    @property
    def key(self) -> str:
        bases = ",".join(f"{b:g}" for b in self.bases)
        key = f"base={bases}" if len(self.bases) == 1 else f"buckets={bases}|{self.fusion}"
        return key if self.scaling == "none" else f"{key}|rope={self.scaling}"

    @property
    def label(self) -> str:
        from buckets.figure_style import short_base

        bases = ", ".join(short_base(b) for b in self.bases)
        label = f"base {bases}" if len(self.bases) == 1 else f"buckets {{{bases}}}"
        return label if self.scaling == "none" else f"{label} · {self.scaling}"


# ---- prompts ------------------------------------------------------------------------------------
def build_prompts(tokenizer, samples: Sequence[int], num_pairs: int, target_index: int, seed: int = 0,
                  style: str = "chat") -> list[ScanPrompt]:
    """The cued KV prompts of `probe kv` (same strings for the same seed/K/index/sample), split at the question."""
    from toolbench_eval.probe.kv import make_sample, render_prompt

    prompts = []
    for sample in samples:
        kv = make_sample(num_pairs, target_index, sample, seed)
        rendered = render_prompt(kv, tokenizer, style, cue=True)
        ids, cut = rendered.token_ids, rendered.question_token
        answer = tuple(tokenizer(kv.value, add_special_tokens=False)["input_ids"])
        prompts.append(ScanPrompt(sample, ids[:cut], ids[cut:], answer, rendered.target_distance, kv.value))
    return prompts


# ---- distances ----------------------------------------------------------------------------------
def parse_grid(text: str) -> list[int]:
    """``"0:16384:512"`` -> 0, 512, ..., 16384 (inclusive); ``"0,300,5000"`` taken as given.

    >>> parse_grid("0:1024:512"), parse_grid("100, 0")
    ([0, 512, 1024], [0, 100])
    """
    try:
        if ":" in text:
            low, high, step = (int(p) for p in text.split(":"))
            if step < 1 or high < low or low < 0:
                raise ValueError
            return list(range(low, high + 1, step))
        values = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise UserError(f"--grid: expected LOW:HIGH:STEP (e.g. 0:16384:512) or distances 0,300,5000; got {text!r}") from None
    if not values or values[0] < 0:
        raise UserError(f"--grid: need distances >= 0, got {text!r}")
    return values


@dataclass(frozen=True)
class Extrema:
    """The own base's dominant troughs in the scanned range and, for each, its nearest peak on each side."""

    troughs: tuple[int, ...]
    peaks: tuple[int, ...]
    neighbours: tuple[tuple[int, int | None, int | None], ...]  # (trough, left peak, right peak)


def waveform_extrema(base: float, head_dim: int, low: int, high: int, max_count: int = 64) -> Extrema:
    """Troughs and peaks of the own base's waveform in [low, high] (the repo's official detector, as
    `probe kv --positions troughs` uses, with room for every one of them: `max_count` instead of 6).

    Only the peaks next to a trough are kept: the detector's peak chain is dense, and the comparison the
    scan is for is a trough against its neighbouring peaks.
    """
    from buckets.extrema import find_peaks, find_troughs

    window = (max(1, int(low)), max(int(low) + 2, int(high)))
    troughs = [int(t) for t in find_troughs(base, head_dim=head_dim, window=window, max_count=max_count)]
    all_peaks = sorted(int(p) for p in find_peaks(base, head_dim=head_dim, window=window, max_count=max_count))
    neighbours = []
    for trough in troughs:
        left = max((p for p in all_peaks if p < trough), default=None)
        right = min((p for p in all_peaks if p > trough), default=None)
        neighbours.append((trough, left, right))
    peaks = sorted({p for _, left, right in neighbours for p in (left, right) if p is not None})
    return Extrema(tuple(troughs), tuple(peaks), tuple(neighbours))


def scan_distances(grid: Sequence[int], extrema: Extrema) -> list[int]:
    """The grid plus every trough and peak, sorted, no duplicates."""
    return sorted({*map(int, grid), *extrema.troughs, *extrema.peaks})


def gap_for(distance: int, prompt: ScanPrompt) -> int:
    """Gap that puts the target `distance` positions before the first value token's query; 0 for a nominal
    distance shorter than the prompt's own (the native prompt)."""
    return max(0, int(distance) - prompt.target_distance)


# ---- RoPE ---------------------------------------------------------------------------------------
class FixedBaseRotary(nn.Module):
    """Drop-in for the decoder's `rotary_emb`: every row uses one `base` (with the config's RoPE scaling),
    from the same cached tables the bucketed forward uses (`buckets.rope.PerRowRotary`)."""

    def __init__(self, base: float, config, dtype: torch.dtype, device) -> None:
        super().__init__()
        from buckets.rope import PerRowRotary, rope_spec_from_config

        self.inner = PerRowRotary([float(base)], rope_spec_from_config(config), dtype=dtype, device=device)

    def forward(self, x: Tensor, position_ids: Tensor) -> tuple[Tensor, Tensor]:
        self.inner.set_rows(torch.zeros(position_ids.shape[0], dtype=torch.long))
        return self.inner(x, position_ids)


@contextlib.contextmanager
def rotary_base(model, base: float, config=None) -> Iterator[None]:
    """Run `model` with RoPE base `base` (and `config`'s RoPE scaling, default the model's own)."""
    decoder = model.get_decoder()
    parameter = next(model.parameters())
    original = decoder.rotary_emb
    decoder.rotary_emb = FixedBaseRotary(base, config or model.config, parameter.dtype, parameter.device)
    try:
        yield
    finally:
        decoder.rotary_emb = original


# ---- the forward --------------------------------------------------------------------------------
def question_positions(context_len: int, length: int, gaps: Sequence[int]) -> Tensor:
    """Position ids `[len(gaps), length]` of the question + answer: right after the context, G later."""
    start = torch.tensor([context_len + int(g) for g in gaps], dtype=torch.long)
    return start[:, None] + torch.arange(length, dtype=torch.long)[None, :]


@torch.no_grad()
def gap_logits(model, prompt: ScanPrompt, gaps: Sequence[int], chunk: int = 16) -> Tensor:
    """Next-token logits at the positions that predict each gold value token, float32 `[len(gaps), A, V]`.

    The context is prefilled once; each chunk of gaps reuses it (cache repeated over the chunk's rows,
    cropped back to the context after the chunk). Run inside `rotary_base` to choose the base.
    """
    device = next(model.parameters()).device
    context = torch.tensor([prompt.context_ids], dtype=torch.long, device=device)
    tail = list(prompt.question_ids) + list(prompt.answer_ids[:-1])  # the last value token predicts nothing
    answer_len = len(prompt.answer_ids)
    # An explicit all-ones mask: without one transformers reads a jump in position_ids as packed sequences.
    out = model(input_ids=context, attention_mask=torch.ones_like(context),
                position_ids=torch.arange(context.shape[1], device=device)[None], use_cache=True)
    cache = out.past_key_values
    # Equal chunks (65 gaps at chunk 16 -> 5 x 13, not 4 x 16 + 1 padded to 16): padding rows cost full forwards.
    rows = -(-len(gaps) // -(-len(gaps) // chunk))
    cache.batch_repeat_interleave(rows)
    context_len = context.shape[1]
    results = []
    for begin in range(0, len(gaps), rows):
        part = list(gaps[begin : begin + rows])
        padded = part + [part[-1]] * (rows - len(part))  # the cache has `rows` rows: pad with a repeat
        ids = torch.tensor([tail] * rows, dtype=torch.long, device=device)
        positions = question_positions(context_len, len(tail), padded).to(device)
        mask = torch.ones(rows, context_len + len(tail), dtype=torch.long, device=device)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, **{_cache_arg(model): cache},
                       use_cache=True, logits_to_keep=answer_len).logits
        cache.crop(-len(tail))  # negative = tokens to remove: the one spelling old and new transformers share
        results.append(logits[: len(part)].float())
    return torch.cat(results)


def _cache_arg(model) -> str:
    """The forward's name for the KV cache: ``cache`` in recent transformers (``past_key_values`` is deprecated
    there and warns on every call), ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def score_answer(logprobs: Tensor, answer_ids: Sequence[int]) -> tuple[Tensor, Tensor]:
    """From log-probabilities `[G, A, V]`: the gold tokens' log-probs `[G, A]` and whether each row's every
    gold token is the argmax `[G]` (ties count against the gold token only when another token is strictly higher)."""
    gold = torch.tensor(list(answer_ids), dtype=torch.long, device=logprobs.device)
    picked = logprobs.gather(-1, gold[None, :, None].expand(logprobs.shape[0], -1, 1)).squeeze(-1)
    exact = (picked >= logprobs.amax(dim=-1)).all(dim=-1)
    return picked, exact


def scan_prompt(model, prompt: ScanPrompt, configs: Sequence[ScanConfig], distances: Sequence[int], *,
                scaled_configs: dict[str, object] | None = None, chunk: int = 16) -> list[dict]:
    """Every (config, distance) record of one prompt. Each (base, scaling) runs once and serves every
    config that holds it; a bucket set fuses its bases' logits with `buckets.fusion.fuse`."""
    from buckets.fusion import fuse

    gaps = [gap_for(d, prompt) for d in distances]
    logits: dict[tuple[float, str], Tensor] = {}
    for base, scaling in dict.fromkeys((b, c.scaling) for c in configs for b in c.bases):
        config = (scaled_configs or {}).get(scaling)
        with rotary_base(model, base, config):
            logits[(base, scaling)] = gap_logits(model, prompt, gaps, chunk)
    records = []
    for config in configs:
        stacked = torch.stack([logits[(b, config.scaling)] for b in config.bases], dim=-2)  # [G, A, N, V]
        fused, _ = fuse(stacked, config.fusion)
        picked, exact = score_answer(fused, prompt.answer_ids)
        for row, distance in enumerate(distances):
            records.append({
                "config": config.key, "sample": prompt.sample, "distance": int(distance), "gap": gaps[row],
                "actual_distance": prompt.target_distance + gaps[row], "exact": bool(exact[row]),
                "logprob_sum": round(float(picked[row].sum()), 5),
                "logprob_mean": round(float(picked[row].mean()), 5),
                "answer_tokens": len(prompt.answer_ids),
            })
    return records


# ---- the run ------------------------------------------------------------------------------------
RECORDS_FILE = "records.jsonl"
SETTINGS_FILE = "scan.json"


def check_settings(out_dir, settings: dict) -> None:
    """Write ``scan.json`` on the first run; refuse to resume a folder written with other settings."""
    import json
    from pathlib import Path

    path = Path(out_dir) / SETTINGS_FILE
    if path.is_file():
        old = json.loads(path.read_text()).get("settings", {})
        changed = [k for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
        if changed:
            raise UserError(f"{out_dir}: holds a scan with other settings ({', '.join(changed)}); "
                            "use another --out, or delete the folder to start over")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"settings": settings}, indent=2) + "\n")


def load_records(out_dir) -> list[dict]:
    """The records written so far (a line cut by an interrupted write is dropped: its prompt is redone)."""
    from pathlib import Path

    from toolbench_eval.jsonl import read_jsonl

    path = Path(out_dir) / RECORDS_FILE
    if not path.is_file():
        return []
    return [record for _, record in read_jsonl(path, tolerate_torn_last_line=True)]


def run_scan(model, prompts: Sequence[ScanPrompt], configs: Sequence[ScanConfig], distances: Sequence[int],
             out_dir, *, scaled_configs=None, chunk: int = 16, deadline: float | None = None,
             progress: bool = True) -> tuple[int, float]:
    """Scan every prompt not yet complete in ``records.jsonl``, appending its records when it finishes (one
    prompt is the unit of resumption). Stops before starting a prompt once `deadline` (time.time()) has
    passed. Returns (prompts scanned now, seconds)."""
    import json
    import time
    from pathlib import Path

    from tqdm.auto import tqdm

    wanted = {(c.key, int(d)) for c in configs for d in distances}
    seen: dict[int, set] = {}
    for record in load_records(out_dir):
        seen.setdefault(int(record["sample"]), set()).add((record["config"], int(record["distance"])))
    todo = [p for p in prompts if not wanted <= seen.get(p.sample, set())]
    started, done = time.perf_counter(), 0
    _drop_torn_tail(Path(out_dir, RECORDS_FILE))
    with Path(out_dir, RECORDS_FILE).open("a") as handle:
        for prompt in tqdm(todo, desc="probe scan", unit="prompt", disable=not progress):
            if deadline is not None and time.time() >= deadline:
                break
            for record in scan_prompt(model, prompt, configs, distances, scaled_configs=scaled_configs, chunk=chunk):
                handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            done += 1
    return done, time.perf_counter() - started


def _drop_torn_tail(path) -> None:
    """Cut a line left half-written by an interrupted run, so the next append starts on a fresh line."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])
