"""Pick a tool backend by name, with options from the run config (`tool_backend: {name: ..., ...}`).

| name       | backend                                   | main options                                        |
|------------|-------------------------------------------|-----------------------------------------------------|
| `local`    | LocalToolBench (the offline SQLite world) | `world_dir`                                         |
| `stb`      | StableToolBench `/virtual` server         | `url` (or `$SERVICE_URL`), `strip`, `timeout_s`     |
| `mirror`   | MirrorAPI on an OpenAI-compatible server  | `base_url` (or `$MIRROR_API_BASE`), `model`, `tools_dir` |
| `cache`    | replay a StableToolBench cache folder     | `cache_dir`, `fallback` (a backend config)          |
| `rapidapi` | the ToolBench RapidAPI proxy              | `url` (or `$SERVICE_URL`); key from `$TOOLBENCH_KEY`|

Keys are never options: they come from the environment only (`TOOLBENCH_KEY`, `MIRROR_API_KEY` /
`OPENAI_API_KEY`), so config files and run manifests can be shared safely.

>>> make_backend("teleport")
Traceback (most recent call last):
...
toolbench_eval.errors.UserError: unknown tool backend 'teleport'; valid names: local, stb, mirror, cache, rapidapi
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from toolbench_eval.errors import UserError
from toolbench_eval.registry import Registry, arguments_taken, construct
from toolbench_eval.tools.base import ToolBackend

# Imported on demand so that e.g. `local` never loads HTTP code and vice versa.
TOOL_BACKENDS = Registry("tool backend", {
    "local": "toolbench_eval.localtoolbench.backend:LocalBackend",
    "stb": "toolbench_eval.tools.stb:STBServerBackend",
    "mirror": "toolbench_eval.tools.mirror:MirrorAPIBackend",
    "cache": "toolbench_eval.tools.cache:CacheBackend",
    "rapidapi": "toolbench_eval.tools.rapidapi:RapidAPIBackend",
})
BACKEND_NAMES: tuple[str, ...] = TOOL_BACKENDS.names


def backend_class(name: str) -> Callable[..., ToolBackend]:
    """The class implementing backend `name` (imported lazily)."""
    return TOOL_BACKENDS.lookup(name)


def make_backend(name: str, **options: Any) -> ToolBackend:
    """Build the tool backend `name` with config `options` (see the table in the module docstring).

    Unknown or missing options and credentials given as options are `UserError`s naming the option and the fix.
    For `cache`, `fallback` may be another backend's config (`{"name": "mirror", ...}`) or a name.
    """
    cls = backend_class(name)
    if name == "cache" and options.get("fallback") is not None:
        options = {**options, "fallback": _fallback_backend(options["fallback"])}
    return construct(cls, f"tool backend {name!r}", **options)


def protocol_options(name: str, protocol: Any) -> dict[str, Any]:
    """The backend options an evaluation protocol decides (`status_codes`, `on_unavailable`, `http_failures`), for the
    backends that take them; a run's own `tool_backend` options are applied on top."""
    wanted = {"upstream_status": protocol.status_codes == "upstream", "on_unavailable": protocol.on_unavailable,
              "http_failures": protocol.http_failures}
    return arguments_taken(backend_class(name), wanted)


def make_backend_from_config(config: Mapping[str, Any] | str) -> ToolBackend:
    """`make_backend` for a run config's `tool_backend` entry: a name, or `{"name": ..., **options}`."""
    if isinstance(config, str):
        return make_backend(config)
    if not isinstance(config, Mapping) or "name" not in config:
        raise UserError(f"tool_backend must be a name or a mapping with 'name', e.g. {{name: local}}; got {config!r}")
    options = {key: value for key, value in config.items() if key != "name"}
    return make_backend(str(config["name"]), **options)


def _fallback_backend(spec: Any) -> ToolBackend:
    if isinstance(spec, ToolBackend):
        return spec
    if (isinstance(spec, Mapping) and spec.get("name") == "cache") or spec == "cache":
        raise UserError("tool backend 'cache': fallback cannot itself be 'cache'")
    return make_backend_from_config(spec)
