"""Run the KV probe: every (K, target position, sample) prompt under every single base and bucket set.

Work is ordered so that a cut-short run is still balanced: samples are processed in blocks of
`batch_size`, and each block visits every K, position and configuration before the next block starts.
Every finished generate call appends its per-sample records to ``records.jsonl`` in the output
directory, so a re-run (or a run with more ``--samples``) skips what is already there. The settings
that decide answers are kept in ``probe.json``; a re-run with other settings is refused.

Shared prefill. A bucket set computes, for each of its bases, exactly the prompt KV a single-base run
of that base would compute (bucket rows only meet at the fused logits). So after a set has decoded a
batch, its prompt KV rows are handed to the single-base generators of its member bases through their
prefix caches, and those only prefill the last prompt token. Outputs equal separate runs up to
floating-point batch effects; ``share_prefill=False`` turns it off.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from toolbench_eval.errors import UserError
from toolbench_eval.probe.kv import KVFormat, make_sample, render_prompt, spread_positions
from toolbench_eval.probe.scoring import is_correct

log = logging.getLogger("toolbench_eval.probe")

RECORDS_FILE = "records.jsonl"
SETTINGS_FILE = "probe.json"


@dataclass(frozen=True)
class ProbeConfig:
    """One line of the plot: a single RoPE base (N=1) or a bucket set fused with `fusion`."""

    name: str  # what the user asked for: "100000", "auto:3", "100000,150000"
    bases: tuple[float, ...]
    fusion: str = "max_logit"
    own: bool = False  # the model's own base without RoPE scaling: the reference
    scaling: str = "none"  # context extension (`toolbench_eval.probe.scaling`): none | linear:F | dynamic:F | yarn:F

    @property
    def kind(self) -> str:
        return "base" if len(self.bases) == 1 else "buckets"

    @property
    def key(self) -> str:
        """Identity in the record cache: the bases (and the fusion rule when it matters, the scaling when
        there is one: unscaled keys are those of earlier runs, so their records still count)."""
        bases = ",".join(_fmt_base(b) for b in self.bases)
        key = f"base={bases}" if self.kind == "base" else f"buckets={bases}|{self.fusion}"
        return key if self.scaling == "none" else f"{key}|rope={self.scaling}"

    @property
    def label(self) -> str:
        bases = ", ".join(_short_base(b) for b in self.bases)
        if self.kind == "base":
            label = f"base {bases}" + (" (own)" if self.own else "")
        else:
            prefix = f"{self.name} " if self.name.startswith("auto:") else ""
            label = f"buckets {prefix}{{{bases}}}"
        return label if self.scaling == "none" else f"{label} · {self.scaling}"


@dataclass(frozen=True)
class ProbeItem:
    """One rendered prompt of a cell."""

    num_pairs: int
    position: int
    sample: int
    value: str
    token_ids: tuple[int, ...]
    target_distance: int  # RoPE distance from the last prompt token to the target (position gap included)
    gap_start: int = 0  # first token after the data: where a position gap goes
    needles: tuple[tuple[str, str], ...] = ()  # needles task: (door, code) in order
    needle_distances: tuple[int, ...] = ()  # needles task: RoPE distance of each needle


@dataclass
class ProbeSettings:
    """The settings that decide answers (a re-run into the same folder must match them)."""

    model: str
    dtype: str
    num_pairs: list[int]
    positions: str
    seed: int = 0
    prompt_style: str = "chat"
    cue: bool = True
    key_digits: int = 8
    value_digits: int = 8
    group: int = 4
    max_new_tokens: int = 0  # 0: value tokens + 4, decided per run from the longest value
    position_gap: int = 0  # positions skipped between the data and the question (`probe.engine.GappedRotary`)
    task: str = "kv"  # kv: one value per prompt; needles: every needle (`probe.needles`), positions = sentences

    @property
    def kv_format(self) -> KVFormat:
        return KVFormat(self.key_digits, self.value_digits, self.group)

    def identity(self) -> dict[str, Any]:
        identity = asdict(self)
        # Folders written before these fields existed keep resuming.
        if not self.position_gap:
            del identity["position_gap"]
        if self.task == "kv":
            del identity["task"]
        return identity


@dataclass
class ProbeRun:
    """What `run_probe` returns: the configurations, all records, and how long the new work took."""

    configs: list[ProbeConfig]
    records: list[dict[str, Any]]
    items: dict[tuple[int, int], list[ProbeItem]]
    seconds: float
    new_records: int
    search: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ---- prompts ------------------------------------------------------------------------------------
def build_items(tokenizer, settings: ProbeSettings, samples: int, extrema=None) -> dict[tuple[int, int], list[ProbeItem]]:
    """Render every prompt: ``{(K, position): [item for sample 0..samples-1]}``.

    `extrema(low, high)` gives the waveform's trough and peak distances inside a distance window; it is
    needed only when --positions names ``troughs`` (see `target_positions`).
    """
    items: dict[tuple[int, int], list[ProbeItem]] = {}
    if settings.task == "needles":
        return _needle_items(tokenizer, settings, samples)
    for num_pairs in settings.num_pairs:
        for position in target_positions(settings, tokenizer, num_pairs, extrema):
            items[(num_pairs, position)] = [_item(tokenizer, settings, num_pairs, position, sample)
                                            for sample in range(samples)]
    return items


def _item(tokenizer, settings: ProbeSettings, num_pairs: int, position: int, sample: int) -> ProbeItem:
    kv = make_sample(num_pairs, position, sample, settings.seed, settings.kv_format)
    rendered = render_prompt(kv, tokenizer, settings.prompt_style, cue=settings.cue)
    return ProbeItem(num_pairs, position, sample, kv.value, rendered.token_ids,
                     rendered.target_distance + settings.position_gap, rendered.question_token)


def _needle_items(tokenizer, settings: ProbeSettings, samples: int) -> dict[tuple[int, int], list[ProbeItem]]:
    """Needles task: cells are (needles, filler sentences); --positions lists the sentence counts."""
    from toolbench_eval.probe.needles import answer_cue, expected_answer, make_needle_sample, render_needles

    try:
        lengths = sorted({int(p) for p in str(settings.positions).split(",") if p.strip()})
    except ValueError:
        raise UserError(f"--positions: for needles, filler sentence counts (e.g. 20,60), got {settings.positions!r}") from None
    items: dict[tuple[int, int], list[ProbeItem]] = {}
    for num_needles in settings.num_pairs:
        for sentences in lengths:
            cell = []
            for sample in range(samples):
                drawn = make_needle_sample(num_needles, sentences, sample, settings.seed, settings.kv_format)
                rendered = render_needles(drawn, tokenizer, settings.prompt_style)
                distances = tuple(d + settings.position_gap for d in rendered.distances())
                cell.append(ProbeItem(num_needles, sentences, sample,
                                      expected_answer(drawn.needles)[len(answer_cue(drawn.needles)):],
                                      rendered.token_ids, distances[0], rendered.question_token, drawn.needles,
                                      distances))
            items[(num_needles, sentences)] = cell
    return items


def target_positions(settings: ProbeSettings, tokenizer, num_pairs: int, extrema=None) -> list[int]:
    """The target indices of --positions for K pairs: parts joined by '+', each a count ("8"), explicit
    indices ("0,4,9"), ``all`` (every index: dense, one pair ~22 tokens apart) or ``troughs`` (for each
    trough and peak of the own base's waveform between the first and last target distance of sample 0,
    the index whose target sits nearest to it)."""
    chosen: set[int] = set()
    for part in filter(None, (p.strip() for p in str(settings.positions).split("+"))):
        if part == "all":
            chosen.update(range(num_pairs))
        elif part == "troughs":
            if extrema is None:
                raise UserError("--positions troughs: needs the model's RoPE (not available here)")
            distances = [_item(tokenizer, settings, num_pairs, index, 0).target_distance for index in range(num_pairs)]
            chosen.update(nearest_indices(distances, extrema(min(distances), max(distances))))
        else:
            chosen.update(spread_positions(part, num_pairs))
    if not chosen:
        raise UserError(f"--positions: {settings.positions!r} selects no target index")
    return sorted(chosen)


def nearest_indices(distances: Sequence[int], targets: Iterable[float]) -> list[int]:
    """For each target distance, the index whose distance is nearest (ties: the lower index).

    >>> nearest_indices([300, 250, 200, 150], [260, 140, 199])
    [1, 2, 3]
    """
    return sorted({min(range(len(distances)), key=lambda i: (abs(distances[i] - t), i)) for t in targets})


def distance_window(items: dict[tuple[int, int], list[ProbeItem]], position_scale: float = 1.0) -> tuple[int, int]:
    """The effective-position window spanned by the targets (for the base search).

    Taken from sample 0 of every cell, so that asking for more --samples later keeps the window, the
    searched bases, and with them the records already computed.
    """
    # A needles prompt has several targets: its window spans all of them.
    distances = [d for cell in items.values() if cell for d in (cell[0].needle_distances or (cell[0].target_distance,))]
    low = max(1, math.floor(min(distances) / position_scale))
    high = max(low + 2, math.ceil(max(distances) / position_scale))
    return low, high


# ---- configurations -----------------------------------------------------------------------------
def parse_base_list(text: str | None, flag: str = "--bases") -> list[str | float]:
    """``"150000,auto:3"`` -> ``[150000.0, "auto:3"]``: numbers, or auto:N (the N searched bases)."""
    items: list[str | float] = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if part.startswith("auto:"):
            items.append(_auto(part, flag))
            continue
        try:
            base = float(part)
        except ValueError:
            raise UserError(f"{flag}: {part!r} is neither a number nor auto:N (e.g. 100000,150000 or auto:3)") from None
        if not base > 1:
            raise UserError(f"{flag}: RoPE bases must be > 1, got {part!r}")
        items.append(base)
    return items


def parse_bucket_sets(text: str | None) -> list[str | tuple[float, ...]]:
    """``"auto:3;100000,150000"`` -> ``["auto:3", (100000.0, 150000.0)]``: sets separated by ';'."""
    sets: list[str | tuple[float, ...]] = []
    for part in filter(None, (p.strip() for p in (text or "").split(";"))):
        if part.startswith("auto:"):
            sets.append(_auto(part, "--buckets"))
            continue
        bases = parse_base_list(part, "--buckets")
        if any(isinstance(b, str) for b in bases) or len(bases) < 2:
            raise UserError(f"--buckets: {part!r}: a set is auto:N or at least two comma-separated bases; "
                            "separate sets with ';' (e.g. \"auto:3;100000,150000,200000\")")
        sets.append(tuple(float(b) for b in bases))
    return sets


def resolve_configs(
    own_base: float,
    bases: Sequence[str | float],
    bucket_sets: Sequence[str | tuple[float, ...]],
    search,
    fusion: str = "max_logit",
    scalings: Sequence[str] = ("none",),
) -> list[ProbeConfig]:
    """Single-base configs (own base first) then bucket sets, repeated for each RoPE scaling (by name,
    e.g. "yarn:2"); `search(n)` returns the auto:N bases."""
    singles: list[float] = [float(own_base)]
    for item in bases:
        for base in (search(int(item[5:])) if isinstance(item, str) else [item]):
            if float(base) not in singles:
                singles.append(float(base))
    configs = [ProbeConfig(_fmt_base(b), (b,), fusion, own=(b == float(own_base))) for b in singles]
    seen = set()
    for item in bucket_sets:
        found = tuple(float(b) for b in (search(int(item[5:])) if isinstance(item, str) else item))
        name = item if isinstance(item, str) else ",".join(_fmt_base(b) for b in found)
        if len(set(found)) != len(found):
            raise UserError(f"--buckets: {name}: a base appears twice in the set")
        if found in seen:
            continue
        seen.add(found)
        configs.append(ProbeConfig(name, found, fusion))
    return [replace(c, scaling=scaling, own=c.own and scaling == "none") for scaling in scalings for c in configs]


# ---- the run ------------------------------------------------------------------------------------
class RecordStore:
    """``records.jsonl`` in the output folder: one line per (config, K, position, sample)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        self._done: set[tuple[str, int, int, int]] = set()
        if path.is_file():
            self._load()

    def _load(self) -> None:
        from toolbench_eval.jsonl import JsonlLineError, read_jsonl

        try:
            # A line cut by an interrupted write is skipped: that sample is redone.
            for number, record in read_jsonl(self.path, tolerate_torn_last_line=True):
                try:
                    self._index(record)
                except (KeyError, TypeError) as error:
                    raise UserError(f"{self.path}: line {number} is not a probe record ({error}); "
                                    "delete the file (or the line) to recompute it") from None
                self.records.append(record)
        except JsonlLineError as error:
            raise UserError(f"{error}: not a probe record; delete the file (or the line) to recompute it") from None

    def _index(self, record: dict[str, Any]) -> None:
        self._done.add((record["config"], int(record["num_pairs"]), int(record["position"]), int(record["sample"])))

    def done(self, config: ProbeConfig, item: ProbeItem) -> bool:
        return (config.key, item.num_pairs, item.position, item.sample) in self._done

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        records = list(records)
        with self.path.open("a") as handle:
            for record in records:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
        for record in records:
            self._index(record)
            self.records.append(record)


