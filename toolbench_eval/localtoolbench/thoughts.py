"""The thoughts of the expert trajectories before a planned call, in two styles.

`call-first` is what the oracle writes into `train/trajectories.jsonl`: the thought names the function,
then what it returns ("I'll call search_movies_for_filmdb with title=X to get the search movies by title").
A model imitating it commits to a function name before it has written anything about the need, which is
the wrong order on unseen tools, where the name is all it has learnt to recall.

`goal-first` says what is needed before naming the function, and a lookup says which call it feeds:

    To get the open positions at a company, newest first, employer_jobs_for_careerscope needs the
    company_id first, so I'll search with employer_lookup_for_careerscope for employer=Norvex Airways.

`restyle_goal_first` rewrites call-first thoughts into goal-first ones at training time
(`toolbench-eval train --thought-style goal-first`), so both styles train from the same committed file.
A thought is only rewritten when rendering its parsed parts in call-first style gives it back exactly;
all other text (recoveries, retries, the final thought, a thought from another source) is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Turn = tuple[str, str]  # (role, text), as a training conversation holds them

THOUGHT_STYLES = ("call-first", "goal-first")
LOOKUP_NOTE = "The search returned {key} {value}. "


def call_thought(note: str, name: str, arguments: str, goal: str) -> str:
    """Call-first thought before a planned call that answers part of the query."""
    return f"{note}I'll call {name} with {arguments} to get the {goal}."


def lookup_thought(note: str, name: str, arguments: str) -> str:
    """Call-first thought before a lookup whose result (an id) the next call takes."""
    return f"{note}First I need the id, so I'll search with {name} for {arguments}."


_NOTE = r"(?P<note>(?:Got it\. |The search returned (?P<key>\w+) .+?\. )?)"
# A goal is one description clause: no sentence break inside, so text after the template is not taken in.
_CALL = re.compile(_NOTE + r"I'll call (?P<name>\S+) with (?P<args>.+?) to get the (?P<goal>(?:(?!\. ).)+)\.",
                   re.DOTALL)
_LOOKUP = re.compile(_NOTE + r"First I need the id, so I'll search with (?P<name>\S+) for (?P<args>.+)\.",
                     re.DOTALL)


def _parse(thought: str) -> tuple[str, re.Match] | None:
    """('call' | 'lookup', match) for a thought in exact call-first form, else None."""
    match = _CALL.fullmatch(thought)
    if match and call_thought(match["note"], match["name"], match["args"], match["goal"]) == thought:
        return "call", match
    match = _LOOKUP.fullmatch(thought)
    if match and lookup_thought(match["note"], match["name"], match["args"]) == thought:
        return "lookup", match
    return None


def _split(text: str) -> tuple[str, str] | None:
    """An assistant text's thought and the rest (`\\nAction: ...`), or None if it is not `Thought: ...`."""
    if not text.startswith("Thought: "):
        return None
    thought, separator, rest = text[len("Thought: "):].partition("\nAction: ")
    return thought, separator + rest


def restyle_goal_first(turns: Sequence[Turn]) -> tuple[tuple[Turn, ...], int]:
    """A conversation's turns with their call-first thoughts in goal-first style, and how many changed.

    A lookup's goal is the goal of the next call-style thought after it, and its consumer is the next
    thought that opens with "The search returned <key> ...": the call that takes the id. A lookup with no
    such consumer after it (a dead end before a restart) keeps its thought.
    """
    turns = list(turns)
    parsed: dict[int, tuple[str, re.Match, str]] = {}
    for index, (role, text) in enumerate(turns):
        split = _split(text) if role == "assistant" else None
        found = _parse(split[0]) if split else None
        if found:
            parsed[index] = (*found, split[1])
    changed = 0
    for index, (kind, match, rest) in parsed.items():
        if kind == "call":
            thought = f"{match['note']}To get the {match['goal']}, I'll call {match['name']} with {match['args']}."
        else:
            later = [(k, m) for i, (k, m, _) in parsed.items() if i > index]  # in turn order
            consumer = next((m for _, m in later if m["key"]), None)
            goal = next((m["goal"] for k, m in later if k == "call"), None)
            if consumer is None or goal is None:
                continue
            thought = (f"{match['note']}To get the {goal}, {consumer['name']} needs the {consumer['key']} first, "
                       f"so I'll search with {match['name']} for {match['args']}.")
        turns[index] = ("assistant", f"Thought: {thought}{rest}")
        changed += 1
    return tuple(turns), changed
