"""`cache` backend: replay API responses from a StableToolBench `tool_response_cache` folder.

Layout and key, as the STB server (`server/main.py`) reads them:

    <cache_dir>/<standard_category>/<standardize(tool_name)>_for_<standard_category>/<api_name>.json

where `api_name = change_name(standardize(api_name))` (with a trailing `_for_<tool>` cut off), and each
file is a JSON object `{ key: {"error": str, "response": ...}, ... }` whose key is Python's `str()` of
the argument dict the server parsed from the request, e.g. `"{'q': 'birthday party ideas'}"`.

We rebuild that key from the arguments (`cache_key`): the arguments go through a JSON round trip,
exactly what the server does with the JSON we would send it, and Python's own `repr` of the result
gives the text. Keys in cache files are only compared as strings, never parsed or evaluated.

Outcomes (the status a reasoner sees):

- hit: the cached `{error, response}`, status from its `error` string as upstream `_step`;
- miss (no file, or no entry for the key): `Status.NOT_WORKING` with an error starting `cache miss:`
  (or, with a `fallback` backend, whatever the fallback returns, like the STB server simulating);
- unreadable / malformed cache file: `Status.REQUEST_ERROR` with an error naming the file.

Like the server, `chat_with_user` answers `"Chat with user."` without a lookup.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from toolbench_eval.benchmark.naming import change_name, standardize, standardize_category
from toolbench_eval.errors import UserError
from toolbench_eval.tools.base import Observation, Status, ToolBackend, ToolCall
from toolbench_eval.tools.http import status_for_error
from toolbench_eval.tools.stb import standardize_arguments

logger = logging.getLogger(__name__)

CACHE_MISS_PREFIX = "cache miss:"


def cache_file_path(cache_dir: str | Path, category_name: str, tool_name: str, api_name: str) -> Path:
    """Where the STB server keeps the responses of one API (names as in the query's api_list).

    >>> cache_file_path("cache", "News, Media", "TTS Kraken", "List Languages").as_posix()
    'cache/News_Media/tts_kraken_for_News_Media/list_languages.json'
    >>> cache_file_path("cache", "Data", "Users", "ID").name
    'is_id.json'
    """
    category = standardize_category(category_name)
    sent_tool = standardize(tool_name)  # what the client sends: the tool JSON file stem
    api = change_name(standardize(api_name)).split(f"_for_{sent_tool}")[0]
    suffix = f"_for_{category}"
    tool_dir = sent_tool if sent_tool.endswith(suffix) else standardize(sent_tool) + suffix
    return Path(cache_dir) / category / tool_dir / f"{api}.json"


def cache_key(arguments: dict[str, Any]) -> str:
    """The cache key of an argument dict: `str()` of the dict the server would parse from our JSON.

    >>> print(cache_key({"q": "it's", "n": 3, "exact": True, "lang": None, "tags": ["a", 1.5], "o": {"x": 0}}))
    {'q': "it's", 'n': 3, 'exact': True, 'lang': None, 'tags': ['a', 1.5], 'o': {'x': 0}}
    >>> cache_key({})
    '{}'
    """
    # The round trip turns tuples into lists, int-like keys into strings, etc., as the server would see them.
    parsed = json.loads(json.dumps(arguments, ensure_ascii=False))
    return str(parsed)


class CacheFileError(Exception):
    """A cache file that exists but cannot be used; the message names the file."""


class CacheBackend(ToolBackend):
    """Replays responses from a StableToolBench cache folder; a miss is an explicit observation.

    `fallback`: a backend asked on a miss (e.g. `mirror` or `stb`), as the STB server falls back to
    simulation. Files are read on first use and kept in memory (read-only; nothing is written).
    """

    name = "cache"

    def __init__(
        self,
        cache_dir: str | Path,
        *,
        fallback: ToolBackend | None = None,
        standardize_argument_names: bool = True,
        upstream_status: bool = False,
    ) -> None:
        self.cache_dir = Path(cache_dir).expanduser()
        if not self.cache_dir.is_dir():
            raise UserError(
                f"cache backend: cache_dir {str(self.cache_dir)!r} is not a folder; point it at a StableToolBench "
                f"`tool_response_cache` folder (one sub-folder per category)"
            )
        self.fallback = fallback
        self.standardize_argument_names = standardize_argument_names
        self.upstream_status = upstream_status
        self._files: dict[Path, dict[str, Any] | None] = {}
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"CacheBackend(cache_dir={str(self.cache_dir)!r}, fallback={self.fallback!r})"

    def _load(self, path: Path) -> dict[str, Any] | None:
        """The parsed cache file (None when absent); raises CacheFileError when it cannot be used."""
        if path in self._files:
            return self._files[path]
        if not path.is_file():
            table = None
        else:
            try:
                table = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise CacheFileError(
                    f"cache file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
                ) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise CacheFileError(f"cache file {path} cannot be read: {exc}") from None
            if not isinstance(table, dict):
                raise CacheFileError(
                    f"cache file {path} holds a JSON {type(table).__name__}, expected an object "
                    f"mapping argument keys to {{\"error\", \"response\"}}"
                )
        self._files[path] = table
        return table

    async def call(self, call: ToolCall) -> Observation:
        if change_name(standardize(call.api_name)) == "chat_with_user":
            return Observation(error="", response="Chat with user.")
        arguments = standardize_arguments(call.arguments) if self.standardize_argument_names else call.arguments
        try:
            key = cache_key(arguments)
        except (TypeError, ValueError) as exc:
            return Observation(error=f"Tool input parse error...\n{exc}", response="", status=Status.BAD_INPUT)
        path = cache_file_path(self.cache_dir, call.category_name, call.tool_name, call.api_name)
        try:
            table = await asyncio.to_thread(self._load, path) if path not in self._files else self._files[path]
        except CacheFileError as exc:
            logger.warning("%s", exc)
            return Observation(error=str(exc), response="", status=Status.REQUEST_ERROR)

        if table is not None and key in table:
            entry = table[key]
            if not isinstance(entry, dict) or not ("error" in entry or "response" in entry):
                return Observation(
                    error=f"cache file {path}: entry {key} is not an object with \"error\" and \"response\"",
                    response="",
                    status=Status.REQUEST_ERROR,
                )
            self.hits += 1
            error = entry.get("error", "")
            error = error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)
            return Observation(error=error, response=entry.get("response", ""),
                               status=status_for_error(error, upstream=self.upstream_status))

        self.misses += 1
        if self.fallback is not None:
            return await self.fallback.call(call)
        where = f"no entry {key} in {path}" if table is not None else f"no cache file {path}"
        return Observation(error=f"{CACHE_MISS_PREFIX} {where}", response="", status=Status.NOT_WORKING)

    async def close(self) -> None:
        if self.fallback is not None:
            await self.fallback.close()
