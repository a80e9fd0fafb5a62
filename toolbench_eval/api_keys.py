"""API keys for remote endpoints, read the same way everywhere: from named environment variables only.

The `openai` engine, the LLM judge and the remote tool backends all take their keys here, so one set of
rules holds for each: a key is never an option (it would be written into a run manifest), every key read
is registered with the redaction rule whatever its variable is called, and a server on this machine gets
the placeholder that `vllm serve` without `--api-key` accepts.

>>> is_loopback("http://127.0.0.1:8000/v1"), is_loopback("https://api.openai.com/v1"), is_loopback(None)
(True, False, False)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from urllib.parse import urlparse

from toolbench_eval.errors import UserError
from toolbench_eval.redaction import redact, register_secret

PLACEHOLDER = "EMPTY"  # vLLM's --api-key EMPTY: a local server that checks no key accepts it
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback(base_url: str | None) -> bool:
    """True when `base_url` points at this machine (such servers need no API key)."""
    return (urlparse(base_url or "").hostname or "") in LOOPBACK_HOSTS


def key_from_env(*names: str) -> str:
    """The first non-empty variable among `names` ("" when none is set), registered for redaction."""
    for name in names:
        value = os.environ.get(name, "")
        if value:
            register_secret(value)  # `api_key_env=MY_VAR` may not look like a credential by name
            return value
    return ""


def endpoint_key(names: Sequence[str], base_url: str | None, *, who: str, url_option: str) -> str:
    """The key for an OpenAI-compatible endpoint: from `names`, else the placeholder when `base_url` is on
    this machine. A remote endpoint without a key is a `UserError` naming the variables to set."""
    key = key_from_env(*names)
    if key:
        return key
    if is_loopback(base_url):
        return PLACEHOLDER
    exports = " or ".join(f"{name}=..." for name in names)
    raise UserError(f"{who}: no API key for {base_url or 'https://api.openai.com/v1'}: export {exports} "
                    f"(keys are read from the environment only), or point {url_option} at a local server")


def scrub(text: str, key: str) -> str:
    """`text` without `key` (however short) or any other known secret: servers quote a key they rejected."""
    return redact(text, [key] if key != PLACEHOLDER else [])
