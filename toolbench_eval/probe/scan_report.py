"""The report of `probe scan`: results.csv, the scan figure, and summary.md with the trough/peak comparisons.

Intervals: exact rates get 95% Wilson intervals (`probe.scoring.wilson_interval`). Means of log-probs and
every paired difference get a seeded percentile bootstrap over *prompts* (the independent unit: the
distances of one prompt share its strings, so resampling prompts keeps that dependence intact).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolbench_eval.probe.scan import Extrema, ScanConfig
from toolbench_eval.probe.scoring import wilson_interval

BANDS = ((0, 2048), (2048, 8192), (8192, 16385))
BOOTSTRAP = 4000


def bootstrap_mean(values: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """(mean, 2.5%, 97.5%) of a seeded percentile bootstrap; the interval is (mean, mean) for one value.

    >>> bootstrap_mean([1.0, 1.0, 1.0])
    (1.0, 1.0, 1.0)
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(BOOTSTRAP, data.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(data.mean()), float(low), float(high)


def table(records: Sequence[dict[str, Any]]) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Records keyed by (config, distance, sample), only prompts that finished every config and distance
    (a prompt is written whole, so this only drops a prompt from a folder resumed with more distances)."""
    return {(r["config"], int(r["distance"]), int(r["sample"])): r for r in records}


def complete_samples(index, configs: Sequence[ScanConfig], distances: Sequence[int]) -> list[int]:
    samples = sorted({s for _, _, s in index})
    return [s for s in samples if all((c.key, d, s) in index for c in configs for d in distances)]


def aggregate(index, configs: Sequence[ScanConfig], distances: Sequence[int], samples: Sequence[int],
              extrema: Extrema) -> list[dict[str, Any]]:
    """One row per (config, distance): n, exact rate + Wilson interval, mean per-token log-prob + bootstrap."""
    rows = []
    for config in configs:
        for distance in distances:
            cell = [index[(config.key, distance, s)] for s in samples]
            hits = sum(bool(r["exact"]) for r in cell)
            low, high = wilson_interval(hits, len(cell))
            mean, lp_low, lp_high = bootstrap_mean([r["logprob_mean"] for r in cell])
            kind = "trough" if distance in extrema.troughs else "peak" if distance in extrema.peaks else "grid"
            rows.append({
                "config": config.label, "config_key": config.key, "distance": distance, "kind": kind,
                # Equal to `distance` except at the native point (distance 0: each prompt's own distance).
                "mean_actual_distance": round(float(np.mean([r["actual_distance"] for r in cell])), 1),
                "n": len(cell), "exact": hits, "exact_rate": round(hits / len(cell), 4) if cell else float("nan"),
                "exact_low": round(low, 4), "exact_high": round(high, 4),
                "logprob_mean": round(mean, 4), "logprob_low": round(lp_low, 4), "logprob_high": round(lp_high, 4),
            })
    return rows


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---- paired comparisons -------------------------------------------------------------------------
def _value(index, key: str, distance: int, sample: int, field: str) -> float:
    return float(index[(key, distance, sample)][field])


def trough_minus_peaks(index, key: str, extrema: Extrema, samples, field: str, band=None) -> list[float]:
    """Per prompt: the mean over troughs (in `band`) of value(trough) - mean(value(its neighbouring peaks))."""
    per_prompt = []
    for sample in samples:
        diffs = []
        for trough, left, right in extrema.neighbours:
            peaks = [p for p in (left, right) if p is not None]
            if not peaks or (band and not band[0] <= trough < band[1]):
                continue
            peak_value = np.mean([_value(index, key, p, sample, field) for p in peaks])
            diffs.append(_value(index, key, trough, sample, field) - peak_value)
        if diffs:
            per_prompt.append(float(np.mean(diffs)))
    return per_prompt


def config_minus_config(index, key_a: str, key_b: str, distances, samples, field: str) -> list[float]:
    """Per prompt: mean over `distances` of value(a) - value(b)."""
    return [float(np.mean([_value(index, key_a, d, s, field) - _value(index, key_b, d, s, field) for d in distances]))
            for s in samples if distances]


def band_mean(index, key: str, distances, samples, field: str) -> list[float]:
    """Per prompt: the mean over `distances` (exact as 0/1)."""
    return [float(np.mean([_value(index, key, d, s, field) for d in distances])) for s in samples if distances]


def _fmt(stat: tuple[float, float, float], digits: int = 2) -> str:
    mean, low, high = stat
    if np.isnan(mean):
        return "–"
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def _plain(stat: tuple[float, float, float], digits: int = 2) -> str:
    mean, low, high = stat
    return "–" if np.isnan(mean) else f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def band_table(index, configs, extrema: Extrema, distances, samples) -> list[str]:
    """Markdown: per band and config, exact rate and log-prob at troughs, at peaks, paired difference."""
    lines = [("| band | config | exact @troughs | exact @peaks | Δ exact (trough − peaks) | log-prob @troughs | "
             "log-prob @peaks | Δ log-prob (trough − peaks) | exact, all distances | log-prob, all distances |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for band in BANDS:
        troughs = [t for t, left, right in extrema.neighbours if band[0] <= t < band[1] and (left or right)]
        peaks = sorted({p for t, left, right in extrema.neighbours if t in troughs for p in (left, right) if p})
        every = [d for d in distances if band[0] <= d < band[1]]
        for config in configs:
            cells = [
                _plain(bootstrap_mean(band_mean(index, config.key, troughs, samples, "exact"))),
                _plain(bootstrap_mean(band_mean(index, config.key, peaks, samples, "exact"))),
                _fmt(bootstrap_mean(trough_minus_peaks(index, config.key, extrema, samples, "exact", band))),
                _plain(bootstrap_mean(band_mean(index, config.key, troughs, samples, "logprob_mean"))),
                _plain(bootstrap_mean(band_mean(index, config.key, peaks, samples, "logprob_mean"))),
                _fmt(bootstrap_mean(trough_minus_peaks(index, config.key, extrema, samples, "logprob_mean", band))),
                _plain(bootstrap_mean(band_mean(index, config.key, every, samples, "exact"))),
                _plain(bootstrap_mean(band_mean(index, config.key, every, samples, "logprob_mean"))),
            ]
            name = f"{band[0]}–{min(band[1], 16384)} ({len(troughs)} troughs)"
            lines.append(f"| {name} | {config.label} | " + " | ".join(cells) + " |")
    return lines


def buckets_table(index, configs, extrema: Extrema, distances, samples) -> list[str]:
    """Markdown: each bucket set minus the own base (same scaling), per band, at troughs / peaks / all."""
    own = {c.scaling: c for c in configs if len(c.bases) == 1}
    lines = [("| band | set − own base | Δ exact @troughs | Δ exact @peaks | Δ exact, all | Δ log-prob @troughs | "
             "Δ log-prob @peaks | Δ log-prob, all |"), "|---|---|---|---|---|---|---|---|"]
    for band in BANDS:
        troughs = [t for t in extrema.troughs if band[0] <= t < band[1]]
        peaks = [p for p in extrema.peaks if band[0] <= p < band[1]]
        every = [d for d in distances if band[0] <= d < band[1]]
        for config in (c for c in configs if len(c.bases) > 1 and c.scaling in own):
            base = own[config.scaling].key
            cells = [_fmt(bootstrap_mean(config_minus_config(index, config.key, base, ds, samples, field)))
                     for field in ("exact", "logprob_mean") for ds in (troughs, peaks, every)]
            lines.append(f"| {band[0]}–{min(band[1], 16384)} | {config.label} | " + " | ".join(cells) + " |")
    return lines


def per_trough_table(index, configs, extrema: Extrema, samples) -> list[str]:
    """Markdown: every trough with its neighbouring peaks, exact rate and log-prob of each config."""
    header = "| trough | peaks | " + " | ".join(f"{c.label}: exact T / P, Δ log-prob [95%]" for c in configs) + " |"
    lines = [header, "|---|---|" + "---|" * len(configs)]
    for trough, left, right in extrema.neighbours:
        peaks = [p for p in (left, right) if p is not None]
        if not peaks:
            continue
        cells = []
        for config in configs:
            at_trough = np.mean([_value(index, config.key, trough, s, "exact") for s in samples])
            at_peaks = np.mean([_value(index, config.key, p, s, "exact") for p in peaks for s in samples])
            diff = [_value(index, config.key, trough, s, "logprob_mean")
                    - np.mean([_value(index, config.key, p, s, "logprob_mean") for p in peaks]) for s in samples]
            cells.append(f"{at_trough:.2f} / {at_peaks:.2f}, {_fmt(bootstrap_mean(diff))}")
        lines.append(f"| {trough} | {', '.join(map(str, peaks))} | " + " | ".join(cells) + " |")
    return lines


# ---- the figure ---------------------------------------------------------------------------------
def plot_scan(rows, configs, extrema: Extrema, path: Path, *, own_base: float, head_dim: int, trained: int,
              title: str) -> Path:
    """Exact rate, mean log-prob and the own base's RoPE bound vs distance; one line per config with its 95%
    interval shaded, troughs (red) and peaks (green) ticked along the bottom, the trained context dashed."""
    from matplotlib.lines import Line2D

    from buckets.figure_style import NO_BUCKETS_COLOR, PALETTE, new_figure, paper_style, save_figure
    from buckets.waveform import attention_upper_bound

    top = max(r["distance"] for r in rows)
    with paper_style():
        fig = new_figure(6.6)
        axes = fig.subplots(3, 1, sharex=True, height_ratios=[3, 3, 1.3])
        for index, config in enumerate(configs):
            line = sorted((r for r in rows if r["config_key"] == config.key), key=lambda r: r["distance"])
            xs = [r["mean_actual_distance"] for r in line]
            color = NO_BUCKETS_COLOR if len(config.bases) == 1 and config.scaling == "none" else PALETTE[index % len(PALETTE)]
            for ax, field in zip(axes[:2], ("exact", "logprob")):
                ys = [r["exact_rate" if field == "exact" else "logprob_mean"] for r in line]
                ax.fill_between(xs, [r[f"{field}_low"] for r in line], [r[f"{field}_high"] for r in line],
                                color=color, alpha=0.18, linewidth=0)
                ax.plot(xs, ys, color=color, marker=".", markersize=3, linewidth=1.1, label=config.label)
        distances = np.arange(1, top + 1)
        axes[2].plot(distances, attention_upper_bound(distances, own_base, head_dim), color="grey", linewidth=0.4)
        for ax in axes:
            ax.axvline(trained, color="black", linestyle="--", linewidth=0.8)
            ax.grid(alpha=0.3)
            for distances_, color in ((extrema.troughs, "tab:red"), (extrema.peaks, "tab:green")):
                ax.plot(distances_, [0] * len(distances_), linestyle="none", marker="|", markersize=7,
                        color=color, transform=ax.get_xaxis_transform(), clip_on=False)
        axes[0].set_ylabel("exact (greedy would\nreproduce the value)")
        axes[0].set_ylim(-0.02, 1.02)
        axes[1].set_ylabel("mean log-prob of\nthe value's tokens")
        axes[2].set_ylabel(f"RoPE bound\nbase {own_base:g}")
        axes[2].set_xlabel("RoPE distance from the answer's query to the target pair (tokens, log scale)")
        # Log distance: the troughs crowd below 2k (eight of them) and spread out beyond.
        low = min(r["mean_actual_distance"] for r in rows)
        axes[2].set_xscale("log", base=2)
        axes[2].set_xlim(low * 0.95, top * 1.02)
        ticks = [2**k for k in range(int(np.ceil(np.log2(low))), int(np.log2(top)) + 1)]
        axes[2].set_xticks(ticks, [f"{t:,}" for t in ticks])
        n = sorted({r["n"] for r in rows})
        axes[0].set_title(f"n = {n[0]} prompts per point · shaded: 95% interval (Wilson / bootstrap)", loc="left")
        handles, labels = axes[0].get_legend_handles_labels()
        handles += [Line2D([], [], color="black", linestyle="--", linewidth=0.8),
                    Line2D([], [], color="tab:red", marker="|", linestyle="none", markersize=7),
                    Line2D([], [], color="tab:green", marker="|", linestyle="none", markersize=7)]
        labels += [f"trained context {trained}", "own-base troughs", "neighbouring peaks"]
        fig.legend(handles, labels, loc="outside lower center", ncol=3, handlelength=1.6, columnspacing=1.2)
        fig.suptitle(title)
        return save_figure(fig, path)


# ---- summary ------------------------------------------------------------------------------------
def write_report(out_dir: Path, records, configs: Sequence[ScanConfig], distances: Sequence[int],
                 extrema: Extrema, settings: dict, info: dict) -> list[Path]:
    """results.csv, scan.{png,svg,pdf} and summary.md from the records of complete prompts."""
    out_dir = Path(out_dir)
    index = table(records)
    samples = complete_samples(index, configs, distances)
    if not samples:
        from toolbench_eval.errors import UserError

        raise UserError(f"{out_dir}: no prompt has every record yet; nothing to report")
    rows = aggregate(index, configs, distances, samples, extrema)
    csv_path = write_csv(rows, out_dir / "results.csv")
    own_base = float(configs[0].bases[0])
    head_dim = int(info.get("head_dim", 64))
    png = plot_scan(rows, configs, extrema, out_dir / "scan.png", own_base=own_base, head_dim=head_dim,
                    trained=int(info["trained_context"]),
                    title=f"Teacher-forced KV scan, {info['model']}, K={settings['num_pairs']}, "
                          f"target index {settings['target_index']}")
    runs = info.get("runs", [])
    seconds, prompts = sum(r["seconds"] for r in runs), sum(r["prompts"] for r in runs)
    cost = (f"{seconds / prompts:.1f} s per prompt ({prompts} prompts in {seconds:.0f} s over {len(runs)} run(s); "
            f"{len(distances)} distances x {len({b for c in configs for b in c.bases})} base runs per prompt, "
            f"threads {sorted({r['threads'] for r in runs})})") if prompts else "no timed run"
    lines = [
        "# Teacher-forced distance scan (`toolbench-eval probe scan`)", "",
        f"- command: `{info['command']}`",
        f"- model: {info['model']}; RoPE: {info['rope']}",
        (f"- prompts: {len(samples)} complete (samples {samples[0]}..{samples[-1]}), K = {settings['num_pairs']}, "
        f"target index {settings['target_index']}, {settings['prompt_style']} prompt, seed {settings['seed']}; "
        f"native distances {info['native_distances'][0]}..{info['native_distances'][-1]}"),
        f"- configs: {'; '.join(c.label for c in configs)}",
        (f"- distances: {len(distances)} = grid + {len(extrema.troughs)} own-base troughs "
        f"{list(extrema.troughs)} + their {len(extrema.peaks)} neighbouring peaks {list(extrema.peaks)} "
        "(official detector, `buckets.extrema`)"),
        f"- cost: {cost}",
        "",
        ("Method: each prompt's context (everything before the question) is prefilled once per base; the question "
        "and the gold value then run teacher-forced at every distance, the positions of everything from the "
        "question on moved by gap = distance − native distance (distance 0 = the native prompt). `exact` = every "
        "value token is the argmax given the gold prefix (what greedy decoding would reproduce; the closing "
        "quote is not scored); log-prob = mean over the value's tokens. A bucket set fuses its bases' "
        "next-token logits with `buckets.fusion.fuse` (max_logit) at each value position. Intervals: 95%, "
        "Wilson for rates, percentile bootstrap over prompts for means and paired differences."),
        "", "Figure: `scan.png` (also `.svg`, `.pdf`).", "",
        "## Troughs vs neighbouring peaks, by distance band", "",
        ("Per prompt, each trough's value minus the mean of its two neighbouring peaks, averaged over the band's "
        "troughs; then the mean over prompts [95% bootstrap]. A negative Δ means the trough is worse."), "",
        *band_table(index, configs, extrema, distances, samples), "",
        "## Bucket sets minus the own base (paired, same prompts)", "",
        *buckets_table(index, configs, extrema, distances, samples), "",
        "## Every trough", "",
        *per_trough_table(index, configs, extrema, samples), "",
        "Per-distance numbers: `results.csv`.", "",
    ]
    summary = out_dir / "summary.md"
    notes = out_dir / "notes.md"
    if notes.is_file():
        lines += ["## Notes", "", notes.read_text().strip(), ""]
    summary.write_text("\n".join(lines))
    return [csv_path, png, summary]
