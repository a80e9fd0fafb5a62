"""The window of an `auto:N` base search: measured from the prompts of the benchmark being run.

Attention Buckets acts on the distances between a generated token and the context it reads, so the search
should look at the distances the run's prompts have, not at the model's whole context
(`max_position_embeddings` is 131,072 for Llama-3.1: a window there is far from any ToolBench prompt, and
the waveforms are so smooth that no base covers another). The rule, recorded in the manifest's
`buckets.search.window_from`:

    context_tokens = p95 of the first-prompt token counts of the run's queries + 2,048 tokens of growth,
                     capped at the model's max_position_embeddings
    window         = buckets.search.window_for_context(context_tokens, position_scale)
                     (the official window's fractions: 1000/4096 .. 4090/4096 of the context)

- The prompt counted is the one `toolbench-eval inspect` counts (`commands/inspect.py`: the system message
  with the function schemas and the user query, under the run's protocol), tokenized by the model's own
  tokenizer. Every query of the configured groups counts, `--limit` or not, so a smoke test and the full run
  search the same window.
- Growth: each reasoning step appends the model's reply and a tool observation (cut to 1,024 characters,
  about 300 tokens); 2,048 tokens is about four steps of that. A DFSDT tree re-reads only its own branch.
- `bucket_search: {prompt_percentile: P, growth_tokens: G}` change the rule; `bucket_search: {window: [LO, HI]}`
  (effective positions) replaces it. Without a tokenizer (the `scripted` engine, unless
  `bucket_search: {tokenizer: default|PATH}` names one) the window falls back to the proportional window
  of `max_tokens`, and the manifest says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from toolbench_eval.errors import UserError

DEFAULT_PERCENTILE = 95.0
DEFAULT_GROWTH_TOKENS = 2048
RULE = ("context_tokens = min(p{percentile:g}(first-prompt tokens) + growth_tokens, max_tokens); "
        "window = window_for_context(context_tokens, position_scale)")


@dataclass(frozen=True)
class SearchWindow:
    """The window chosen for a search and the facts it came from (for the manifest)."""

    window: tuple[int, int]
    source: dict[str, Any]  # how: "rule", the numbers measured, the settings used


def percentile(values: list[int], q: float) -> int:
    """The smallest value with at least q% of `values` at or below it (an observed length, never interpolated).

    >>> percentile([100, 200, 300, 400], 50), percentile([100, 200, 300, 400], 95), percentile([7], 95)
    (200, 400, 7)
    """
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def first_prompt_tokens(groups: Mapping[str, Any], tokenizer, protocol) -> tuple[list[int], str]:
    """Token counts of every query's first prompt (as `toolbench-eval inspect` counts them) and which prompt."""
    from toolbench_eval.commands.inspect import count_prompt_tokens, prompt_renderer

    render, note = prompt_renderer()
    counts = count_prompt_tokens(dict(groups), tokenizer, render, upstream_quirks=protocol.schema_quirks)
    return [count for name in groups for count in counts[name]], note


def window_from_prompts(
    lengths: list[int],
    *,
    max_tokens: int,
    position_scale: float = 1.0,
    prompt_percentile: float = DEFAULT_PERCENTILE,
    growth_tokens: int = DEFAULT_GROWTH_TOKENS,
) -> SearchWindow:
    """The rule of the module docstring applied to measured first-prompt lengths.

    >>> found = window_from_prompts([900, 1000, 1100, 3000], max_tokens=8192)
    >>> found.window, found.source["context_tokens"]
    ((1232, 5040), 5048)
    """
    from buckets.search import window_for_context

    if not lengths:
        raise UserError("buckets auto:N: the run has no queries whose prompts could set the search window")
    if not 0 < prompt_percentile <= 100:
        raise UserError(f"bucket_search.prompt_percentile must be in (0, 100], got {prompt_percentile}")
    if int(growth_tokens) != growth_tokens or growth_tokens < 0:
        raise UserError(f"bucket_search.growth_tokens must be a whole number >= 0, got {growth_tokens}")
    longest = percentile(lengths, prompt_percentile)
    wanted = longest + int(growth_tokens)
    # The model's declared maximum caps the window, unless prompts alone exceed it (then the run itself will
    # read that far, so the window should too).
    context = min(wanted, max(int(max_tokens), longest))
    window = window_for_context(context, position_scale)
    return SearchWindow(window, {
        "rule": RULE.format(percentile=prompt_percentile),
        "prompt_tokens": {
            "queries": len(lengths),
            "median": percentile(lengths, 50),
            f"p{prompt_percentile:g}": longest,
            "max": max(lengths),
        },
        "prompt_percentile": prompt_percentile,
        "growth_tokens": int(growth_tokens),
        "max_tokens": int(max_tokens),
        "context_tokens": context,
    })


def run_search_window(config, facts: Mapping[str, Any], groups: Mapping[str, Any] | None, tokenizer: Any = None
                      ) -> SearchWindow:
    """The window for `config`'s `auto:N` search: the configured one, else measured, else the fallback."""
    from buckets.search import window_for_context

    options = config.bucket_search
    max_tokens, scale = int(facts["max_tokens"]), float(facts["position_scale"])
    if "window" in options:
        window = tuple(options["window"])
        return SearchWindow(window, {"rule": "bucket_search.window (config)", "window": list(window)})
    if tokenizer is None:
        tokenizer, named = tokenizer_for(config)
    else:
        named = "the model's"
    if tokenizer is None or groups is None:
        why = "no tokenizer to count prompts" if tokenizer is None else "no queries given"
        return SearchWindow(window_for_context(max_tokens, scale), {
            "rule": f"window_for_context(max_tokens, position_scale) ({why}: set bucket_search.tokenizer or "
                    "bucket_search.window)",
            "max_tokens": max_tokens,
        })
    lengths, prompt = first_prompt_tokens(groups, tokenizer, config.eval_protocol)
    found = window_from_prompts(
        lengths,
        max_tokens=max_tokens,
        position_scale=scale,
        prompt_percentile=float(options.get("prompt_percentile", DEFAULT_PERCENTILE)),
        growth_tokens=options.get("growth_tokens", DEFAULT_GROWTH_TOKENS),
    )
    return SearchWindow(found.window, {**found.source, "tokenizer": named, "prompt": prompt})


def tokenizer_for(config) -> tuple[Any, str]:
    """A tokenizer for counting the run's prompts when none was handed over, and its name (None: none known).

    `bucket_search.tokenizer` wins; `hf` and `vllm` read the model's folder (a local checkpoint).
    """
    from toolbench_eval.tokenizers import load_tokenizer

    named = config.bucket_search.get("tokenizer")
    if named is not None:
        return load_tokenizer(str(named)), str(named)
    if config.model not in ("hf", "vllm"):
        return None, ""
    from toolbench_eval.models import resolve_model_dir

    folder = resolve_model_dir(config.engine_spec)
    return load_tokenizer(folder), str(folder)
