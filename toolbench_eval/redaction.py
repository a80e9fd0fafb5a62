"""The one redaction rule: no credential leaves this process in a log line, an error or a written file.

A text is redacted against three kinds of secret:

1. the value of every environment variable whose *name* says it holds a credential (`OPENAI_API_KEY`,
   `TOOLBENCH_KEY`, `HF_TOKEN`, `..._SECRET`, `..._PASSWORD`; see `CREDENTIAL_NAME`), read when the text
   is redacted, so a key exported after start-up is covered too;
2. values registered at run time with `register_secret` (a key read from a variable of the user's choice,
   e.g. the `openai` engine's `api_key_env=MY_VAR`);
3. credentials by their shape, whatever their origin: `Bearer <token>` and OpenAI-style `sk-...` keys,
   because HTTP libraries and servers echo the header they were sent ("Incorrect API key provided: Bearer sk-...").

Values shorter than `MIN_SECRET_LENGTH` are not treated as secrets: `KEY=1` would otherwise blank every "1".

Where it is applied (so that no caller has to remember): the CLI's stdout/stderr and log handlers
(`redacting_streams`, `RedactingFilter`), every file written through `toolbench_eval.atomic`, the run's
event log, and the error texts of engines, judges and tool backends.

>>> import os
>>> os.environ["EXAMPLE_API_KEY"] = "abc123secret"
>>> redact("401: Incorrect API key provided: abc123secret")
'401: Incorrect API key provided: ***'
>>> redact("Authorization: Bearer tok_0123456789")
'Authorization: Bearer ***'
>>> del os.environ["EXAMPLE_API_KEY"]
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

MIN_SECRET_LENGTH = 8
MASK = "***"

# Variable names that hold credentials: a final word KEY, TOKEN, SECRET, PASSWORD, ... (`SSH_KEY_PATH` is a path).
CREDENTIAL_NAME = re.compile(r"(?:^|_)(?:KEY|APIKEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)
# Shapes of credentials in free text, kept with their prefix so a reader still sees what was there.
_SHAPES = (
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]{6,}"), r"\1" + MASK),
    (re.compile(r"\b(sk-)[A-Za-z0-9_-]{12,}"), r"\1" + MASK),
)

_registered: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Treat `value` as a secret from now on, in this process (no-op for short or empty values)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _registered.add(value)


def secret_values(extra: Iterable[str] = ()) -> list[str]:
    """Every secret value known now (plus `extra`), longest first (so a key containing another is masked whole)."""
    values = {value for name, value in os.environ.items()
              if CREDENTIAL_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH}
    with _lock:
        values |= _registered
    values |= {value for value in extra if value}
    return sorted(values, key=len, reverse=True)


def _mask(text: str, values: list[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every secret value (and `extra`, however short) and credential-shaped token masked."""
    return _mask(text, secret_values(extra)) if text else text


def redact_value(value: Any, extra: Iterable[str] = ()) -> Any:
    """`redact` applied to every string inside a JSON-like value (keys included).

    >>> redact_value({"echo": ["Bearer sk-aaaaaaaaaaaaaaaa", 1]})
    {'echo': ['Bearer ***', 1]}
    """
    values = secret_values(extra)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _mask(item, values)
        if isinstance(item, (list, tuple)):
            return type(item)(walk(element) for element in item)
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        return item

    return walk(value)


class RedactingFilter(logging.Filter):
    """A logging filter that renders the message and redacts it (arguments included), so handlers and
    formatters downstream only ever see the clean text. Tracebacks are redacted by `RedactingFormatter`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


class RedactingStream:
    """A text stream that redacts each write before passing it on (the CLI wraps stdout and stderr in it).

    Writes are redacted one at a time: a secret split across two writes would pass, which is why the
    error paths redact their own texts too; this wrapper catches what a library prints on its own."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (ValueError, OSError):  # asked at exit, after the stream closed (colorama's atexit hook does)
            return False

    def __getattr__(self, name: str) -> Any:  # fileno, closed, encoding, buffer, ...: the wrapped stream's
        return getattr(self._stream, name)


@contextmanager
def redacting_streams() -> Iterator[None]:
    """Within the block, `sys.stdout` and `sys.stderr` redact what is written to them."""
    import sys

    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    try:
        yield
    finally:
        for wrapped in (sys.stdout, sys.stderr):
            try:
                wrapped.flush()
            except (OSError, ValueError):  # the reader went away (| head): nothing left to flush to
                pass
        sys.stdout, sys.stderr = saved
