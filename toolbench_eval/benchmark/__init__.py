"""Benchmark data: ToolBench-format queries and tool documentation as typed objects."""

from toolbench_eval.benchmark.loader import (
    load_benchmark,
    load_file_group,
    load_group,
    load_query_file,
    load_tools,
    resolve_benchmark_root,
)
from toolbench_eval.benchmark.model import GROUPS, Api, GroundTruth, Group, Parameter, Query, Tool
from toolbench_eval.benchmark.naming import function_name, standardize
from toolbench_eval.benchmark.schemas import (
    FINISH_FUNCTION,
    FunctionIndex,
    api_to_function,
    build_function_index,
    build_functions,
    tool_descriptions,
)

__all__ = [
    "FINISH_FUNCTION",
    "GROUPS",
    "Api",
    "FunctionIndex",
    "GroundTruth",
    "Group",
    "Parameter",
    "Query",
    "Tool",
    "api_to_function",
    "build_function_index",
    "build_functions",
    "function_name",
    "load_benchmark",
    "load_file_group",
    "load_group",
    "load_query_file",
    "load_tools",
    "resolve_benchmark_root",
    "standardize",
    "tool_descriptions",
]
