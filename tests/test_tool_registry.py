"""Backend selection by name and config options."""

from __future__ import annotations

import pytest

from toolbench_eval.errors import UserError
from toolbench_eval.tools import registry
from toolbench_eval.tools.base import ToolBackend
from toolbench_eval.tools.cache import CacheBackend
from toolbench_eval.tools.mirror import MirrorAPIBackend
from toolbench_eval.tools.rapidapi import RapidAPIBackend
from toolbench_eval.tools.registry import BACKEND_NAMES, make_backend, make_backend_from_config
from toolbench_eval.tools.stb import STBServerBackend

KEY = "registry-SECRET-5150"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("TOOLBENCH_KEY", "SERVICE_URL", "MIRROR_API_KEY", "OPENAI_API_KEY", "MIRROR_API_BASE"):
        monkeypatch.delenv(name, raising=False)


def test_names():
    assert BACKEND_NAMES == ("local", "stb", "mirror", "cache", "rapidapi")


def test_unknown_name_lists_valid_names():
    with pytest.raises(UserError) as info:
        make_backend("rapid-api")
    message = str(info.value)
    assert "'rapid-api'" in message
    for name in BACKEND_NAMES:
        assert name in message


def test_each_remote_backend_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLBENCH_KEY", KEY)
    stb = make_backend("stb", url="http://127.0.0.1:8080/virtual", strip="filter", timeout_s=5, max_retries=1)
    assert isinstance(stb, STBServerBackend) and stb.strip == "filter" and stb._http.timeout_s == 5
    mirror = make_backend("mirror", base_url="http://127.0.0.1:12345/v1", model="m", tools_dir=tmp_path)
    assert isinstance(mirror, MirrorAPIBackend) and mirror.model == "m"
    cache = make_backend("cache", cache_dir=tmp_path)
    assert isinstance(cache, CacheBackend) and cache.fallback is None
    rapid = make_backend("rapidapi", url="http://127.0.0.1:8080/rapidapi", min_interval_s=0)
    assert isinstance(rapid, RapidAPIBackend)
    for backend in (stb, mirror, cache, rapid):
        assert isinstance(backend, ToolBackend)
        assert KEY not in repr(backend)


def test_stb_url_from_env(monkeypatch):
    monkeypatch.setenv("SERVICE_URL", "http://127.0.0.1:9/virtual")
    assert make_backend("stb").url == "http://127.0.0.1:9/virtual"


def test_stb_without_url_is_user_error():
    with pytest.raises(UserError, match="SERVICE_URL"):
        make_backend("stb")


def test_unknown_option_lists_accepted_ones():
    with pytest.raises(UserError) as info:
        make_backend("stb", url="http://127.0.0.1:1/virtual", timeout=3)
    message = str(info.value)
    assert "'timeout'" in message and "timeout_s" in message and "strip" in message


@pytest.mark.parametrize("option", ["key", "toolbench_key", "api_key"])
def test_keys_are_refused_as_options(option, monkeypatch):
    monkeypatch.setenv("TOOLBENCH_KEY", KEY)
    with pytest.raises(UserError, match="environment variable") as info:
        make_backend("rapidapi", url="http://127.0.0.1:1/rapidapi", **{option: KEY})
    assert KEY not in str(info.value)


def test_bad_option_values_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="strip"):
        make_backend("stb", url="http://127.0.0.1:1/virtual", strip="compress")
    with pytest.raises(UserError, match="variant"):
        make_backend("mirror", variant="gpt")
    with pytest.raises(UserError, match="cache_dir"):
        make_backend("cache")  # required option missing


def test_rapidapi_without_key_is_user_error():
    with pytest.raises(UserError, match="TOOLBENCH_KEY"):
        make_backend("rapidapi", url="http://127.0.0.1:1/rapidapi")


def test_cache_fallback_from_config(tmp_path):
    backend = make_backend_from_config(
        {"name": "cache", "cache_dir": str(tmp_path), "fallback": {"name": "mirror", "base_url": "http://127.0.0.1:1/v1"}}
    )
    assert isinstance(backend, CacheBackend) and isinstance(backend.fallback, MirrorAPIBackend)
    with pytest.raises(UserError, match="fallback"):
        make_backend("cache", cache_dir=tmp_path, fallback="cache")


def test_from_config_forms(tmp_path):
    assert isinstance(make_backend_from_config({"name": "cache", "cache_dir": tmp_path}), CacheBackend)
    with pytest.raises(UserError, match="name"):
        make_backend_from_config({"cache_dir": tmp_path})


def test_local_backend_is_imported_lazily(monkeypatch):
    # Until (or unless) the LocalToolBench module exists, `local` is a clear error, not an ImportError.
    monkeypatch.setitem(registry.TOOL_BACKENDS.entries, "local", "toolbench_eval.no_such_module:LocalBackend")
    with pytest.raises(UserError, match="'local' is not available"):
        make_backend("local")


def test_local_backend_when_present():
    try:
        cls = registry.backend_class("local")
    except UserError:
        pytest.skip("toolbench_eval.localtoolbench.backend is not in this tree yet")
    assert cls.__name__ == "LocalBackend"