def check_settings(out_dir: Path, settings: ProbeSettings) -> None:
    """Write ``probe.json`` on the first run; refuse a re-run whose settings differ."""
    path = out_dir / SETTINGS_FILE
    new = settings.identity()
    if path.is_file():
        try:
            old = json.loads(path.read_text()).get("settings", {})
        except json.JSONDecodeError:
            raise UserError(f"{path}: not valid JSON; delete it and {RECORDS_FILE} to start over") from None
        changed = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if changed:
            raise UserError(f"{out_dir}: holds a probe run with other settings ({'; '.join(changed)}); "
                            "use another --out, or delete the folder to start over")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"settings": new}, indent=2) + "\n")


def run_probe(
    model,
    tokenizer,
    settings: ProbeSettings,
    configs: Sequence[ProbeConfig],
    items: dict[tuple[int, int], list[ProbeItem]],
    out_dir: Path,
    *,
    batch_size: int = 8,
    share_prefill: bool = True,
    progress: bool = True,
) -> ProbeRun:
    """Decode every missing (config, item) greedily, score it and append it to the record file."""
    from tqdm.auto import tqdm

    from buckets.generation import DecodeParams
    from buckets.prefix_cache import PrefixCache
    from toolbench_eval.probe.engine import ProbeGenerator
    from toolbench_eval.probe.scaling import parse_rope_scaling

    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    check_settings(out_dir, settings)
    store = RecordStore(out_dir / RECORDS_FILE)
    budget = max_new_tokens(tokenizer, settings, items)
    # KV answers end at the value's closing quote or line; a needle list ends at a blank line.
    stop = ("\n\n",) if settings.task == "needles" else ('"', "\n") if settings.cue else ("\n",)
    params = DecodeParams(max_new_tokens=budget, temperature=0.0, stop=stop)
    generators = {
        c.key: ProbeGenerator(model, tokenizer, bases=list(c.bases), fusion=c.fusion,
                              scaling=parse_rope_scaling(c.scaling)[0], gap=settings.position_gap,
                              prefix_cache=PrefixCache(max_entries=batch_size), add_special_tokens=False)
        for c in configs
    }
    donors = _donor_sets(configs) if share_prefill else {}
    samples = max(len(cell) for cell in items.values())
    todo = sum(1 for c in configs for cell in items.values() for item in cell if not store.done(c, item))
    started, before = time.perf_counter(), len(store.records)
    bar = tqdm(total=todo, desc="probe kv", unit="answer", disable=not progress or todo == 0)
    try:
        for block_start in range(0, samples, batch_size):
            for (num_pairs, position), cell in items.items():
                block = cell[block_start : block_start + batch_size]
                # Sets first: their prompt KV feeds the single-base runs of their members.
                for config in sorted(configs, key=lambda c: c.kind != "buckets"):
                    generator = generators[config.key]
                    donor = donors.get(config.key)
                    # One generate call per gap start: the gap is one position for every row of a call.
                    todo_here = [i for i in block if not store.done(config, i)]
                    for gap_start, pending in _by_gap_start(todo_here, settings.position_gap > 0):
                        generator.gap_start = gap_start
                        keys = [f"{num_pairs}:{position}:{item.sample}" for item in pending]
                        if donor is not None:
                            _borrow_prefill(generators[donor.key], donor, generator, config.bases[0], keys, pending)
                        results = generator.generate([list(i.token_ids) for i in pending], params, cache_keys=keys)
                        store.append(_record(config, item, result.text) for item, result in zip(pending, results))
                        bar.update(len(pending))
                for generator in generators.values():
                    generator.clear_prefix_cache()
    finally:
        bar.close()
    wanted = {(c.key, k, p, i.sample) for c in configs for (k, p), cell in items.items() for i in cell}
    # Only this run's cells and samples: a folder may hold more from an earlier, larger run.
    records = [r for r in store.records
               if (r["config"], r["num_pairs"], r["position"], r["sample"]) in wanted]
    return ProbeRun(list(configs), records, items, time.perf_counter() - started, len(store.records) - before,
                    extra={"max_new_tokens": budget, "stop": list(params.stop)})


