"""`toolbench-eval replay`: re-run raw answer files' recorded outputs under a protocol and compare.

    toolbench-eval replay results/stb/G1_instruction/*_CoT@1.json --protocol stabletoolbench

For each file: our `train_messages`, tree (DFS) or tries (CoT), converted answer and file bytes, each
identical to the file's or not, with the first difference. Exit 0 when every file's `train_messages`, tree
and converted answer are identical, 1 otherwise (the protocol's regression test; see `toolbench_eval.replay`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reasoning.eval_protocol import PROTOCOLS, ProtocolError, resolve_protocol
from toolbench_eval.atomic import write_text_atomic
from toolbench_eval.errors import UserError
from toolbench_eval.runner.config import parse_key_values

PARTS = ("train_messages", "tree", "converted", "file")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="re-run answer files' recorded model outputs and observations under a protocol; report what differs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("answer_files", nargs="+", type=Path, metavar="ANSWER_FILE")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="stabletoolbench",
                        help="the protocol to replay under (default stabletoolbench)")
    parser.add_argument("--protocol-args", help="switch overrides, key=value,... (docs/protocol.md)")
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="also write the per-file report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolbench_eval.replay import replay_file

    try:
        protocol = resolve_protocol(args.protocol, parse_key_values(args.protocol_args))
    except ProtocolError as error:
        raise UserError(f"--protocol-args: {error}") from None
    files = []
    for path in args.answer_files:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    if not files:
        raise UserError("no answer files given (a folder is searched for *.json)")
    reports = []
    for path in files:
        report = replay_file(path, protocol)
        reports.append(report)
        same = ", ".join(part for part in PARTS if report.identical[part]) or "nothing"
        print(f"{'OK  ' if report.ok else 'DIFF'} {path}  ({report.method}, {report.decisions} decisions; "
              f"identical: {same})")
        for part, where in report.first_difference.items():
            print(f"     {part}: {where}")
    ok = sum(report.ok for report in reports)
    print(f"{ok}/{len(reports)} files replay identically under {protocol.label}")
    if args.json is not None:
        write_text_atomic(args.json, json.dumps({"protocol": protocol.manifest(),
                                                 "files": [r.as_dict() for r in reports]}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if ok == len(reports) else 1
