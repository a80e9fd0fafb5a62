"""One query, start to finish: tools -> function schemas -> reasoner -> StableToolBench answer JSON.

An `Agent` holds what every trajectory of a run shares (engine, tool backend, tool documents,
optional retriever) and solves queries concurrently; it runs in the driver (`local` executor) or
inside a Ray agent worker (`ray` executor), with identical results.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from toolbench_eval.benchmark.model import Query, Tool
from toolbench_eval.engines.base import Engine
from toolbench_eval.registry import arguments_taken
from toolbench_eval.runner.adapters import (
    BackendToolEnvironment,
    EngineModelClient,
    NativeToolsClient,
    chat_template_renderer,
    sampling_params,
    toolllama_renderer,
)
from toolbench_eval.runner.bucket_weights import CallWeights
from toolbench_eval.runner.config import METHODS, RunConfig
from toolbench_eval.tools.base import ToolBackend


def query_seed(run_seed: int, group: str, query_id: str) -> int:
    """A per-query seed that does not depend on scheduling order (so concurrency never changes answers)."""
    return (run_seed * 1_000_003 + zlib.crc32(f"{group}/{query_id}".encode())) % (2**31)


class TrajectoryFailed(RuntimeError):
    """The engine failed during a trajectory: no answer file is written, so a re-run retries the query."""


@dataclass
class SolveResult:
    """What a solved query hands back to the driver (picklable, so it crosses Ray too)."""

    answer: dict[str, Any]  # the StableToolBench answer JSON
    outcome: str  # "answered" | "gave_up" | "no_answer" (step limit or budget reached without Finish)
    encoding: str = "utf8_newline"  # the protocol's `answer_file_encoding`
    # `record_bucket_weights`: each model call's `[tokens][N]` fused bucket weights, in call order (else None).
    # Kept beside the answer, never in it: answer files are upstream's format.
    bucket_weights: list[list[list[float]]] | None = None


def outcome_of(trajectory: Any) -> str:
    if trajectory.answered:
        return "answered"
    return "gave_up" if trajectory.gave_up else "no_answer"


@dataclass
class Agent:
    """Everything a trajectory needs besides its query."""

    config: RunConfig
    engine: Engine
    backend: ToolBackend
    tools: Mapping[tuple[str, str], Tool]
    retriever: Any = None  # runner.retriever.ToolRetriever for dfsdt-retriever

    def __post_init__(self) -> None:
        self.protocol = self.config.eval_protocol
        # The method's reasoner with its search budget bound: DFSDT takes width and max_query_count, ReAct neither.
        reasoner = METHODS.lookup(self.config.method)
        self._reasoner = functools.partial(reasoner, **arguments_taken(
            reasoner, {"width": self.config.width, "max_query_count": self.config.max_query_count}))
        if self.config.tool_format == "native" and not callable(getattr(self.engine, "chat", None)):
            from toolbench_eval.errors import UserError

            raise UserError(f"tool_format=native: the {self.config.model} engine cannot call tools natively; "
                            "use --model openai, hf or vllm, or tool_format=react")
        if self.config.prompt_style == "chat_template" and getattr(self.engine, "mode", None) == "chat":
            from toolbench_eval.errors import UserError

            raise UserError("prompt_style chat_template with --model openai mode=chat would template the conversation "
                            "twice (ours, then the server's); use mode=completions with a tokenizer=, or "
                            "tool_format=native to let the server template it with its tools")
        if self.config.prompt_style == "chat_template":
            tokenizer = getattr(self.engine, "tokenizer", None)
            if tokenizer is None:
                from toolbench_eval.errors import UserError

                raise UserError(f"prompt_style chat_template: engine {self.config.model!r} has no tokenizer; "
                                "use prompt_style: toolllama")
            self._render = chat_template_renderer(tokenizer)
        else:
            self._render = toolllama_renderer(self.protocol.assistant_layout)

    def prepare_query(self, query: Query) -> Query:
        """For DFSDT-Retriever, replace the query's api_list by the retrieved APIs (as upstream does)."""
        if self.retriever is None:
            return query
        retrieved = self.retriever.retrieve(query.query, top_k=int(self.config.retriever.get("top_k", 5)))
        return dataclasses.replace(query, api_list=tuple(retrieved))

    async def solve(self, query: Query) -> SolveResult:
        """Run the configured method on one query; its answer JSON and how it ended.

        Raises `TrajectoryFailed` when the engine failed mid-trajectory (the reasoner records that in
        `trajectory.error`): an infrastructure failure is retried on the next run, not scored.
        """
        from reasoning.answer import answer_json
        from toolbench_eval.benchmark.schemas import build_function_index, tool_descriptions

        config, protocol = self.config, self.protocol
        query = self.prepare_query(query)
        index = build_function_index(query, self.tools, upstream_quirks=protocol.schema_quirks)
        descriptions = tool_descriptions(query, self.tools)
        seed = query_seed(config.seed, query.group, query.query_id)
        params = sampling_params(config.decoding, protocol=protocol, seed=seed)
        weights = CallWeights() if config.record_bucket_weights else None
        if config.tool_format == "native":
            client = NativeToolsClient(self.engine, params, upstream_request=protocol.native_request == "upstream",
                                       constrain=config.decoding.get("constrain", "off"), weights=weights)
        else:
            client = EngineModelClient(self.engine, params, self._render,
                                       constrain=config.decoding.get("constrain", "off"), weights=weights)
        env = BackendToolEnvironment(self.backend.for_trajectory(), index, protocol=protocol)
        common = {
            "single_chain_max_step": config.max_step,
            "protocol": protocol,
            "query_id": query.query_id,
            "toolllama": config.prompt_style == "toolllama" and config.tool_format == "react",
            "seed": seed,
            "trajectory_id": f"{query.group}/{query.query_id}",
        }
        trajectory = await self._reasoner(query.query, index.functions, descriptions, client, env, **common)
        if trajectory.error is not None:
            raise TrajectoryFailed(trajectory.error)
        return SolveResult(answer_json(trajectory, protocol=protocol), outcome_of(trajectory),
                           protocol.answer_file_encoding, weights.calls() if weights is not None else None)
