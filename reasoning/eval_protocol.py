"""Evaluation protocols: every rule where ToolBench implementations disagree, in one typed object.

`stabletoolbench` reproduces what StableToolBench's own code (THUNLP-MT/StableToolBench `aa4ed9f4`,
`toolbench/inference/`, with its ToolLLaMA HF client) feeds a model and records, byte for byte;
`stabletoolbench-vllm` is the same with its `ToolLLaMA_vllm` client. `toolbench-eval` is our corrected
variant. Each field is one switch; `docs/protocol.md` has the table (upstream, ours, why, flag).

The reasoner, the prompt renderer, the tool backends and the answer writer read the protocol; none of
them has a flag of its own. A run names a protocol and may override single switches
(`--protocol stabletoolbench --protocol-args parser=tolerant`); the manifest records the name, the
overrides and every resolved switch.

>>> resolve_protocol("stabletoolbench", {"parser": "tolerant"}).label
'stabletoolbench (parser=tolerant)'
>>> resolve_protocol("toolbench-eval").assistant_layout
'newline'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Where a ToolLLaMA-style completion may end besides EOS. Upstream stops on `</s>` only; small models
# that never learned to emit EOS keep writing the next role line, so ours also stops there.
UPSTREAM_STOP = ("</s>",)
ROLE_LINE_STOP = ("</s>", "\nFunction:", "\nUser:", "\nSystem:", "\nAssistant:", "\nObservation:")

# Allowed values per switch (booleans and integers are checked by type).
CHOICES: dict[str, tuple[str, ...]] = {
    "assistant_layout": ("space", "newline"),
    "assistant_content": ("strip", "raw", "rstrip"),
    "stop_strings": ("eos_only", "role_lines"),
    "parser": ("find_slices", "tolerant"),
    "name_matching": ("suffix", "exact"),
    "tool_input": ("raw", "parsed"),
    "observation_format": ("ascii_whole_reply", "unicode_error_response"),
    "status_codes": ("upstream", "corrected"),
    "http_failures": ("upstream", "classified"),
    "on_unavailable": ("observe", "fail"),
    "thought_node": ("raw_output", "parsed_thought"),
    "message_format": ("tool_calls", "tool_calls_vllm", "function_call"),
    "answer_functions": ("openai_tools", "bare"),
    "token_count": ("hf_len_bug", "usage"),
    "answer_file_encoding": ("ascii", "utf8_newline"),
    "eos_first_token": ("continue", "stop"),
    "native_message": ("sdk_dict", "clean"),
    "native_request": ("upstream", "greedy"),
}


@dataclass(frozen=True)
class EvalProtocol:
    """One value per rule; see `docs/protocol.md` for what each value does and where upstream does it."""

    name: str
    # Function schemas: upstream's `required: ["", ...]`/`optional: [""]` lists, optional-only APIs
    # without parameters, `example_value: null`, duplicate names (`benchmark.schemas`).
    schema_quirks: bool
    # A past assistant turn in the ToolLLaMA prompt: `Assistant: <text>` (space) or `Assistant:\n<text>`.
    assistant_layout: str
    # The model text kept as the assistant turn: HF client `.strip()`, vLLM client as is, ours `.rstrip()`;
    # all cut at the first end-of-sequence marker.
    assistant_content: str
    stop_strings: str
    # Keep only the last N prompt tokens (0: all): upstream's HF client 8192 - 1024 - 8 = 7160, vLLM 7168.
    truncate_prompt_tokens: int
    # An EOS as the very first generated token: upstream's HF client keeps generating (`force_generate`).
    eos_first_token: str
    # `find_slices`: upstream `react_parser` (`str.find` slices, no checks, always one call);
    # `tolerant`: ours, with a format-hint observation when there is no call.
    parser: str
    # `suffix`: the first function whose name ends with the action (upstream); `exact`: ours.
    name_matching: str
    # `raw`: the model's argument text goes to the tool server as written (strict JSON, names unchanged);
    # `parsed`: a lenient parse, re-serialised with standardized names.
    tool_input: str
    # Status of arguments that are not a JSON object: upstream records the server's parse error as 0.
    bad_input_status: int
    # `ascii_whole_reply`: `json.dumps(server reply)` (all keys, `\\u` escapes); ours: `{error, response}` as UTF-8.
    observation_format: str
    # Cut every observation (Finish, unknown names too) to `max_observation_length`, or only tool replies.
    cut_all_observations: bool
    status_codes: str
    # HTTP failures of a tool server: `upstream` posts once and records every non-200 reply as 12;
    # `classified` retries 429/5xx and records them as 9/6.
    http_failures: str
    on_unavailable: str
    # `single_chain_max_step` when the run config does not set one (depth in nodes, 3 per call).
    single_chain_max_step: int
    thought_node: str
    message_format: str
    answer_functions: str
    # Upstream writes `is_terminal: false` on every node and a CoT try's `win` one try late.
    node_json_quirks: bool
    token_count: str
    answer_file_encoding: str
    # Native function calling (`tool_format=native`): how the API's assistant message is recorded.
    # `sdk_dict`: as upstream's `ChatGPTFunction` keeps it (the openai SDK's `.dict()`: `content, refusal,
    # role, function_call, tool_calls`; ReAct loses `function_call` once a message is sent, DFSDT drops
    # None fields); `clean`: role, content and tool_calls, no None fields.
    native_message: str
    # The chat request of a native turn: `upstream` is `ChatGPTFunction`'s (max_tokens 1024, frequency and
    # presence penalty 0, no temperature: the server's default); `greedy` sends our decoding settings.
    native_request: str
    overrides: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        """The name, with any overridden switches: what leaderboards show."""
        if not self.overrides:
            return self.name
        return f"{self.name} ({', '.join(f'{k}={v}' for k, v in sorted(self.overrides.items()))})"

    @property
    def stop(self) -> tuple[str, ...]:
        return UPSTREAM_STOP if self.stop_strings == "eos_only" else ROLE_LINE_STOP

    def switches(self) -> dict[str, Any]:
        """Every switch and its value (for manifests)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("name", "overrides")}

    def manifest(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "overrides": dict(self.overrides),
                "switches": self.switches()}


