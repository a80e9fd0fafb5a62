"""`rapidapi` backend: the ToolBench RapidAPI proxy (real APIs over the internet).

Same request as the `stb` backend (see `stb.py`): `POST <service_url>` with
`{category, tool_name, api_name, tool_input, strip, toolbench_key}` and header `toolbench_key`,
reply `{"error": str, "response": ...}`. Differences, as upstream `rapidapi_wrapper._step`:

- a ToolBench key is required: it is read from `$TOOLBENCH_KEY` (never from config files);
- a 15 s timeout per request;
- requests are spaced 2 s apart (upstream sleeps 2 s per call: "rate limit: 30 per minute").

The service URL comes from the `url` option or `$SERVICE_URL`. There is no built-in default: the
public proxy's address has changed several times (see `PUBLIC_SERVICE_URL` for the last one
upstream documents).

Calling rapidapi.com directly with your own RapidAPI key (upstream `--use_rapidapi_key`) is not
offered: upstream does it by importing and `exec`-ing each tool's `api.py`, which we do not do.
"""

from __future__ import annotations

import os
from typing import Any

from toolbench_eval.api_keys import key_from_env
from toolbench_eval.errors import UserError
from toolbench_eval.tools.http import Secret
from toolbench_eval.tools.stb import SERVICE_URL_ENV, ToolBenchServerBackend

# The proxy address in upstream `rapidapi.py` (ToolBench / StableToolBench). Documentation only: never a default.
PUBLIC_SERVICE_URL = "http://8.130.32.149:8080/rapidapi"


class RapidAPIBackend(ToolBenchServerBackend):
    """Real API calls through the ToolBench RapidAPI proxy; needs `$TOOLBENCH_KEY` and a service URL."""

    name = "rapidapi"

    def __init__(
        self,
        url: str | None = None,
        *,
        key_env: str = "TOOLBENCH_KEY",
        timeout_s: float | None = 15.0,
        min_interval_s: float = 2.0,
        **options: Any,
    ) -> None:
        key = Secret(key_from_env(key_env))
        if not key:
            raise UserError(
                f"rapidapi backend: ${key_env} is not set; export your ToolBench key "
                f"(request one via the ToolBench README), or use the `stb`, `mirror` or `cache` backend"
            )
        url = url or os.environ.get(SERVICE_URL_ENV, "")
        if not url:
            raise UserError(
                f"rapidapi backend: no service URL; set the `url` option or ${SERVICE_URL_ENV} "
                f"(upstream's last documented proxy: {PUBLIC_SERVICE_URL})"
            )
        super().__init__(url, key=key, timeout_s=timeout_s, min_interval_s=min_interval_s, **options)
