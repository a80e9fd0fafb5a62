"""`toolbench-eval view`: what the report gathers from ReAct and DFSDT runs and bucket-weight sidecars, that
model text stays text, and the page itself in headless Chromium (skipped when Chromium or playwright is absent).

The runs are made with the scripted engine over a two-group benchmark written into a temporary folder: seconds,
no model. Query kinds, by the marker in their text: plain (call, then answer), `hard)` (call, then give up) and
`retry)` (gives up first; DFSDT's second branch answers).
"""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request
from pathlib import Path

import pytest

from toolbench_eval.cli import main
from toolbench_eval.errors import UserError
from toolbench_eval.viewer.data import first_divergence, view_data
from toolbench_eval.viewer.html import embed_json, render_html
from toolbench_eval.viewer.weights import AGREEMENT_SHARE

REPO = Path(__file__).resolve().parents[1]
GROUPS = ("G1_instruction", "G1_category")
ATTACK = "</script><script>alert(1)</script>"
CALL = 'Thought: I look the word up.\nAction: get_word_for_word_tool\nAction Input: {"is_id": 1}'
SECOND_CALL = 'Thought: Second try: look it up again.\nAction: get_word_for_word_tool\nAction Input: {"is_id": 1}'
ANSWER = ("Thought: I know it now.\nAction: Finish\nAction Input: "
          + json.dumps({"return_type": "give_answer", "final_answer": "The word with id 1 is apple."}))
# The model of the first query writes a script tag into its answer: the report must show it as text.
ATTACK_ANSWER = ANSWER.replace("apple.", f"apple. {ATTACK}")
GIVE_UP = 'Thought: no.\nAction: Finish\nAction Input: {"return_type": "give_up_and_restart"}'
BASES = [10000, 20000, 30000]


def write_benchmark(root: Path) -> dict[str, Path]:
    """Two groups of three queries (plain, retry, hard) with LocalToolBench-style ground truth, a tool-response
    cache with the one answer, and the scripted engine's rules."""
    bench = root / "bench" / "test_instruction"
    bench.mkdir(parents=True)
    api = {"category_name": "Data", "tool_name": "Word Tool", "api_name": "Get Word",
           "api_description": "Returns the word with an id.", "method": "GET",
           "required_parameters": [{"name": "id", "type": "NUMBER", "description": "word id", "default": 1}],
           "optional_parameters": []}
    truth = {"facts": ["apple"], "call_plan": [{"tool_name": "Word Tool", "api_name": "Get Word",
                                                 "arguments": {"id": 1}}]}
    kinds = ("plain", "retry)", "hard)")
    for g, group in enumerate(GROUPS):
        queries = [{"query": f"Which word has id 1? ({kind} {g}-{i}) {ATTACK if g == i == 0 else ''}".strip(),
                    "query_id": 100 * (g + 1) + i, "api_list": [api], "relevant APIs": [["Word Tool", "Get Word"]],
                    "ground_truth": truth} for i, kind in enumerate(kinds)]
        (bench / f"{group}.json").write_text(json.dumps(queries))
    cache = root / "cache" / "Data" / "word_tool_for_Data"
    cache.mkdir(parents=True)
    (cache / "get_word.json").write_text(json.dumps({"{'is_id': 1}": {"error": "", "response": "apple"}}))
    script = root / "script.json"
    script.write_text(json.dumps({"rules": [
        {"contains": ["(plain 0-0)", "Function:"], "reply": ATTACK_ANSWER},
        {"contains": ["hard)", "Function:"], "reply": GIVE_UP},
        {"contains": ["retry)", "Second try", "Function:"], "reply": ANSWER},
        {"contains": ["retry)", "all previous trails failed"], "reply": SECOND_CALL},
        {"contains": ["retry)", "Function:"], "reply": GIVE_UP},
        {"contains": ["Function:"], "reply": ANSWER},
    ], "default": CALL}))
    return {"bench": root / "bench", "cache": root / "cache", "script": script}


def make_run(setup: dict[str, Path], out: Path, method: str, *extra: str) -> Path:
    config = out.parent / "config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"tool_backend: {{name: cache, cache_dir: {setup['cache']}}}\n")
    assert main(["-q", "run", "--config", str(config), "--benchmark", str(setup["bench"]),
                 "--groups", ",".join(GROUPS), "--method", method, "--model", "scripted",
                 "--model-args", f"script={setup['script']}", "--executor", "local", "--out", str(out),
                 "--no-progress", *extra]) == 0
    return out


