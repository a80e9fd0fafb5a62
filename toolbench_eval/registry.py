"""Parts chosen by name (engines, methods, tool backends, judges), and one checked way to build them.

A table maps each name to "module:attribute" and imports it only when asked for, so naming a part never
loads it: vLLM, Ray and openai stay optional until a run needs them. What a part accepts is its signature,
never a list kept by hand, so a new parameter is accepted, listed in errors and documented in one place.

>>> def greet(name, *, punctuation="!"):
...     return f"hello {name}{punctuation}"
>>> construct(greet, "greeting", "you", punctuation="?")
'hello you?'
>>> construct(greet, "greeting", "you", punctation="?")
Traceback (most recent call last):
...
toolbench_eval.errors.UserError: greeting: unknown argument(s) ['punctation']; known: punctuation
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from toolbench_eval.errors import UserError

T = TypeVar("T")

_CREDENTIAL_WORDS = frozenset({"key", "token", "secret", "password"})


class Registry:
    """The names of one kind of part and where each lives (`"module:attribute"`, the attribute may be dotted)."""

    def __init__(self, kind: str, entries: Mapping[str, str]) -> None:
        self.kind = kind
        self.entries = dict(entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.entries)

    def lookup(self, name: str) -> Any:
        """The class or factory registered as `name`, imported now."""
        if name not in self.entries:
            raise UserError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names)}")
        module_name, _, attribute = self.entries[name].partition(":")
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError as error:
            raise UserError(f"{self.kind} {name!r} is not available: cannot import {module_name} ({error})") from error
        for part in attribute.split("."):
            found = getattr(found, part)
        return found


def accepted_arguments(factory: Callable[..., Any]) -> list[str]:
    """The names `factory` can be given as keywords, in signature order. A class that passes `**options` on to
    its base accepts the base's names too."""
    parameters = inspect.signature(factory).parameters.values()
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if isinstance(factory, type) and any(p.kind is p.VAR_KEYWORD for p in parameters):
        for base in factory.__mro__[1:]:
            if base is not object and "__init__" in vars(base):
                names += accepted_arguments(base)
    return list(dict.fromkeys(names))


def arguments_taken(factory: Callable[..., Any], offered: Mapping[str, Any]) -> dict[str, Any]:
    """The `offered` settings that `factory` takes: for settings offered to every implementation of a kind, of
    which each uses its own (DFSDT's width, ReAct none; the LLM judge's model, the rule judge none)."""
    accepted = set(accepted_arguments(factory))
    return {name: value for name, value in offered.items() if name in accepted}


def looks_like_a_credential(name: str) -> bool:
    """`api_key`, `token`: yes; `api_key_env` (names a variable), `max_tokens`: no."""
    words = name.lower().split("_")
    return words[-1] not in ("env", "envs") and not _CREDENTIAL_WORDS.isdisjoint(words)


def check_arguments(what: str, given: Iterable[str], known: Iterable[str]) -> None:
    """A UserError naming `what` unless every `given` name is `known`; a credential is refused even when known,
    so that keys never sit in a command line, a config file or a run manifest."""
    given, known = list(given), sorted(known)
    credentials = [name for name in given if looks_like_a_credential(name)]
    if credentials:
        raise UserError(f"{what}: {credentials[0]!r} would put a key into the command line or config; keys are "
                        "read from the environment only: remove it and set the key's environment variable instead "
                        "(OPENAI_API_KEY, TOOLBENCH_KEY, MIRROR_API_KEY, or the one an `..._env` argument names)")
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UserError(f"{what}: unknown argument(s) {unknown}; known: {', '.join(known)}")


def construct(factory: Callable[..., T], what: str, /, *args: Any, **arguments: Any) -> T:
    """`factory(*args, **arguments)` once the keywords (what a user wrote: `--model-args`, a config's options)
    fit its signature; an unknown or missing one is a UserError naming `what`, raised before anything is built.

    `args` are the caller's own inputs (a loaded model): they fill the leading parameters, which are therefore
    not the user's to give."""
    parameters = list(inspect.signature(factory).parameters.values())
    filled = {p.name for p in parameters[:len(args)]}
    check_arguments(what, arguments, [name for name in accepted_arguments(factory) if name not in filled])
    missing = [p.name for p in parameters[len(args):] if p.default is p.empty and p.name not in arguments
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if missing:
        raise UserError(f"{what}: missing argument(s) {missing}")
    return factory(*args, **arguments)
