"""Text normalisation for the rule judge: when does a final answer "state" a required fact?

The rule, exactly:

1. Unicode NFKC, then case-folding (`"Straße"` == `"STRASSE"`); the Unicode minus U+2212 reads as `-`.
2. `%` reads as the word `percent`, so `"45%"` == `"45 percent"`.
3. Numbers are canonicalised: thousands separators (commas between groups of three digits) are
   dropped and the value is written in its shortest decimal form, so `7` == `7.0` == `"7.00"` and
   `1,234.50` == `1234.5`. A leading `-` is a sign only when it does not follow a letter, digit or
   dot (so `2023-04-15` stays three numbers, not a subtraction). A number glued to letters splits
   off them (`5km` -> `5 km`); letters followed by digits stay one word (`g1`).
4. Every other non-alphanumeric character is a separator: punctuation and whitespace runs vanish.
5. A fact is stated when its token sequence occurs contiguously in the answer's token sequence
   (whole tokens: `7` is not found in `17`, `cat` is not found in `category`).

Decimal commas (`3,5`) and space-grouped thousands (`1 234`) are not recognised.

>>> normalize("The total is 1,234.50 USD!")
'the total is 1234.5 usd'
>>> states_fact("It costs $7.00 per item.", "7")
True
>>> states_fact("It costs 17 dollars.", "7")
False
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

# Sign, integer part (with or without comma grouping), optional fraction. The integer part must not
# follow a word character or a dot, so digits inside words and version strings keep their shape.
_NUMBER = r"(?:(?<![\w.])-)?(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_WORD = r"[^\W_]+"
_TOKEN_RE = re.compile(f"(?P<number>{_NUMBER})|(?P<word>{_WORD})")


def canonical_number(text: str) -> str:
    """The shortest decimal spelling of a number written with optional sign, commas and fraction.

    >>> [canonical_number(s) for s in ("7", "7.0", "7.00", "-0.0", "1,000", "003.140")]
    ['7', '7', '7', '0', '1000', '3.14']
    """
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return text
    if value == 0:
        return "0"
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def tokens(text: str) -> list[str]:
    """Split text into normalised tokens (see the module docstring for the rule).

    >>> tokens("Paris, FRANCE: 45% of 2,000")
    ['paris', 'france', '45', 'percent', 'of', '2000']
    """
    text = unicodedata.normalize("NFKC", str(text)).casefold().replace("\u2212", "-")
    text = text.replace("%", " percent ")
    result: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        if match.group("number") is not None:
            result.append(canonical_number(match.group("number")))
        else:
            result.extend(_split_number_prefix(match.group("word")))
    return result


def _split_number_prefix(word: str) -> list[str]:
    # "5km" -> ["5", "km"]; words that start with a letter ("g1") stay whole.
    match = re.fullmatch(r"(\d+)(\D\w*)", word)
    if match:
        return [canonical_number(match.group(1)), match.group(2)]
    return [word]


def normalize(text: str) -> str:
    """The normalised form of a text: its tokens joined by single spaces."""
    return " ".join(tokens(text))


def states_fact(answer: str, fact: str) -> bool:
    """True when `answer` contains every token of `fact`, contiguously and in order.

    >>> states_fact("Population: 2,100,000 (2023).", "2100000")
    True
    >>> states_fact("anything", "")
    True
    """
    needle = tokens(fact)
    if not needle:
        return True
    haystack = tokens(answer)
    width = len(needle)
    return any(haystack[i : i + width] == needle for i in range(len(haystack) - width + 1))
