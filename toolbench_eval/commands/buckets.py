"""`toolbench-eval buckets search|plot`: choose Attention Buckets bases and draw their waveforms.

Examples (the ToolLLaMA setting: head dim 128, RoPE base 10000, position interpolation ratio 2):

    toolbench-eval buckets search --model-base 10000 --head-dim 128 --position-scale 2 --n 6 \\
        --min-base 10000 --max-base 30000 --step 500 --window 1000:4090 --tolerance 3 --json
    toolbench-eval buckets plot --bases 10000,17500,18000,19000,20000,25000 --position-scale 2 --out ab.png

`--window LO:HI` is in effective RoPE positions (token distance / position scale), the axis the official
code uses; `--context-tokens T` derives it instead from a context length (see `window_for_context`).

`--model-config NAME|PATH` takes the RoPE of a model instead of --model-base/--head-dim/--position-scale: one
of the reference configs (`toolbench_eval/reference_models.py`: llama-2-7b, llama-3.1-8b, qwen2.5-7b,
mistral-7b-v0.1) or a local config.json / checkpoint folder. The waveforms then use the model's own scaled
frequencies (llama3, YaRN, dynamic NTK, linear), as the bucketed forward does:

    toolbench-eval buckets search --model-config llama-3.1-8b --n 6 --context-tokens 5000

A search that cannot find N bases exits 2 saying what the bases found cover and which settings (a smaller
window, a wider base range, a finer step, a larger tolerance) were tried and complete it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buckets.extrema import DEFAULT_WINDOW, DETECTORS, ExtremaRule
from buckets.search import (
    BaseSearchResult,
    NoCoverageError,
    default_search_range,
    search_bases,
    window_for_context,
)
from buckets.search_advice import number_text
from buckets.waveform import waveform_axis
from toolbench_eval.errors import UserError

DEFAULT_MODEL_BASE = 10000


def register(subparsers) -> None:
    parser = subparsers.add_parser("buckets", help="Attention Buckets: search RoPE bases, plot waveforms")
    actions = parser.add_subparsers(dest="buckets_action", metavar="ACTION", required=True)

    search = actions.add_parser(
        "search",
        help="greedy complementary base search (official rules); prints the bases with their peaks/troughs",
        description="Choose N RoPE bases whose waveform peaks cover each other's troughs.",
    )
    _add_search_flags(search)
    search.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    search.add_argument("--save", metavar="STEM", help="also write STEM.json and STEM.md")
    search.set_defaults(func=run_search)

    plot = actions.add_parser(
        "plot",
        help="write a PNG of waveforms with peaks/troughs and trough coverage",
        description="Plot given bases (--bases) or the result of a search (the search flags).",
    )
    plot.add_argument("--bases", metavar="B1,B2,...", help="bases to plot; without it, run the search first")
    _add_search_flags(plot)
    plot.add_argument("--out", required=True, metavar="FILE.png", help="where to write the PNG")
    plot.add_argument("--title", help="figure title (default: the parameters)")
    plot.set_defaults(func=run_plot)


def _add_search_flags(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model-config",
        metavar="NAME|PATH",
        help="read the RoPE (base, head dim, scaling) from a model config: llama-2-7b, llama-3.1-8b, "
        "qwen2.5-7b, mistral-7b-v0.1, or a config.json / checkpoint folder",
    )
    model.add_argument(
        "--model-base", type=float, help="the model's RoPE base (default 10000, or the --model-config's)"
    )
    model.add_argument("--head-dim", type=int, help="attention head dimension (default 128)")
    model.add_argument(
        "--position-scale",
        type=float,
        help="linear position-interpolation ratio, e.g. 2 for ToolLLaMA (default 1: none)",
    )
    search = parser.add_argument_group("search")
    search.add_argument("--n", type=int, default=6, help="number of buckets (default 6)")
    search.add_argument("--min-base", type=int, help="smallest candidate base (default: the model base)")
    search.add_argument("--max-base", type=int, help="largest candidate base (default: 3x the model base)")
    search.add_argument("--step", type=int, help="candidate spacing (default: model base / 20)")
    search.add_argument(
        "--window",
        metavar="LO:HI",
        help=f"effective-position window (default {DEFAULT_WINDOW[0]}:{DEFAULT_WINDOW[1]}, "
        "or derived from --context-tokens)",
    )
    search.add_argument(
        "--context-tokens",
        type=int,
        metavar="T",
        help="derive the window from a context length, proportionally to the official one",
    )
    search.add_argument(
        "--tolerance", type=float, default=3, help="peak-trough alignment tolerance (default 3)"
    )
    search.add_argument(
        "--initial",
        metavar="B1,B2,...",
        help="initial bases (default: the model base); 'none' starts from the best pair",
    )
    search.add_argument(
        "--upstream-pair-tiebreak",
        action="store_true",
        help="reproduce upstream's stale tie-break when choosing the starting pair",
    )
    rule = parser.add_argument_group("peak/trough detector (defaults: the official constants)")
    rule.add_argument(
        "--detector",
        choices=DETECTORS,
        default="official",
        help="official: upstream's envelope rules (default); prominence: the most prominent extrema",
    )
    rule.add_argument("--max-count", type=int, default=6, help="extrema kept per base (default 6)")
    rule.add_argument("--peak-separation", type=int, default=50, help="kept peaks are more than this apart")
    rule.add_argument(
        "--trough-separation", type=int, default=60, help="kept troughs are more than this apart"
    )
    rule.add_argument(
        "--match-tolerance",
        type=float,
        default=1e-3,
        help="how close to the envelope target a local extremum must be (default 0.001)",
    )
    rule.add_argument("--lookahead", type=int, default=500, help="peak target lookahead in positions")
    rule.add_argument("--skip", type=int, default=50, help="positions skipped before the next target")


def run_search(args: argparse.Namespace) -> int:
    result = _search(args)
    text = json.dumps(result.to_dict(), indent=2) if args.json else result.to_markdown()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if args.save:
        stem = Path(args.save)
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_name(stem.name + ".json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        stem.with_name(stem.name + ".md").write_text(result.to_markdown())
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from buckets.plot import plot_waveforms

    bases = _parse_bases(args.bases, "--bases") if args.bases else list(_search(args).bases)
    if not bases:
        raise UserError("--bases: give at least one base, e.g. --bases 10000,18000,20500")
    axis = _model_rope(args)
    try:
        path = plot_waveforms(
            bases,
            axis.head_dim,
            axis.position_scale,
            _window(args, axis.scale),
            args.out,
            tolerance=args.tolerance,
            rule=_rule(args),
            title=args.title,
            rope=axis.rope,
        )
    except ValueError as error:
        raise UserError(f"buckets plot: {error}") from error
    print(f"wrote {path}")
    return 0


@dataclass(frozen=True)
class _ModelRope:
    """The model's RoPE as the flags give it: its base, and head dim and scale or, with --model-config, its
    RopeSpec (unset values default in `buckets.waveform.waveform_axis`)."""

    model_base: float
    head_dim: int | None = None
    position_scale: float | None = None
    rope: Any = None

    @property
    def scale(self) -> float:
        """The linear interpolation ratio, which the window needs even when the rope carries it."""
        return waveform_axis(self.head_dim, self.position_scale, self.rope)[1]


def _model_rope(args: argparse.Namespace) -> _ModelRope:
    if args.model_config is None:
        base = args.model_base if args.model_base is not None else DEFAULT_MODEL_BASE
        return _ModelRope(base, args.head_dim, args.position_scale)
    from toolbench_eval.models import model_rope_info
    from toolbench_eval.reference_models import model_config

    given = [flag for flag, value in (("--head-dim", args.head_dim), ("--position-scale", args.position_scale))
             if value is not None]
    if given:
        raise UserError(f"{' and '.join(given)}: --model-config {args.model_config} sets them; drop one or the other")
    rope = model_rope_info(model_config(args.model_config))
    return _ModelRope(args.model_base if args.model_base is not None else rope.rope_theta, rope=rope.spec)


def _search(args: argparse.Namespace) -> BaseSearchResult:
    if args.n < 1:
        raise UserError(f"--n: the number of buckets must be >= 1, got {args.n}")
    axis = _model_rope(args)
    try:
        low, high, step = default_search_range(axis.model_base)
    except ValueError as error:
        raise UserError(f"--model-base: {error}") from error
    min_base = args.min_base if args.min_base is not None else low
    max_base = args.max_base if args.max_base is not None else high
    step = args.step if args.step is not None else step
    if step < 1:
        raise UserError(f"--step must be a positive integer, got {step}")
    if min_base > max_base:
        raise UserError(f"empty candidate range: --min-base {min_base} > --max-base {max_base}; swap them")
    initial = None if args.initial is None else _parse_bases(args.initial, "--initial", allow_none=True)
    try:
        return search_bases(
            args.n,
            model_base=axis.model_base,
            head_dim=axis.head_dim,
            position_scale=axis.position_scale,
            rope=axis.rope,
            min_base=min_base,
            max_base=max_base,
            step=step,
            window=_window(args, axis.scale),
            tolerance=args.tolerance,
            initial=initial,
            rule=_rule(args),
            upstream_pair_tiebreak=args.upstream_pair_tiebreak,
        )
    except NoCoverageError as error:
        from buckets.search_advice import explain_stop

        raise UserError(f"buckets search: {explain_stop(error.partial, spell=_flag_spelling)}") from error
    except ValueError as error:
        raise UserError(f"buckets search: {error}") from error


def _flag_spelling(name: str, value: Any) -> str:
    """A search setting as these commands take it."""
    if name == "bases":  # to run them: `toolbench-eval run --buckets ...`
        return "--buckets " + ",".join(number_text(b) for b in value)
    if name == "window":
        return f"--window {number_text(value[0])}:{number_text(value[1])}"
    return f"--{name.replace('_', '-')} {number_text(value)}"


def _window(args: argparse.Namespace, position_scale: float) -> tuple[int, int]:
    if args.window and args.context_tokens:
        raise UserError("give either --window or --context-tokens, not both")
    if args.context_tokens:
        try:
            return window_for_context(args.context_tokens, position_scale)
        except ValueError as error:
            raise UserError(f"--context-tokens: {error}") from error
    return parse_window(args.window, "--window", "1000:4090") if args.window else DEFAULT_WINDOW


def parse_window(text: str, flag: str, example: str) -> tuple[int, int]:
    """`LO:HI` of a window flag, or a UserError naming the flag."""
    try:
        low, high = (int(part) for part in text.split(":"))
    except ValueError:
        raise UserError(f"{flag}: expected LO:HI with integers, e.g. {example}, got {text!r}") from None
    if not 0 <= low < high - 1:
        raise UserError(f"{flag}: need 0 <= LO < HI - 1, got {text!r}")
    return low, high


def _rule(args: argparse.Namespace) -> ExtremaRule:
    try:
        return ExtremaRule(
            detector=args.detector,
            max_count=args.max_count,
            peak_separation=args.peak_separation,
            trough_separation=args.trough_separation,
            tolerance=args.match_tolerance,
            lookahead=args.lookahead,
            skip=args.skip,
        )
    except ValueError as error:
        raise UserError(f"detector settings: {error}") from error


def _parse_bases(text: str, flag: str, allow_none: bool = False) -> list[float]:
    if allow_none and text.strip().lower() in ("", "none"):
        return []
    try:
        bases = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{flag}: expected comma-separated numbers, e.g. 10000,18000, got {text!r}") from None
    if any(not base > 1 for base in bases):
        raise UserError(f"{flag}: every RoPE base must be > 1, got {text!r}")
    return [int(b) if b.is_integer() else b for b in bases]
