"""`toolbench-eval bench NAME`: speed benchmarks, discovered from `toolbench_eval.speed`."""

import importlib
import pkgutil

from toolbench_eval import speed


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="run a speed benchmark and write results/benchmarks/NAME.md")
    names = parser.add_subparsers(dest="benchmark", metavar="NAME", required=True)
    for module_info in sorted(pkgutil.iter_modules(speed.__path__), key=lambda m: m.name):
        if not module_info.name.startswith("_"):
            importlib.import_module(f"{speed.__name__}.{module_info.name}").register(names)
