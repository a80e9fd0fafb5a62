"""Name mangling exactly as StableToolBench does it (`toolbench/utils.py`, `rapidapi.py`).

Function names are what a model writes in `Action:`, so a single differing character makes a
trained model (ToolLLaMA) miss its tools. These rules are therefore reproduced to the letter,
quirks included:

- `standardize` keeps CJK ideographs, ASCII letters and digits, `_` and (a bug of the upstream
  character class) the literal `^`; everything else becomes `_`.
- `change_name` prefixes a few Python keywords / JSON words with `is_`.
- a function name keeps the *last* 64 characters, so long names lose their API prefix.

>>> standardize("Get Word by Length & Start")
'get_word_by_length_start'
>>> standardize("2 Factor Auth")
'get_2_factor_auth'
>>> change_name("from")
'is_from'
>>> function_name("Songkick concert", "theclique")
'songkick_concert_for_theclique'
"""

from __future__ import annotations

import re

# Upstream's class `[^\u4e00-\u9fa5^a-z^A-Z^0-9^_]`: the repeated `^` are literal characters, so `^` survives.
_NOT_KEPT = re.compile("[^\u4e00-\u9fa5^a-z^A-Z^0-9^_]")
_UNDERSCORE_RUNS = re.compile(r"(_)\1+")

# Names upstream renames to `is_<name>` (API names and parameter names alike).
RESERVED_NAMES: frozenset[str] = frozenset({"from", "class", "return", "false", "true", "id", "and"})

# OpenAI function names are limited to 64 characters; upstream keeps the tail.
MAX_FUNCTION_NAME_LENGTH = 64


def standardize(text: str) -> str:
    """Upstream `standardize`: tool, API and parameter names as they appear in schemas.

    >>> standardize("__Weather  API (v2)__")
    'weather_api_v2'
    >>> standardize("a^b")  # the upstream quirk: `^` is kept
    'a^b'
    >>> standardize("天气 API")
    '天气_api'
    >>> standardize("!!!")
    ''
    """
    text = _NOT_KEPT.sub("_", text)
    text = _UNDERSCORE_RUNS.sub("_", text).lower()
    text = text.strip("_")
    if text and text[0].isdigit():
        text = "get_" + text
    return text


def change_name(name: str) -> str:
    """Upstream `change_name`: `id` -> `is_id` and the like; other names pass unchanged.

    >>> change_name("id"), change_name("ids")
    ('is_id', 'ids')
    """
    return "is_" + name if name in RESERVED_NAMES else name


def standardize_category(category: str) -> str:
    """Upstream `standardize_category`: the directory name of a category.

    >>> standardize_category("Artificial Intelligence/Machine Learning")
    'Artificial_Intelligence_Machine_Learning'
    >>> standardize_category("Data, Video")
    'Data_Video'
    """
    saved = category.replace(" ", "_").replace(",", "_").replace("/", "_")
    # The loop upstream is a no-op after the first pass; one `__` -> `_` pass follows (not a full collapse).
    return saved.replace("__", "_")


def parameter_name(name: str) -> str:
    """The name a parameter gets in a function schema.

    >>> parameter_name("ID")
    'is_id'
    >>> parameter_name("Start Date")
    'start_date'
    """
    return change_name(standardize(name))


def function_name(api_name: str, standard_tool_name: str) -> str:
    """`<api>_for_<tool>`, cut to its last 64 characters.

    `api_name` is the original API name; `standard_tool_name` is already standardized
    (the tool JSON file stem).

    >>> function_name("id", "users")
    'is_id_for_users'
    >>> len(function_name("x" * 80, "tool"))
    64
    >>> function_name("x" * 80, "tool").endswith("x_for_tool")
    True
    """
    name = f"{change_name(standardize(api_name))}_for_{standard_tool_name}"
    return name[-MAX_FUNCTION_NAME_LENGTH:]
