"""The report's stylesheet, inlined into the page (the report is one file that needs nothing else)."""

STYLE = r"""
:root { --fg: #1d2329; --muted: #5d6872; --line: #d9dee3; --bg: #ffffff; --soft: #f4f6f8;
  --solved: #1f7a3d; --unsolved: #b3261e; --unsure: #a86b00; --chosen: #2f6fdb; --disagree: #c2410c; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); }
header { padding: 14px 20px 6px; border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0 0 8px; }
h2 { font-size: 15px; margin: 0 0 4px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.runs { display: flex; gap: 24px; flex-wrap: wrap; }
.run-card { min-width: 280px; }
.meta, .hint { color: var(--muted); font-size: 12px; }
.notes { color: var(--unsure); font-size: 12px; margin: 4px 0; padding-left: 18px; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; background: var(--soft);
  border: 1px solid var(--line); margin-right: 4px; white-space: nowrap; }
.v-solved { color: #fff; background: var(--solved); border-color: var(--solved); }
.v-unsolved { color: #fff; background: var(--unsolved); border-color: var(--unsolved); }
.v-unsure { color: #fff; background: var(--unsure); border-color: var(--unsure); }
.legend { margin-top: 4px; font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 3px 0 8px;
  vertical-align: -1px; }
.filters { display: flex; gap: 10px; align-items: center; padding: 10px 20px; flex-wrap: wrap;
  border-bottom: 1px solid var(--line); background: var(--soft); }
.filters input[type=search] { width: 280px; padding: 4px 6px; }
main { display: grid; grid-template-columns: minmax(460px, 52%) 1fr; height: calc(100vh - 150px);
  min-height: 420px; }
.table-pane { overflow: auto; border-right: 1px solid var(--line); }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th { position: sticky; top: 0; background: #fff; text-align: left; border-bottom: 2px solid var(--line);
  padding: 5px 6px; white-space: nowrap; }
td { border-bottom: 1px solid var(--line); padding: 4px 6px; vertical-align: top; }
td.stage { white-space: nowrap; font-size: 12px; color: var(--unsolved); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.reason { color: var(--muted); max-width: 170px; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: #eef3fb; }
tbody tr.selected { background: #dce8fb; }
.detail { overflow: auto; padding: 12px 18px 40px; }
.query-text { background: var(--soft); border-left: 3px solid var(--line); padding: 6px 10px; margin: 6px 0;
  white-space: pre-wrap; }
.diagnosis { border: 1px solid var(--unsolved); border-radius: 4px; padding: 6px 10px; margin: 8px 0;
  background: #fdf1f0; }
.steps { list-style: none; padding: 0; margin: 0; }
.step { border: 1px solid var(--line); border-radius: 5px; padding: 6px 9px; margin: 6px 0; background: #fff; }
.step.chosen { border-color: var(--chosen); box-shadow: inset 3px 0 0 var(--chosen); }
.step.pruned { opacity: 0.7; }
.step.disagree { background: #fff7ed; }
.step.diverge { outline: 2px dashed var(--disagree); outline-offset: 1px; }
.step.compact { padding: 4px 8px; margin: 4px 0; }
.step.compact .thought { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; margin: 1px 0; }
.step.compact details > summary { margin: 2px 0; font-size: 12px; }
.args-inline { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; color: var(--muted);
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 420px; }
.step-head { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.step-no { color: var(--muted); font-size: 12px; }
.call { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-weight: 600; }
.thought { margin: 4px 0; white-space: pre-wrap; }
.field-label { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: 0.04em; }
pre { margin: 2px 0 4px; padding: 5px 7px; background: var(--soft); border-radius: 3px; white-space: pre-wrap;
  word-break: break-word; max-height: 220px; overflow: auto; font-size: 12px; }
.status-ok { background: #e8f5ec; }
.status-bad { background: #fdecea; }
.tree, .tree ul { list-style: none; margin: 0; padding-left: 18px; }
.tree { padding-left: 0; }
.tree li { position: relative; padding-left: 12px; }
.tree li::before { content: ""; position: absolute; left: 0; top: 0; bottom: 0; border-left: 1px solid #b9c2cb; }
.tree li::after { content: ""; position: absolute; left: 0; top: 15px; width: 10px; border-top: 1px solid #b9c2cb; }
.tree li.on-path::before, .tree li.on-path::after { border-color: var(--chosen); border-width: 2px; }
.weights { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; }
.wbar { display: inline-flex; width: 120px; height: 10px; border: 1px solid var(--line); border-radius: 2px;
  overflow: hidden; }
.wbar span { display: block; height: 100%; }
.strip { display: flex; flex-wrap: wrap; gap: 1px; margin: 3px 0; max-width: 520px; }
.strip span { width: 5px; height: 8px; }
.flag { color: var(--disagree); font-weight: 600; font-size: 12px; }
.compare-grid { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
.empty { color: var(--muted); padding: 20px; }
details > summary { cursor: pointer; color: var(--muted); margin: 6px 0; }
"""
