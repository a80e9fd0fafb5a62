"""`toolbench-eval convert`: raw answer files <-> ToolEval's converted format.

    toolbench-eval convert --answer-dir DIR --method CoT@1 --output FILE
    toolbench-eval convert --from-converted FILE --method CoT@1 --answer-dir DIR

The first form is StableToolBench's `convert_to_answer_format.py`: it reads every `*.json` in DIR
whose name contains the method string (qid = the name before the first `_`) and writes one converted
file. The second writes one minimal raw answer file per entry of a converted file
(`reasoning.convert.converted_to_raw`; what cannot be recovered is listed there).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from toolbench_eval.errors import UserError, located

_METHOD = re.compile(r"^(CoT@\d+|DFS\w*_w\d+)$")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert raw answer files to ToolEval's converted format (or back)",
        description="Convert StableToolBench raw answer files (<qid>_<method>.json) into the ToolEval "
                    "converted format, exactly as convert_to_answer_format.py, or back with --from-converted.")
    parser.add_argument("--answer-dir", required=True, type=Path,
                        help="folder of raw answer files (read; with --from-converted: written)")
    parser.add_argument("--method", required=True, metavar="{CoT@1,DFS_woFilter_w2}",
                        help="method name as in the file names, e.g. CoT@1 or DFS_woFilter_w2")
    parser.add_argument("--output", type=Path, help="converted file to write (required unless --from-converted)")
    parser.add_argument("--from-converted", type=Path, metavar="FILE",
                        help="read this converted file and write minimal raw answer files into --answer-dir")
    parser.add_argument("--seed", type=int, default=42,
                        help="seed for upstream's random choices (CoT try, DFS path); default 42 as upstream")
    parser.set_defaults(func=run)


def run(args) -> int:
    from reasoning.answer import answer_filename, write_answer_file
    from reasoning.convert import MalformedAnswerError, convert_answer_dir, converted_to_raw

    method = args.method
    if not _METHOD.match(method):
        raise UserError(f"--method {method!r}: expected a StableToolBench method name such as CoT@1 or "
                        "DFS_woFilter_w2")

    if args.from_converted is not None:
        source = args.from_converted
        try:
            entries = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise UserError(f"{source}: no such file; pass the converted JSON written by 'convert --output'") \
                from error
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise located(source, f"not a readable JSON file: {error}") from error
        if not isinstance(entries, dict):
            raise located(source, "expected a JSON object {qid: entry}; is this a converted answer file?")
        raws = {}
        for qid, entry in entries.items():
            try:
                raws[qid] = converted_to_raw(entry, method)
            except MalformedAnswerError as error:
                raise located(source, str(error), entry=qid, field="answer") from error
        for qid, raw in raws.items():  # written only once every entry converted
            write_answer_file(args.answer_dir / answer_filename(qid, method), raw)
        print(f"wrote {len(raws)} raw answer files to {args.answer_dir}", file=sys.stderr)
        return 0

    if args.output is None:
        raise UserError("convert: --output FILE is required (or use --from-converted FILE)")
    if not args.answer_dir.is_dir():
        raise UserError(f"{args.answer_dir}: not a folder; --answer-dir must hold <qid>_{method}.json files")
    try:
        converted = convert_answer_dir(args.answer_dir, method, seed=args.seed)
    except MalformedAnswerError as error:
        raise UserError(f"{error}; fix or remove that file and re-run (nothing was written)") from error
    if not converted:
        raise UserError(f"{args.answer_dir}: no *.json file with {method!r} in its name; check --method")
    write_answer_file(args.output, converted)
    print(f"Converted {len(converted)} answers -> {args.output}", file=sys.stderr)
    return 0
