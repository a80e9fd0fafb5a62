"""Speed benchmarks behind `toolbench-eval bench NAME`: one module each exposing `register(subparsers)`.
(The benchmark data, queries and tools, is `toolbench_eval.benchmark`.)

Benchmarks measure side by side in one run and write their tables to `results/benchmarks/`.
Tests never assert on wall-clock time; speed lives here.
"""
