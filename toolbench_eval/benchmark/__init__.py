"""Benchmark data: ToolBench-format queries and tool documentation as typed objects."""

from toolbench_eval.benchmark.model import GROUPS, Api, GroundTruth, Group, Parameter, Query, Tool

__all__ = ["GROUPS", "Api", "GroundTruth", "Group", "Parameter", "Query", "Tool"]
