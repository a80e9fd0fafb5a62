"""The report's script, inlined into the page: it reads the embedded JSON and builds the table and the
trajectories with DOM calls only. Every text from a run goes in through `textContent`, never as markup, so a
model's output cannot become HTML or script."""

SCRIPT = r"""
"use strict";
const DATA = JSON.parse(document.getElementById("view-data").textContent);
const RUNS = DATA.runs;
const PAIRS = DATA.comparison ? DATA.comparison.pairs : null;
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac"];
const VERDICT_CLASS = {Solved: "v-solved", Unsolved: "v-unsolved", Unsure: "v-unsure"};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function color(k) { return PALETTE[k % PALETTE.length]; }
function verdictBadge(verdict) { return el("span", {class: "badge " + (VERDICT_CLASS[verdict] || "")}, verdict); }
function pretty(text) {
  try { const value = JSON.parse(text); return typeof value === "object" ? JSON.stringify(value, null, 2) : text; }
  catch (error) { return text; }
}
function fmt(value, digits) {
  if (value === null || value === undefined || value === "") return "";
  return typeof value === "number" && digits !== undefined ? value.toFixed(digits) : String(value);
}
function baseLabel(run, k) { return run.bases.length > k ? "base " + run.bases[k] : "bucket " + k; }

// ---------- header ----------
function legend(run) {
  if (!run.bases.length) return null;
  return el("div", {class: "legend"}, "buckets" + (run.fusion ? " (" + run.fusion + ")" : "") + ":",
    run.bases.map((base, k) => [el("span", {class: "swatch", style: "background:" + color(k)}), String(base)]));
}
function runCard(run, label) {
  const counts = Object.entries(run.counts).map(([v, n]) =>
    el("span", {class: "badge " + (VERDICT_CLASS[v] || "")}, v + " " + n));
  return el("div", {class: "run-card", "data-run": run.run_id},
    el("h2", {}, label ? label + ": " : "", run.run_id),
    el("div", {class: "meta"}, run.method_label + " · " + run.model + " · " + run.queries.length +
      " queries · verdicts: " + run.verdicts_from),
    el("div", {}, counts), legend(run),
    run.notes.length ? el("ul", {class: "notes"}, run.notes.map(n => el("li", {}, n))) : null);
}

// ---------- one step ----------
function statusBadge(status) {
  if (status === null || status === undefined) return null;
  const name = DATA.status_names[String(status)] || "status";
  return el("span", {class: "badge " + (status === 0 || status === 3 ? "status-ok" : "status-bad"),
    title: "ToolBench status code"}, status + " " + name);
}
function weightsView(weights, run) {
  const bar = el("span", {class: "wbar", title: "mean bucket weight over the step's tokens"},
    weights.mean.map((w, k) => el("span", {style: "width:" + (100 * Math.max(0, w)).toFixed(1) +
      "%;background:" + color(k), title: baseLabel(run, k) + ": " + w.toFixed(3)})));
  return el("span", {class: "weights"}, bar,
    el("span", {}, "decided by " + baseLabel(run, weights.top) + " (" + Math.round(100 * weights.top_share) +
      "% of " + weights.tokens + " tokens)"),
    weights.disagree ? el("span", {class: "flag", title: "the deciding bucket wrote under 75% of the tokens"},
      "buckets disagreed") : null);
}
function oneLine(text, limit) {
  const flat = String(text).replace(/\s+/g, " ").trim();
  return flat.length > limit ? flat.slice(0, limit - 1) + "…" : flat;
}
function stepCard(step, run, label, extraClass, compact) {
  const classes = ["step"];
  if (step.chosen) classes.push("chosen");
  if (step.pruned) classes.push("pruned");
  if (step.weights && step.weights.disagree) classes.push("disagree");
  if (extraClass) classes.push(extraClass);
  if (compact) classes.push("compact");
  const strip = step.weights && step.weights.strip.length ? el("div", {class: "strip",
    title: "per token: the bucket with the largest weight"},
    step.weights.strip.map(k => el("span", {style: "background:" + color(k)}))) : null;
  const hasArguments = step.arguments !== null && step.arguments !== "";
  const hasObservation = step.observation !== null && step.observation !== undefined;
  const fields = [
    hasArguments ? [el("div", {class: "field-label"}, "arguments"), el("pre", {class: "args"}, pretty(step.arguments))] : null,
    hasObservation ? [el("div", {class: "field-label"}, "observation"), el("pre", {class: "obs"}, pretty(step.observation))] : null];
  return el("div", {class: classes.join(" ")},
    el("div", {class: "step-head"}, el("span", {class: "step-no"}, label),
      el("span", {class: "call"}, step.action === null ? "(no call)" : step.action),
      compact && hasArguments ? el("span", {class: "args-inline"}, oneLine(step.arguments, 90)) : null,
      statusBadge(step.status), step.pruned ? el("span", {class: "badge"}, "pruned") : null,
      extraClass === "diverge" ? el("span", {class: "flag"}, "runs diverge here") : null),
    step.weights ? el("div", {}, weightsView(step.weights, run)) : null, strip,
    step.thought ? el("div", {class: "thought", title: compact ? step.thought : null}, step.thought) : null,
    compact ? (hasArguments || hasObservation ? el("details", {}, el("summary", {}, "arguments and observation"), fields) : null)
      : fields);
}

// ---------- trajectories ----------
function treeItem(step, run, depth) {
  return el("li", {class: step.chosen ? "on-path" : null},
    stepCard(step, run, "depth " + depth, null, true),
    step.children.length ? el("ul", {}, step.children.map(child => treeItem(child, run, depth + 1))) : null);
}
function chosenPath(query) {
  if (query.kind === "chain") return query.tries.length ? query.tries[query.tries.length - 1] : [];
  const path = [];
  let level = query.tree || [];
  for (;;) {
    const next = level.find(step => step.chosen);
    if (!next) return path;
    path.push(next);
    level = next.children;
  }
}
function trajectoryView(query, run) {
  if (query.kind === "none") return el("div", {class: "empty"}, "no answer file (" + (query.outcome || "missing") + ")");
  if (query.kind === "tree") {
    return el("div", {},
      el("div", {class: "hint"}, "DFSDT tree: " + query.tree_steps + " steps; the chosen path (" + query.steps +
        " steps) is outlined"),
      el("ul", {class: "tree"}, query.tree.map(step => treeItem(step, run, 1))));
  }
  return el("div", {}, query.tries.map((steps, t) => el("div", {},
    query.tries.length > 1 ? el("h3", {}, "try " + (t + 1) + (t === query.tries.length - 1 ? " (final)" : "")) : null,
    el("ol", {class: "steps"}, steps.map((step, i) => el("li", {}, stepCard(step, run, "step " + (i + 1))))))));
}
function diagnosisView(query) {
  if (!query.diagnosis) return null;
  const d = query.diagnosis;
  return el("div", {class: "diagnosis"}, el("strong", {}, "diagnose: " + d.stage.replaceAll("_", " ")),
    el("span", {class: "hint"}, " · first call: " + (d.first_call || "none") + " · calls: " + d.calls +
      (d.first_call_rejected ? " · first call rejected by the API" : "")));
}
function queryHeader(query, run, label) {
  return el("div", {},
    el("h2", {}, (label ? label + " · " : "") + query.group + " / " + query.query_id + " "), verdictBadge(query.verdict),
    query.reason ? el("span", {class: "hint"}, " " + query.reason) : null,
    el("div", {class: "meta"}, run.run_id + " · " + query.steps + " steps · " + fmt(query.model_calls) +
      " model calls · " + fmt(query.tokens) + " tokens · " + fmt(query.seconds, 1) + " s"),
    query.weights_note ? el("div", {class: "notes"}, query.weights_note) : null,
    query.query ? el("div", {class: "query-text"}, query.query) : null,
    query.final_answer ? [el("div", {class: "field-label"}, "final answer"), el("pre", {}, query.final_answer)] : null,
    diagnosisView(query));
}
function singleDetail(index) {
  const run = RUNS[0], query = run.queries[index];
  return el("div", {}, queryHeader(query, run), el("h3", {}, "trajectory"), trajectoryView(query, run));
}
function pathColumn(query, run, label, diverge) {
  const path = chosenPath(query);
  return el("div", {},
    queryHeader(query, run, label),
    el("h3", {}, "final decision, step by step"),
    path.length ? el("ol", {class: "steps"}, path.map((step, i) => el("li", {},
      stepCard(step, run, "step " + (i + 1), i === diverge ? "diverge" : null)))) :
      el("div", {class: "empty"}, "no steps"),
    query.kind === "tree" ? el("details", {}, el("summary", {}, "whole DFSDT tree"), trajectoryView(query, run)) :
      query.kind === "chain" && query.tries.length > 1 ?
      el("details", {}, el("summary", {}, "all tries"), trajectoryView(query, run)) : null);
}
function compareDetail(pairIndex) {
  const pair = PAIRS[pairIndex];
  const a = RUNS[0].queries[pair.a], b = RUNS[1].queries[pair.b];
  const note = pair.diverge === null ? "the two runs made the same calls" :
    "the runs diverge first at step " + (pair.diverge + 1);
  return el("div", {}, el("div", {class: "hint"}, note),
    el("div", {class: "compare-grid"}, pathColumn(a, RUNS[0], "A", pair.diverge),
      pathColumn(b, RUNS[1], "B", pair.diverge)));
}

// ---------- the table ----------
function cells(query) {
  return [el("td", {}, query.group), el("td", {}, query.query_id), el("td", {}, verdictBadge(query.verdict))];
}
function singleRows() {
  return RUNS[0].queries.map((query, index) => ({
    index, groups: [query.group], verdicts: [query.verdict],
    text: [query.group, query.query_id, query.query, query.reason, query.final_answer, query.outcome,
      query.diagnosis ? query.diagnosis.stage : ""].join(" ").toLowerCase(),
    diverges: false,
    row: el("tr", {"data-index": index}, cells(query),
      el("td", {class: "reason", title: query.reason}, query.reason),
      el("td", {class: "num"}, query.kind === "tree" ? query.steps + " / " + query.tree_steps : query.steps),
      el("td", {class: "num"}, fmt(query.tokens)), el("td", {class: "num"}, fmt(query.seconds, 1)),
      el("td", {class: "stage"}, query.diagnosis ? query.diagnosis.stage.replaceAll("_", " ") : "")),
  }));
}
function compareRows() {
  return PAIRS.map((pair, index) => {
    const a = RUNS[0].queries[pair.a], b = RUNS[1].queries[pair.b];
    return {
      index, groups: [a.group], verdicts: [a.verdict, b.verdict], diverges: pair.diverge !== null,
      text: [a.group, a.query_id, a.query, a.reason, b.reason, a.final_answer, b.final_answer].join(" ").toLowerCase(),
      row: el("tr", {"data-index": index}, cells(a), el("td", {}, verdictBadge(b.verdict)),
        el("td", {class: "num"}, a.steps + " / " + b.steps),
        el("td", {class: "num"}, pair.diverge === null ? "same" : "step " + (pair.diverge + 1)),
        el("td", {class: "num"}, fmt(a.tokens) + " / " + fmt(b.tokens))),
    };
  });
}
function header(names) { return el("thead", {}, el("tr", {}, names.map(name => el("th", {}, name)))); }

function start() {
  const compare = PAIRS !== null;
  document.getElementById("runs").append(...RUNS.map((run, i) => runCard(run, compare ? "AB"[i] : null)));
  const rows = compare ? compareRows() : singleRows();
  const table = document.getElementById("queries");
  table.append(compare ? header(["group", "query", "A", "B", "steps A/B", "diverges", "tokens A/B"]) :
    header(["group", "query", "verdict", "judge reason", "steps", "tokens", "time (s)", "diagnose"]));
  const body = el("tbody", {}, rows.map(r => r.row));
  table.append(body);
  const groupSelect = document.getElementById("group-filter");
  for (const group of [...new Set(RUNS.flatMap(run => run.groups))]) groupSelect.append(el("option", {value: group}, group));
  const verdictSelect = document.getElementById("verdict-filter");
  for (const v of [...new Set(RUNS.flatMap(run => run.queries.map(q => q.verdict)))]) {
    verdictSelect.append(el("option", {value: v}, v));
  }
  const divergeBox = document.getElementById("diverge-filter");
  if (!compare) divergeBox.parentElement.hidden = true;
  const textInput = document.getElementById("text-filter");
  const shown = document.getElementById("shown");
  function apply() {
    const text = textInput.value.trim().toLowerCase();
    let count = 0;
    for (const r of rows) {
      const visible = (!text || r.text.includes(text)) &&
        (!groupSelect.value || r.groups.includes(groupSelect.value)) &&
        (!verdictSelect.value || r.verdicts.includes(verdictSelect.value)) &&
        (!divergeBox.checked || r.diverges);
      r.row.hidden = !visible;
      count += visible;
    }
    shown.textContent = count + " of " + rows.length + " shown";
  }
  for (const control of [textInput, groupSelect, verdictSelect, divergeBox]) control.addEventListener("input", apply);
  const detail = document.getElementById("detail");
  function select(index) {
    for (const r of rows) r.row.classList.toggle("selected", r.index === index);
    detail.replaceChildren(compare ? compareDetail(index) : singleDetail(index));
    detail.scrollTop = 0;
  }
  body.addEventListener("click", event => {
    const row = event.target.closest("tr");
    if (row) select(Number(row.getAttribute("data-index")));
  });
  apply();
  if (rows.length) select(0);
}
start();
"""