def max_new_tokens(tokenizer, settings: ProbeSettings, items: dict[tuple[int, int], list[ProbeItem]]) -> int:
    """`settings.max_new_tokens`, or the longest value's token count + 4 (closing quote and slack)."""
    if settings.max_new_tokens > 0:
        return settings.max_new_tokens
    longest = max(len(tokenizer(item.value, add_special_tokens=False)["input_ids"])
                  for cell in items.values() for item in cell)
    return longest + 4 if settings.cue else longest + 12  # uncued answers often start with a quote or a space


def _record(config: ProbeConfig, item: ProbeItem, text: str) -> dict[str, Any]:
    if item.needles:
        from toolbench_eval.probe.needles import score_needles

        hits = score_needles(text, item.needles)
        return {**_kv_record(config, item, text), "correct": all(hits), "needle_correct": hits,
                "needle_distances": list(item.needle_distances)}
    return _kv_record(config, item, text)


def _kv_record(config: ProbeConfig, item: ProbeItem, text: str) -> dict[str, Any]:
    return {
        "config": config.key,
        "num_pairs": item.num_pairs,
        "position": item.position,
        "sample": item.sample,
        "prediction": text,
        "value": item.value,
        "correct": is_correct(text, item.value),
        "prompt_tokens": len(item.token_ids),
        "target_distance": item.target_distance,
    }


