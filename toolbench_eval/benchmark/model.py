"""Typed view of ToolBench / StableToolBench data.

Field names follow the upstream JSON keys so a reader can map one to the other at a glance.
Objects are immutable; `raw` keeps the original entry for lossless round trips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The six standard test groups, in StableToolBench's column order (I1-Inst, I1-Cat, I1-Tool, I2-Inst, I2-Cat, I3-Inst).
GROUPS: tuple[str, ...] = (
    "G1_instruction",
    "G1_category",
    "G1_tool",
    "G2_instruction",
    "G2_category",
    "G3_instruction",
)

# Leaderboard labels for the groups, same order.
GROUP_LABELS: dict[str, str] = {
    "G1_instruction": "I1-Inst",
    "G1_category": "I1-Cat",
    "G1_tool": "I1-Tool",
    "G2_instruction": "I2-Inst",
    "G2_category": "I2-Cat",
    "G3_instruction": "I3-Inst",
}


@dataclass(frozen=True)
class Parameter:
    """One API parameter as documented (`required_parameters` / `optional_parameters` entries)."""

    name: str
    type: str
    description: str = ""
    default: Any = None


@dataclass(frozen=True)
class Api:
    """One API of a tool, as it appears in a query's `api_list` or a tool JSON's `api_list`."""

    category_name: str
    tool_name: str  # original (unstandardized) tool name
    api_name: str  # original (unstandardized) API name
    api_description: str = ""
    required_parameters: tuple[Parameter, ...] = ()
    optional_parameters: tuple[Parameter, ...] = ()
    method: str = "GET"
    template_response: Any = None


@dataclass(frozen=True)
class Tool:
    """A tool documentation file `toolenv/tools/<Category>/<standardized_name>.json`."""

    category_name: str
    tool_name: str
    standardized_name: str  # the file stem
    tool_description: str = ""
    title: str = ""
    apis: tuple[Api, ...] = ()
    source: str = ""  # the tool JSON file it was read from; "" when built from queries' api_list


@dataclass(frozen=True)
class GroundTruth:
    """LocalToolBench only: what a correct final answer must state, and a minimal plan that finds it."""

    facts: tuple[str, ...]
    call_plan: tuple[dict[str, Any], ...] = ()  # [{"tool_name", "api_name", "arguments": {...}}]


@dataclass(frozen=True)
class Query:
    """One benchmark query (an entry of `test_instruction/<group>.json`)."""

    query_id: str  # upstream stores an int; kept as text because answer files and id files key by text
    query: str
    group: str
    api_list: tuple[Api, ...]
    relevant_apis: tuple[tuple[str, str], ...] = ()  # (tool_name, api_name) pairs
    ground_truth: GroundTruth | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Group:
    """A test group: its queries and the tool documents they reference (keyed by (category, standardized name))."""

    name: str
    queries: tuple[Query, ...]
    tools: dict[tuple[str, str], Tool] = field(default_factory=dict, compare=False, repr=False)