def fake_sidecars(run_dir: Path) -> None:
    """Bucket weights as `record_bucket_weights` writes them: one call per step. The first call of each query
    is decided by one bucket; the second is split between two (a disagreement)."""
    for group in GROUPS:
        for path in sorted((run_dir / group).glob("*_CoT@1.json")):
            answer = json.loads(path.read_text())
            steps = sum(1 for node in answer["trys"][-1]["chain"] if node["node_type"] == "Thought")
            calls = []
            for call in range(steps):
                if call == 0:
                    per_token = [[0.8, 0.1, 0.1]] * 4
                else:
                    per_token = [[0.2, 0.7, 0.1]] * 2 + [[0.1, 0.2, 0.7]] * 2
                decided = [sum(1 for row in per_token if max(row) == row[k]) for k in range(3)]
                mean = [round(sum(row[k] for row in per_token) / len(per_token), 3) for k in range(3)]
                calls.append({"call": call, "tokens": len(per_token), "mean": mean, "decided": decided,
                              "per_token": per_token})
            sidecar = run_dir / "bucket_weights" / group / f"{path.name.split('_')[0]}.json"
            sidecar.parent.mkdir(parents=True, exist_ok=True)
            sidecar.write_text(json.dumps({"bases": BASES, "fusion": "max_logit", "calls": calls}))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("viewer")
    setup = write_benchmark(root)
    react = make_run(setup, root / "runs" / "react", "react")
    bucketed = root / "runs" / "react-buckets"
    shutil.copytree(react, bucketed)
    fake_sidecars(bucketed)
    return {"react": react, "dfsdt": make_run(setup, root / "runs" / "dfsdt", "dfsdt"), "bucketed": bucketed}


def by_id(run: dict, query_id: str) -> dict:
    return next(q for q in run["queries"] if q["query_id"] == query_id)


# ---------- data ----------

def test_react_run_gives_verdicts_steps_events_and_diagnoses(runs):
    [run] = view_data([runs["react"]])["runs"]
    assert [q["query_id"] for q in run["queries"]] == ["100", "101", "102", "200", "201", "202"]
    assert run["counts"] == {"Solved": 2, "Unsolved": 4} and run["verdicts_from"].startswith("rule judge, scored now")
    assert not (runs["react"] / "scores").exists()  # scored in memory: the viewer writes nothing into the run
    plain = by_id(run, "100")
    assert plain["verdict"] == "Solved" and plain["kind"] == "chain" and plain["steps"] == 2
    [[call, finish]] = plain["tries"]
    assert call["thought"] == "I look the word up." and call["action"] == "get_word_for_word_tool"
    assert json.loads(call["arguments"]) == {"is_id": 1} and call["status"] == 0 and "apple" in call["observation"]
    assert finish["action"] == "Finish" and finish["status"] == 3 and call["chosen"] and finish["chosen"]
    assert plain["final_answer"] == f"The word with id 1 is apple. {ATTACK}" and ATTACK in plain["query"]
    assert plain["model_calls"] == 2 and plain["tokens"] > 0 and plain["seconds"] is not None
    assert plain["diagnosis"] is None
    hard = by_id(run, "102")
    assert hard["verdict"] == "Unsolved" and hard["tries"][-1][-1]["status"] == 4
    assert hard["reason"] == "empty final answer" and hard["outcome"] == "gave_up"  # the judge's words, the event's
    # It observed "apple" and gave up: `diagnose` puts it at "the facts were observed but not stated".
    assert hard["diagnosis"] == {"first_call": "get_word_for_word_tool", "calls": 1, "stage": "answer_misses_facts"}
    assert run["has_weights"] is False and all("weights" not in s for s in plain["tries"][0])


def test_dfsdt_tree_has_both_branches_and_the_chosen_path(runs):
    [run] = view_data([runs["dfsdt"]])["runs"]
    retry = by_id(run, "101")
    assert retry["kind"] == "tree" and retry["verdict"] == "Solved"
    first, second = retry["tree"]
    assert not first.get("chosen") and first["children"][0]["status"] == 4  # the give-up branch
    assert second["chosen"] and second["thought"] == "Second try: look it up again."
    [answer] = second["children"]
    assert answer["chosen"] and answer["action"] == "Finish" and answer["status"] == 3
    assert retry["steps"] == 2 and retry["tree_steps"] == 4
    hard = by_id(run, "102")  # gave up on both branches: the answer file's give-up node is one of them
    assert hard["verdict"] == "Unsolved" and sum(bool(s.get("chosen")) for s in hard["tree"]) == 1