def _by_gap_start(items: Sequence[ProbeItem], gapped: bool = True) -> list[tuple[int, list[ProbeItem]]]:
    """Items grouped by gap start, in order of first appearance (prompts of one K usually share it);
    one group when there is no gap.

    >>> item = lambda start: ProbeItem(10, 0, 0, "v", (1, 2), 5, start)
    >>> [(start, len(group)) for start, group in _by_gap_start([item(7), item(8), item(7)])]
    [(7, 2), (8, 1)]
    """
    if not gapped:
        return [(0, list(items))] if items else []
    groups: dict[int, list[ProbeItem]] = {}
    for item in items:
        groups.setdefault(item.gap_start, []).append(item)
    return list(groups.items())


def _donor_sets(configs: Sequence[ProbeConfig]) -> dict[str, ProbeConfig]:
    """For each single base, the first bucket set with the same RoPE scaling that contains it (its prefill
    donor: its rows of that base hold exactly the KV a single-base run computes)."""
    donors: dict[str, ProbeConfig] = {}
    for single in (c for c in configs if c.kind == "base"):
        for bucket_set in (c for c in configs if c.kind == "buckets" and c.scaling == single.scaling):
            if single.bases[0] in bucket_set.bases:
                donors[single.key] = bucket_set
                break
    return donors


