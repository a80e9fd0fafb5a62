"""The `toolbench-eval` command line.

Each subcommand lives in its own module under `toolbench_eval/commands/` and exposes
`register(subparsers)`, which adds its parser and sets `func` (a callable taking the parsed
args and returning an exit code). Commands are discovered, so adding one never edits this file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from toolbench_eval import __version__, commands
from toolbench_eval.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolbench-eval",
        description="Evaluate tool-using LLMs on ToolBench-format benchmarks, with Attention Buckets.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="show only warnings and errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Our own messages (counts, warnings about data) go to stderr as plain lines; libraries keep their
    default levels so their INFO chatter stays out of the way."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    for name in ("toolbench_eval", "buckets", "reasoning"):
        logger = logging.getLogger(name)
        if not any(getattr(handler, "_toolbench_eval", False) for handler in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler._toolbench_eval = True
            logger.addHandler(handler)
            logger.propagate = False
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"toolbench-eval: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("toolbench-eval: interrupted; finished work is saved and a re-run resumes", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output stopped (`| head`): end quietly, like other command-line tools, and keep
        # Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