STABLETOOLBENCH = EvalProtocol(
    name="stabletoolbench",
    schema_quirks=True,
    assistant_layout="space",
    assistant_content="strip",
    stop_strings="eos_only",
    truncate_prompt_tokens=7160,
    eos_first_token="continue",
    parser="find_slices",
    name_matching="suffix",
    tool_input="raw",
    bad_input_status=0,
    observation_format="ascii_whole_reply",
    cut_all_observations=True,
    status_codes="upstream",
    http_failures="upstream",
    # Upstream shows the model the error of a dead tool server. Both protocols keep `fail` (no answer, the
    # query is retried): an outage is not something to reproduce. `on_unavailable=observe` gives upstream's.
    on_unavailable="fail",
    single_chain_max_step=50,  # qa_pipeline_multithread.py's default, the README's command (qa_pipeline.py: 12)
    thought_node="raw_output",
    message_format="tool_calls",
    answer_functions="openai_tools",
    node_json_quirks=True,
    token_count="hf_len_bug",
    answer_file_encoding="ascii",
    native_message="sdk_dict",
    native_request="upstream",
)

STABLETOOLBENCH_VLLM = dataclasses.replace(
    STABLETOOLBENCH, name="stabletoolbench-vllm", assistant_content="raw", message_format="tool_calls_vllm",
    token_count="usage", truncate_prompt_tokens=7168, eos_first_token="stop",
)

TOOLBENCH_EVAL = EvalProtocol(
    name="toolbench-eval",
    schema_quirks=False,
    assistant_layout="newline",
    assistant_content="rstrip",
    stop_strings="role_lines",
    truncate_prompt_tokens=0,
    eos_first_token="stop",
    parser="tolerant",
    name_matching="exact",
    tool_input="parsed",
    bad_input_status=2,
    observation_format="unicode_error_response",
    cut_all_observations=False,
    status_codes="corrected",
    http_failures="classified",
    on_unavailable="fail",
    single_chain_max_step=12,
    thought_node="parsed_thought",
    message_format="function_call",
    answer_functions="bare",
    node_json_quirks=False,
    token_count="usage",
    answer_file_encoding="utf8_newline",
    native_message="clean",
    native_request="greedy",
)

PROTOCOLS: dict[str, EvalProtocol] = {p.name: p for p in (STABLETOOLBENCH, STABLETOOLBENCH_VLLM, TOOLBENCH_EVAL)}
DEFAULT_PROTOCOL = "stabletoolbench"
SWITCHES = tuple(f.name for f in dataclasses.fields(EvalProtocol) if f.name not in ("name", "overrides"))


class ProtocolError(ValueError):
    """An unknown protocol, switch or value (the message names it and lists the choices)."""


def _coerce(switch: str, value: Any) -> Any:
    kind = type(getattr(TOOLBENCH_EVAL, switch))
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ProtocolError(f"protocol switch {switch}: {value!r} is not true or false")
        return value
    if kind is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ProtocolError(f"protocol switch {switch}: {value!r} is not an integer") from None
    value = str(value)
    if value not in CHOICES[switch]:
        raise ProtocolError(f"protocol switch {switch}: {value!r} is not one of {list(CHOICES[switch])}")
    return value


def resolve_protocol(name: str | None = None, overrides: Mapping[str, Any] | None = None) -> EvalProtocol:
    """The named protocol with `overrides` applied (each checked against its switch's values)."""
    name = name or DEFAULT_PROTOCOL
    if name not in PROTOCOLS:
        raise ProtocolError(f"protocol {name!r} is not one of {sorted(PROTOCOLS)}")
    base = PROTOCOLS[name]
    changed: dict[str, Any] = {}
    for switch, value in (overrides or {}).items():
        if switch not in SWITCHES:
            raise ProtocolError(f"protocol switch {switch!r} does not exist; switches: {list(SWITCHES)}")
        value = _coerce(switch, value)
        if value != getattr(base, switch):
            changed[switch] = value
    return dataclasses.replace(base, **changed, overrides=changed)
