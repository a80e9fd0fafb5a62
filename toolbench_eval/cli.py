"""The `toolbench-eval` command line.

Each subcommand lives in its own module under `toolbench_eval/commands/` and exposes
`register(subparsers)`, which adds its parser and sets `func` (a callable taking the parsed
args and returning an exit code). Commands are discovered, so adding one never edits this file.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import pkgutil
import sys
import traceback

from toolbench_eval import __version__, commands
from toolbench_eval.errors import UserError
from toolbench_eval.redaction import RedactingFilter, redacting_streams

# Operating-system errors a user fixes (a folder that is read-only or full, a file where a folder should be),
# not bugs of ours.
USER_OS_ERRORS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                            errno.EISDIR, errno.EEXIST})


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


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record is emitted: the redacting wrapper `main` installs,
    or a test's capture, never a stream that was replaced (and perhaps closed) since the handler was made."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns one; the current stderr always wins
        pass


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Our own messages (counts, warnings about data) go to stderr as plain lines; libraries keep their
    default levels so their INFO chatter stays out of the way."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    for name in ("toolbench_eval", "buckets", "reasoning"):
        logger = logging.getLogger(name)
        if not any(getattr(handler, "_toolbench_eval", False) for handler in logger.handlers):
            handler = _CurrentStderrHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler.addFilter(RedactingFilter())
            handler._toolbench_eval = True
            logger.addHandler(handler)
            logger.propagate = False
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """Run one command; what it prints passes the redaction rule (`toolbench_eval.redaction`)."""
    with redacting_streams():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
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
    except Exception as error:  # noqa: BLE001 -- the last handler: every failure ends in a clean message
        if isinstance(error, OSError) and error.errno in USER_OS_ERRORS:
            where = error.filename or "a file"
            print(f"toolbench-eval: error: cannot use {where}: {error.strerror}; fix: choose a writable "
                  "folder (--out, TOOLBENCH_EVAL_CACHE) or free space there", file=sys.stderr)
            return 2
        # A bug of ours: show the traceback (redacted, unlike Python's own printing at exit).
        traceback.print_exc()
        print("toolbench-eval: internal error (the traceback above shows where); finished work is saved",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