def _borrow_prefill(donor_generator, donor: ProbeConfig, generator, base: float, keys, items) -> None:
    """Seed `generator`'s prefix cache with the donor set's KV rows of `base` for these prompts."""
    row = donor.bases.index(base)
    for key, item in zip(keys, items):
        entry, reusable = donor_generator.prefix_cache.lookup(key, item.token_ids)
        if entry is None or reusable < len(item.token_ids) - 1:
            continue  # the set did not run this prompt in this block (e.g. it was already done)
        kv = [(k[row : row + 1], v[row : row + 1]) for k, v in entry.kv]
        generator.prefix_cache.store(key, entry.token_ids, kv)


def _auto(text: str, flag: str) -> str:
    count = text[len("auto:"):]
    if not count.isdigit() or int(count) < 1:
        raise UserError(f"{flag}: {text!r}: write auto:N with N >= 1, e.g. auto:3")
    return f"auto:{int(count)}"


def _fmt_base(base: float) -> str:
    return str(int(base)) if float(base).is_integer() else repr(float(base))


def _short_base(base: float) -> str:
    """100000 -> '100k', 152500 -> '152.5k', 10000 -> '10k', 500 -> '500'."""
    if base >= 1000:
        return f"{base / 1000:g}k"
    return f"{base:g}"


def log_run(out_dir: Path, info: dict[str, Any]) -> list[dict[str, Any]]:
    """Append one invocation's timing to ``probe.json``; returns every invocation logged so far."""
    path = out_dir / SETTINGS_FILE
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.setdefault("runs", []).append(info)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data["runs"]
