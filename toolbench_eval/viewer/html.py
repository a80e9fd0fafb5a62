"""Render the view data (`viewer.data.view_data`) as one self-contained HTML file.

Inline CSS and script, the data embedded as JSON; no external asset, no network. Run data never becomes
markup: it travels as JSON inside a non-executed `<script type="application/json">` block, with `<`, `>` and
`&` written as JSON escapes so no text (a model writing `</script>`) can close that block, and the page script
puts every string into the page as text. A Content-Security-Policy allows only the page's own script (by its
hash) and no connection, so even a mistake in escaping could not load or run anything else.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from typing import Any

from toolbench_eval import __version__
from toolbench_eval.tools.base import Status
from toolbench_eval.viewer.script import SCRIPT
from toolbench_eval.viewer.style import STYLE

# JSON escapes that keep the embedded data inert inside HTML: `<`/`>` cannot form a tag (`</script>`, `<!--`),
# `&` cannot start an entity, and U+2028/U+2029 are escaped for the odd JavaScript parser that reads raw JSON.
_INERT = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def embed_json(value: Any) -> str:
    """`value` as JSON text that is safe between `<script type="application/json">` tags."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return "".join(_INERT.get(char, char) for char in text)


def _script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def _title(data: dict[str, Any]) -> str:
    return " vs ".join(run["run_id"] for run in data["runs"])


def render_html(data: dict[str, Any]) -> str:
    """The report page for `data` (one or two runs)."""
    payload = {**data, "status_names": {str(s.value): s.name.lower().replace("_", " ") for s in Status}}
    policy = (f"default-src 'none'; style-src 'unsafe-inline'; script-src '{_script_hash(SCRIPT)}'; "
              "img-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'")
    title = html.escape(_title(data))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{html.escape(policy)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="toolbench-eval {html.escape(__version__)}">
<title>{title} · toolbench-eval</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>toolbench-eval · {title}</h1>
<div id="runs" class="runs"></div>
</header>
<div class="filters">
<input id="text-filter" type="search" placeholder="filter: id, query, reason, answer, stage" aria-label="text filter">
<label>verdict <select id="verdict-filter"><option value="">all</option></select></label>
<label>group <select id="group-filter"><option value="">all</option></select></label>
<label><input id="diverge-filter" type="checkbox"> only where the runs diverge</label>
<span id="shown" class="hint"></span>
</div>
<main>
<div class="table-pane"><table id="queries"></table></div>
<div id="detail" class="detail"><div class="empty">select a query</div></div>
</main>
<noscript>This report draws its table with JavaScript; open it in a browser with scripts enabled.</noscript>
<script type="application/json" id="view-data">{embed_json(payload)}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""
