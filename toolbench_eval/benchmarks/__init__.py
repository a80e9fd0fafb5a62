"""Benchmarks behind `toolbench-eval bench NAME`: one module each exposing `register(subparsers)`.

Benchmarks measure side by side in one run and write their tables to `results/benchmarks/`.
Tests never assert on wall-clock time; speed lives here.
"""