def test_two_runs_pair_queries_and_mark_the_first_divergence(runs):
    data = view_data([runs["react"], runs["dfsdt"]])
    pairs = {data["runs"][0]["queries"][p["a"]]["query_id"]: p for p in data["comparison"]["pairs"]}
    assert len(pairs) == 6 and data["comparison"]["only_a"] == data["comparison"]["only_b"] == []
    assert pairs["100"]["diverge"] is None and pairs["100"]["same_verdict"]
    # ReAct gave up after its call; DFSDT's chosen branch called again with another thought, then answered.
    assert pairs["101"]["diverge"] == 1 and not pairs["101"]["same_verdict"]
    call = {"action": "f", "arguments": '{"a": 1, "b": 2}'}
    assert first_divergence([call], [{"action": "f", "arguments": '{"b": 2,  "a": 1}'}]) is None
    assert first_divergence([call], [call, call]) == 1
    assert first_divergence([call], [{"action": "g", "arguments": call["arguments"]}]) == 0


def test_sidecar_weights_attach_to_steps(runs):
    [run] = view_data([runs["bucketed"]])["runs"]
    assert run["has_weights"] and run["bases"] == BASES and run["fusion"] == "max_logit"
    [[call, finish]] = by_id(run, "100")["tries"]
    assert call["weights"]["top"] == 0 and call["weights"]["decided"] == [4, 0, 0] and not call["weights"]["disagree"]
    assert call["weights"]["strip"] == [0, 0, 0, 0] and call["weights"]["mean"] == [0.8, 0.1, 0.1]
    assert finish["weights"]["top_share"] == 0.5 < AGREEMENT_SHARE and finish["weights"]["disagree"]


@pytest.mark.parametrize("method", ["react", "dfsdt"])
def test_sidecars_a_run_records_pair_one_call_with_each_step(tmp_path, method):
    """`--record-bucket-weights` (the scripted engine reports uniform weights): one recorded call per step, in
    the order the steps were written, for ReAct tries and DFSDT trees alike."""
    setup = write_benchmark(tmp_path)
    out = make_run(setup, tmp_path / "runs" / method, method, "--buckets", "10000,20000,30000",
                   "--record-bucket-weights")
    [run] = view_data([out])["runs"]
    assert run["has_weights"] and run["bases"] == [10000.0, 20000.0, 30000.0]
    for query in run["queries"]:
        assert query["weights_note"] is None, query["weights_note"]
        steps = query["tries"][-1] if method == "react" else list(_preorder(query["tree"]))
        assert steps and all(step["weights"]["mean"] == [0.3333] * 3 for step in steps)
    assert max(q["tree_steps"] for q in run["queries"]) == (2 if method == "react" else 4)


def _preorder(steps):
    for step in steps:
        yield step
        yield from _preorder(step["children"])


def test_a_broken_or_mismatched_sidecar_is_noted_not_fatal(runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(runs["bucketed"], run_dir)
    (run_dir / "bucket_weights" / "G1_instruction" / "100.json").write_text("{not json")
    sidecar = run_dir / "bucket_weights" / "G1_instruction" / "101.json"
    weights = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**weights, "calls": weights["calls"][:1]}))  # one call for two steps
    [run] = view_data([run_dir])["runs"]
    broken = by_id(run, "100")
    assert "not readable JSON" in broken["weights_note"] and any("100.json" in note for note in run["notes"])
    assert all("weights" not in step for step in broken["tries"][0])
    short = by_id(run, "101")
    assert "1 recorded model calls for 2 steps" in short["weights_note"]
    assert "weights" in short["tries"][0][0] and "weights" not in short["tries"][0][1]


