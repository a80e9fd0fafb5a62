"""`toolbench-eval view`: one self-contained HTML report of a run, or of two runs side by side.

    toolbench-eval view results/runs/quickstart/react-auto3
    toolbench-eval view results/runs/quickstart/react-auto3 results/runs/quickstart/react-nobuckets --serve

The report (one file, no network) has a filterable query table (verdict, judge reason, steps, tokens, time),
each trajectory step by step, DFSDT trees with the chosen path, the `diagnose` stage of unsolved queries, the
bucket weights a run recorded (`record_bucket_weights`), and for two runs the first step where they diverge.
"""

from __future__ import annotations

import argparse
import http.server
import re
import time
from pathlib import Path

from toolbench_eval.atomic import write_text_atomic
from toolbench_eval.errors import UserError

LOOPBACK = "127.0.0.1"  # the report holds model outputs and tool responses: never serve it beyond this machine


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "view",
        help="write one self-contained HTML report of a run (or two, side by side)",
        description="Writes a static HTML file (inline CSS and script, no network): query table, trajectories, "
        "DFSDT trees, diagnosis, bucket weights; with two runs, where each shared query diverges first.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="one run directory, or two")
    parser.add_argument("--out", type=Path,
                        help="the HTML file (default: RUN_DIR/view.html, or RUN_DIR/view_vs_<run2>.html)")
    parser.add_argument("--judge", default="rule",
                        help="whose verdicts: RUN_DIR/scores/pass_rate_<judge>.json (default rule; an unscored "
                        "run is scored with the rule judge in memory)")
    parser.add_argument("--serve", action="store_true", help=f"also serve the report on http://{LOOPBACK}:PORT/")
    parser.add_argument("--port", type=int, default=8765, help="port for --serve (default 8765; 0: any free one)")
    parser.set_defaults(func=run)


def default_out(run_dirs: list[Path]) -> Path:
    if len(run_dirs) == 1:
        return run_dirs[0] / "view.html"
    other = re.sub(r"[^A-Za-z0-9._-]+", "_", run_dirs[1].resolve().name)
    return run_dirs[0] / f"view_vs_{other}.html"


def run(args: argparse.Namespace) -> int:
    from toolbench_eval.viewer.data import view_data
    from toolbench_eval.viewer.html import render_html

    if len(args.run_dirs) > 2:
        raise UserError(f"view takes one run directory, or two to compare; got {len(args.run_dirs)}")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: choose a port between 1 and 65535 (or 0 for any free one)")
    started = time.perf_counter()
    page = render_html(view_data(args.run_dirs, judge_id=args.judge))
    out = args.out or default_out(args.run_dirs)
    write_text_atomic(out, page)
    print(f"wrote {out} ({len(page.encode('utf-8')):,} bytes, {time.perf_counter() - started:.1f} s)")
    if args.serve:
        serve(page, args.port)
    return 0


def serve(page: str, port: int) -> None:
    """Serve the one page on the loopback interface until interrupted."""
    server = report_server(page, port)
    print(f"serving on http://{LOOPBACK}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped serving")
    finally:
        server.server_close()


def report_server(page: str, port: int) -> http.server.ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 that answers `/` with the page and anything else with 404."""
    body = page.encode("utf-8")

    class ReportHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server dispatches GET requests to
            if self.path not in ("/", "/index.html"):
                self.send_error(404, "only / is served")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # quiet: a line per request is noise here
            pass

    try:
        return http.server.ThreadingHTTPServer((LOOPBACK, port), ReportHandler)
    except OSError as error:
        raise UserError(f"--port {port}: cannot listen on {LOOPBACK} ({error.strerror}); choose another port "
                        "or --port 0") from None
