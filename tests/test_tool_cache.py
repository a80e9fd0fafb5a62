"""The `cache` backend: replay from a StableToolBench `tool_response_cache` folder written by the test."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from toolbench_eval.errors import UserError
from toolbench_eval.tools.base import Observation, Status, ToolBackend, ToolCall
from toolbench_eval.tools.cache import CacheBackend, cache_file_path, cache_key

CATEGORY = "News, Media"  # standardizes to News_Media
TOOL = "Weather API (v2)"  # standardizes to weather_api_v2
API_DIR = Path("News_Media") / "weather_api_v2_for_News_Media"

# Keys written as the STB server writes them: Python str() of the parsed argument dict (typed here by hand).
NESTED_KEY = "{'q': 'it\\'s \"quoted\"', 'pair': \"it's\", 'exact': True, 'lang': None, 'days': 3, 'ratio': 0.5, " \
             "'opts': {'units': ['metric', False], 'max': 1e-05}, 'city': 'Zürich'}"
NESTED_ARGS = {"q": "it's \"quoted\"", "pair": "it's", "exact": True, "lang": None, "days": 3, "ratio": 0.5,
               "opts": {"units": ["metric", False], "max": 0.00001}, "city": "Zürich"}


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=4), encoding="utf-8")
    return path


@pytest.fixture
def cache_dir(tmp_path):
    root = tmp_path / "tool_response_cache"
    write(root / API_DIR / "get_forecast.json", {
        NESTED_KEY: {"error": "", "response": {"temp": 21, "text": "sunny"}},
        "{}": {"error": "", "response": "no arguments"},
        "{'city': 'Paris'}": {"error": "API not working error...", "response": ""},
        "{'city': 'Rome'}": ["not", "an", "entry"],
    })
    write(root / API_DIR / "is_id.json", {"{'is_id': 7}": {"error": "", "response": "seven"}})
    write(root / API_DIR / "broken.json", '{"{}": {"error": "", "response": "x"},')
    write(root / API_DIR / "listed.json", [1, 2, 3])
    return root


def call(api: str, arguments: dict) -> ToolCall:
    return ToolCall(category_name=CATEGORY, tool_name=TOOL, api_name=api, arguments=arguments)


def replay(backend: CacheBackend, *calls: ToolCall) -> list[Observation]:
    async def go():
        return [await backend.call(c) for c in calls]

    return asyncio.run(go())


def test_key_is_python_str_of_parsed_json():
    assert cache_key(NESTED_ARGS) == NESTED_KEY
    assert cache_key({}) == "{}"
    assert cache_key({"a": (1, 2)}) == "{'a': [1, 2]}"  # as the server sees it after JSON
    assert cache_key({"s": "line\nbreak\\", "t": 'both \' and "'}) == "{'s': 'line\\nbreak\\\\', 't': 'both \\' and \"'}"


def test_path_layout_matches_stb_server(tmp_path):
    assert cache_file_path(tmp_path, CATEGORY, TOOL, "Get Forecast") == tmp_path / API_DIR / "get_forecast.json"
    assert cache_file_path(tmp_path, CATEGORY, TOOL, "ID").name == "is_id.json"  # change_name
    assert cache_file_path(tmp_path, "Artificial Intelligence/Machine Learning", "x", "y").parent.name == (
        "x_for_Artificial_Intelligence_Machine_Learning"
    )


def test_hits_with_exact_key(cache_dir):
    backend = CacheBackend(cache_dir)
    nested, empty, reserved = replay(
        backend, call("Get Forecast", NESTED_ARGS), call("get forecast", {}), call("ID", {"ID": 7})
    )
    assert (nested.status, nested.error, nested.response) == (Status.OK, "", {"temp": 21, "text": "sunny"})
    assert empty.response == "no arguments"
    assert reserved.response == "seven"  # argument name standardized as in the schema: ID -> is_id
    assert backend.hits == 3 and backend.misses == 0


def test_cached_error_string_sets_status(cache_dir):
    (obs,) = replay(CacheBackend(cache_dir), call("Get Forecast", {"city": "Paris"}))
    assert obs.status == Status.NOT_WORKING and obs.error == "API not working error..."


def test_miss_is_explicit(cache_dir):
    backend = CacheBackend(cache_dir)
    reordered = dict(reversed(list(NESTED_ARGS.items())))  # upstream keys are order-sensitive
    no_entry, no_file, other_order = replay(
        backend, call("Get Forecast", {"city": "Oslo"}), call("Get History", {}), call("Get Forecast", reordered)
    )
    assert no_entry.status == Status.NOT_WORKING
    assert no_entry.error.startswith("cache miss:") and "{'city': 'Oslo'}" in no_entry.error
    assert no_file.status == Status.NOT_WORKING and "no cache file" in no_file.error
    assert "get_history.json" in no_file.error
    assert other_order.error.startswith("cache miss:")
    assert backend.misses == 3 and backend.hits == 0


def test_malformed_files_name_the_file(cache_dir):
    broken, listed, bad_entry = replay(
        CacheBackend(cache_dir), call("Broken", {}), call("Listed", {}), call("Get Forecast", {"city": "Rome"})
    )
    assert broken.status == Status.REQUEST_ERROR
    assert str(cache_dir / API_DIR / "broken.json") in broken.error and "not valid JSON" in broken.error
    assert listed.status == Status.REQUEST_ERROR and "listed.json" in listed.error and "list" in listed.error
    assert bad_entry.status == Status.REQUEST_ERROR and "get_forecast.json" in bad_entry.error


def test_fallback_backend_answers_misses(cache_dir):
    class Recorder(ToolBackend):
        name = "recorder"

        def __init__(self):
            self.calls = []
            self.closed = False

        async def call(self, c):
            self.calls.append(c)
            return Observation(error="", response="simulated")

        async def close(self):
            self.closed = True

    fallback = Recorder()
    backend = CacheBackend(cache_dir, fallback=fallback)
    hit, miss = replay(backend, call("Get Forecast", {}), call("Get Forecast", {"city": "Oslo"}))
    asyncio.run(backend.close())
    assert hit.response == "no arguments" and miss.response == "simulated"
    assert [c.arguments for c in fallback.calls] == [{"city": "Oslo"}]
    assert fallback.closed


def test_chat_with_user_needs_no_cache(cache_dir):
    (obs,) = replay(CacheBackend(cache_dir), call("chat_with_user", {"q": "hi"}))
    assert obs.response == "Chat with user." and obs.status == Status.OK


def test_missing_cache_dir_is_user_error(tmp_path):
    with pytest.raises(UserError, match="tool_response_cache"):
        CacheBackend(tmp_path / "nope")


def test_files_are_read_once(cache_dir):
    backend = CacheBackend(cache_dir)
    replay(backend, call("Get Forecast", {}))
    (cache_dir / API_DIR / "get_forecast.json").write_text("{}")  # later edits are not seen: read once per run
    (obs,) = replay(backend, call("Get Forecast", {}))
    assert obs.response == "no arguments"