def test_a_saved_report_is_used_and_another_judge_needs_one(runs, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(runs["react"], run_dir)
    assert main(["score", str(run_dir), "--judge", "rule", "--evaluate-times", "1"]) == 0
    [run] = view_data([run_dir])["runs"]
    assert run["verdicts_from"].endswith("pass_rate_rule.json") and run["counts"] == {"Solved": 2, "Unsolved": 4}
    with pytest.raises(UserError, match="pass_rate_llm.json not found"):
        view_data([run_dir], judge_id="llm")


def test_a_benchmark_without_ground_truth_is_shown_unscored(runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(runs["react"], run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    bench = tmp_path / "bench"
    shutil.copytree(Path(manifest["benchmark"]["root"]), bench)
    for path in (bench / "test_instruction").glob("*.json"):
        path.write_text(json.dumps([{k: v for k, v in q.items() if k != "ground_truth"}
                                    for q in json.loads(path.read_text())]))
    manifest["benchmark"]["root"] = str(bench)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    [run] = view_data([run_dir])["runs"]
    assert run["verdicts_from"] == "unscored" and run["counts"] == {"unscored": 6}
    assert any("no ground truth" in note for note in run["notes"])


# ---------- HTML ----------

def test_model_text_cannot_break_out_of_the_page(runs):
    data = view_data([runs["react"]])
    page = render_html(data)
    assert ATTACK not in page and "alert(1)" in page  # present, but only as escaped JSON
    assert page.count("<script") == 2 and page.count("</script>") == 2
    start = page.index('id="view-data">') + len('id="view-data">')
    embedded = json.loads(page[start:page.index("</script>", start)])
    assert embedded["runs"][0]["queries"][0]["final_answer"].endswith(ATTACK)
    tricky = {"text": "a<b>&c\u2028d</script><!--"}
    assert json.loads(embed_json(tricky)) == tricky and not set("<>&") & set(embed_json(tricky))


def test_view_command_writes_the_default_file_and_serves_only_on_loopback(runs, tmp_path, capsys):
    from toolbench_eval.commands.view import report_server

    run_dir = tmp_path / "run"
    shutil.copytree(runs["react"], run_dir)
    assert main(["view", str(run_dir)]) == 0
    page = (run_dir / "view.html").read_text()
    assert "bytes" in capsys.readouterr().out and page.startswith("<!DOCTYPE html>")
    assert main(["view", str(run_dir), str(runs["dfsdt"]), "--out", str(tmp_path / "both.html")]) == 0
    assert "react vs dfsdt" in (tmp_path / "both.html").read_text()
    assert main(["view", str(run_dir), str(run_dir), str(run_dir)]) == 2
    assert "one run directory, or two" in capsys.readouterr().err
    server = report_server(page, 0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        thread = threading.Thread(target=server.handle_request)
        thread.start()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.read().decode("utf-8") == page
        thread.join(timeout=10)
    finally:
        server.server_close()


# ---------- in a browser ----------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def open_report(browser, html_path: Path):
    """A page showing the report, with every console error, page error and dialog collected."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def refuse(dialog):
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", refuse)
    page.goto(html_path.as_uri())
    page.wait_for_selector("#queries tbody tr")
    return page, problems


@pytest.fixture(scope="module")
def reports(runs, tmp_path_factory) -> dict[str, Path]:
    """The four reports, written before the browser starts: playwright's sync API keeps an event loop running
    in this thread, and a scripted run (`asyncio.run`) cannot start inside it."""
    folder = tmp_path_factory.mktemp("reports")
    written = {}
    for name, run_names in {"react": ["react"], "dfsdt": ["dfsdt"], "bucketed": ["bucketed"],
                            "both": ["react", "dfsdt"]}.items():
        written[name] = folder / f"{name}.html"
        assert main(["-q", "view", *(str(runs[r]) for r in run_names), "--out", str(written[name])]) == 0
    return written


def test_reports_open_in_chromium_without_errors(reports, browser):
    images = REPO / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)

    page, problems = open_report(browser, reports["react"])
    assert page.locator("#queries tbody tr").count() == 6
    assert page.locator(".query-text").first.text_content().endswith(ATTACK.strip())  # text, not markup
    assert page.locator("#detail .step").count() == 2 and page.locator(".diagnosis").count() == 0
    page.fill("#text-filter", "hard)")
    assert page.locator("#queries tbody tr:visible").count() == 2
    page.fill("#text-filter", "")
    page.select_option("#verdict-filter", "Solved")
    assert page.locator("#queries tbody tr:visible").count() == 2
    page.select_option("#verdict-filter", "")
    page.select_option("#group-filter", "G1_category")
    assert page.locator("#queries tbody tr:visible").count() == 3
    page.locator("#queries tbody tr:visible").nth(2).click()  # 202, a hard query: diagnosed
    assert "answer misses facts" in page.locator(".diagnosis").text_content()
    assert problems == []
    page.close()

    page, problems = open_report(browser, reports["dfsdt"])
    page.locator("#queries tbody tr").nth(1).click()  # 101: two branches, the second answers
    assert page.locator("#detail ul.tree").count() == 1
    assert page.locator("#detail ul.tree > li").count() == 2 and page.locator("#detail .step.chosen").count() == 2
    page.locator("#detail > div").screenshot(path=str(images / "viewer_dfsdt_tree.png"))
    assert problems == []
    page.close()

    page, problems = open_report(browser, reports["bucketed"])
    assert page.locator("#detail .wbar").count() == 2 and page.locator("#detail .step.disagree").count() == 1
    assert page.locator(".legend .swatch").count() == 3
    page.locator("#queries tbody tr").nth(3).click()  # 200: a plain query, for the docs
    page.screenshot(path=str(images / "viewer.png"))
    assert problems == []
    page.close()

    page, problems = open_report(browser, reports["both"])
    page.locator("#queries tbody tr").nth(1).click()
    assert page.locator("#detail .compare-grid > div").count() == 2
    assert page.locator("#detail .step.diverge").count() == 2  # step 2 on both sides
    page.check("#diverge-filter")
    assert page.locator("#queries tbody tr:visible").count() == 2  # the retry query of each group
    assert problems == []
    page.close()
