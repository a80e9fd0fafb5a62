"""toolbench-eval: evaluate tool-using LLMs on ToolBench-format benchmarks, with Attention Buckets."""

__version__ = "0.1.0"
