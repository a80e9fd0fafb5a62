"""Queries with ground truth, in the six ToolBench groups plus a train split.

A query is built from one to three *intents*. An intent is one ask of one API ("the 3 best-rated
hotels in Lisbon"): its values are drawn from a real database row, ids are reached through a resolver
API when a user would name the thing instead ("films directed by Ava Moreno" -> search person -> id),
and its facts are read from the executed response. Intents of a multi-tool query share an entity
(a city, a country) when their APIs allow it, as a real user's question would.

Splits (what each group holds out, like ToolBench):
- G1_instruction / G2_instruction / G3_instruction: train tools, but held-out sentence templates and
  held-out entities (about one entity in five never appears in train queries);
- G1_tool: tools in `HELD_OUT_TOOLS` (never in any train api_list), within seen categories;
- G1_category / G2_category: categories in `HELD_OUT_CATEGORIES` (never in train).
"""

from __future__ import annotations

import hashlib
import random
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from toolbench_eval.localtoolbench.catalog import Ask, BoundApi, Catalog
from toolbench_eval.localtoolbench.execution import execute
from toolbench_eval.tools.base import Status, render_observation

# Opening sentences around an ask; the last three are held out for the *_instruction test groups.
FIRST_TEMPLATES = (
    "Can you tell me {ask}?", "I'd like to know {ask}.", "Could you find out {ask}?", "Please check {ask}.",
    "I want to know {ask}.", "Could you look up {ask} for me?", "Let me know {ask}, please.",
    "I'm curious about {ask}.", "Would you mind finding out {ask}?", "Do you happen to know {ask}?",
)
NEXT_TEMPLATES = (
    "I'd also like to know {ask}.", "Also, can you tell me {ask}?", "Then find out {ask}.",
    "On top of that, please check {ask}.", "And could you let me know {ask}?",
    "Additionally, I want to know {ask}.", "After that, tell me {ask}.",
)
HELD_OUT_FIRST, HELD_OUT_NEXT = 3, 2
TRIP_OPENERS = ("I'm planning a trip to {city}.", "I'll be in {city} next week.", "My family is visiting {city} soon.")
NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}
WEAK_FACTS = {"none", "yes", "no", "n/a", "null", "true", "false"}
MAX_RELEVANT = 3


def fact_text(value: Any) -> str | None:
    """A response value as the text a final answer must contain (numbers written plainly)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return repr(value)
    return str(value)


def acceptable_fact(text: str) -> bool:
    """Reject facts a wrong answer could contain by accident (single digits, "None", tiny words)."""
    if re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
        return sum(ch.isdigit() for ch in text) >= 2
    return len(text) >= 3 and text.lower() not in WEAK_FACTS


def is_test_entity(key: str) -> bool:
    """About one entity in five is reserved for test queries of the *_instruction groups."""
    return hashlib.sha256(key.encode("utf-8")).digest()[0] % 5 == 0


@dataclass
class PlannedCall:
    api: BoundApi
    arguments: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"tool_name": self.api.tool, "api_name": self.api.name, "arguments": self.arguments}


@dataclass
class Intent:
    api: BoundApi
    phrase: str
    calls: list[PlannedCall]
    facts: list[str]
    entity_key: str
    entities: dict[str, str] = field(default_factory=dict)


def _read_path(response: Any, path: str) -> Any:
    node = response
    for part in path.split("."):
        if isinstance(node, list):
            node = node[int(part)] if part.isdigit() and int(part) < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def extract_facts(api: BoundApi, ask: Ask, n: int, response: Any) -> list[str] | None:
    """The fact texts an ask needs from a response, or None if any is missing or too weak."""
    values: list[Any] = []
    if api.archetype.kind == "list":
        rows = response.get("results", []) if isinstance(response, dict) else []
        if len(rows) < n:
            return None
        for row in rows[:n]:
            values.extend(row.get(name) for name in ask.facts)
    else:
        if not isinstance(response, dict) or "message" in response and len(response) == 1:
            return None
        values = [_read_path(response, name) for name in ask.facts]
    facts: list[str] = []
    for value in values:
        text = fact_text(value)
        if text is None or not acceptable_fact(text):
            return None
        if text not in facts:
            facts.append(text)
    return facts


class IntentSampler:
    """Draws intents for APIs from database rows and computes their facts by execution."""

    def __init__(self, catalog: Catalog, conn: sqlite3.Connection):
        self.catalog = catalog
        self.conn = conn
        self._rows: dict[str, list[dict[str, Any]]] = {}

    def rows(self, source: str) -> list[dict[str, Any]]:
        if source not in self._rows:
            cursor = self.conn.execute(f"SELECT * FROM {source} ORDER BY 1, 2")
            self._rows[source] = [dict(r) for r in cursor]
        return self._rows[source]

    def _natural_name(self, resolver: BoundApi, id_field: str, value: Any) -> str | None:
        name_param = next(p for p in resolver.archetype.params if p.required)
        row = self.conn.execute(f"SELECT {name_param.column} FROM {resolver.archetype.source} "
                                f"WHERE {id_field} = ? LIMIT 1", (value,)).fetchone()
        return None if row is None else str(row[0])

    def sample(self, api: BoundApi, rng: random.Random, hint: dict[str, str] | None = None) -> Intent | None:
        arch = api.archetype
        if not arch.asks or api.binding.dead:
            return None
        ask = rng.choice(arch.asks)
        counts = [n for n in ask.n if n > 1] if "{n}" in ask.phrase else [1]
        if not counts:
            return None
        n = rng.choice(counts)
        if arch.kind == "custom":
            values = arch.sample(self.conn, rng)
        else:
            rows = self.rows(arch.source)
            linked = [p for p in arch.params if p.entity and hint and p.entity in hint]
            if linked:
                rows = [r for r in rows if str(r.get(linked[0].column, "")).lower() == hint[linked[0].entity].lower()]
            if not rows:
                return None
            row = rng.choice(rows)
            values = {}
            for param in arch.params:
                if param.required:
                    values[param.name] = param.value_from(row) if param.value_from else row[param.column]
        calls: list[PlannedCall] = []
        display = {name: str(value) for name, value in values.items()}
        for param in arch.params:
            if not param.resolve or param.name not in values:
                continue
            if param.resolve_optional and rng.random() < 0.5:
                continue
            resolver = self.catalog.resolver_in_tool(api.tool, param.resolve[0])
            natural = self._natural_name(resolver, param.resolve[1], values[param.name])
            if natural is None:
                return None
            name_param = next(p for p in resolver.archetype.params if p.required)
            resolver_call = PlannedCall(resolver, {resolver.bound_name(name_param.name): natural})
            observation = execute(self.conn, resolver, resolver_call.arguments)
            found = _read_path(observation.response, f"results.0.{param.resolve[1]}") \
                if resolver.archetype.kind == "list" else _read_path(observation.response, param.resolve[1])
            if found != values[param.name]:
                return None  # the natural name is ambiguous: a user could not reach this id
            calls.append(resolver_call)
            display[param.name] = natural
        arguments = {api.bound_name(name): value for name, value in values.items()}
        if arch.kind == "list" and "{n}" in ask.phrase and arch.limit_param:
            arguments[api.bound_name(arch.limit_param)] = n
        target = PlannedCall(api, arguments)
        observation = execute(self.conn, api, arguments)
        if observation.status != Status.OK:
            return None
        facts = extract_facts(api, ask, n, observation.response)
        if not facts:
            return None
        seen = render_observation(observation).lower()
        if not all(fact.lower() in seen for fact in facts):
            return None  # a fact past the 1,024-character cut could never be read by a model
        calls.append(target)
        phrase = ask.phrase.format(n=NUMBER_WORDS.get(n, str(n)), **display)
        entities = {p.entity: str(values[p.name]) for p in arch.params if p.entity and p.name in values}
        key = f"{arch.source}|" + "|".join(display[name] for name in sorted(display))
        return Intent(api, phrase, calls, facts, key, entities)


@dataclass(frozen=True)
class SplitRules:
    """Which sentence templates and entities a split may use."""

    first_templates: tuple[str, ...]
    next_templates: tuple[str, ...]
    entities: str  # "train" | "test" (first intent must be a held-out entity) | "any"


TRAIN_RULES = SplitRules(FIRST_TEMPLATES[:-HELD_OUT_FIRST], NEXT_TEMPLATES[:-HELD_OUT_NEXT], "train")
INSTRUCTION_RULES = SplitRules(FIRST_TEMPLATES[-HELD_OUT_FIRST:], NEXT_TEMPLATES[-HELD_OUT_NEXT:], "test")
UNSEEN_RULES = SplitRules(FIRST_TEMPLATES, NEXT_TEMPLATES, "any")


def _entity_ok(rules: SplitRules, intent: Intent, first: bool) -> bool:
    if rules.entities == "train":
        return not is_test_entity(intent.entity_key)
    if rules.entities == "test" and first:
        return is_test_entity(intent.entity_key)
    return True


def api_entry(api: BoundApi) -> dict[str, Any]:
    """An upstream `api_list` entry for a query file."""
    return {
        "category_name": api.category,
        "tool_name": api.tool,
        "api_name": api.name,
        "api_description": api.description,
        "required_parameters": [parameter_doc(p) for p in api.params if p.param.required],
        "optional_parameters": [parameter_doc(p) for p in api.params if not p.param.required],
        "method": "GET",
    }


def parameter_doc(bound) -> dict[str, Any]:
    return {"name": bound.name, "type": bound.param.type, "description": bound.param.description,
            "default": bound.param.default}


class QueryBuilder:
    """Composes intents into ToolBench queries for one group shape (G1, G2, G3)."""

    def __init__(self, catalog: Catalog, conn: sqlite3.Connection, rng: random.Random):
        self.catalog = catalog
        self.sampler = IntentSampler(catalog, conn)
        self.rng = rng

    def _intents(self, tools: list[str], rules: SplitRules, per_tool: list[int]) -> list[Intent] | None:
        intents: list[Intent] = []
        hint: dict[str, str] = {}
        used: set[str] = set()  # one ask per archetype: two tools offering the same request is no second question
        for tool, count in zip(tools, per_tool):
            for _ in range(count):
                candidates = [a for a in self.catalog.tool_apis(tool)
                              if a.archetype.asks and not a.binding.dead and a.archetype.key not in used]
                if not candidates:
                    return None
                api = self.rng.choice(candidates)
                intent = self.sampler.sample(api, self.rng, hint or None)
                if intent is None or not _entity_ok(rules, intent, first=not intents):
                    return None
                used.add(api.archetype.key)
                intents.append(intent)
                for kind, value in intent.entities.items():
                    hint.setdefault(kind, value)
        return intents

    def _text(self, intents: list[Intent], rules: SplitRules, context: tuple[str, ...]) -> str:
        parts = []
        city = next((i.entities["city"] for i in intents if "city" in i.entities), None)
        if len({i.api.category for i in intents}) > 1 and city and self.rng.random() < 0.6:
            parts.append(self.rng.choice(TRIP_OPENERS).format(city=city))
        elif context and self.rng.random() < 0.6:
            opener = self.rng.choice(context)
            if opener:
                parts.append(opener)
        parts.append(self.rng.choice(rules.first_templates).format(ask=intents[0].phrase))
        for intent in intents[1:]:
            parts.append(self.rng.choice(rules.next_templates).format(ask=intent.phrase))
        return " ".join(parts)

    def build(self, tools: list[str], per_tool: list[int], rules: SplitRules, distractor_pool: list[str],
              context: tuple[str, ...]) -> dict[str, Any] | None:
        """One query over `tools` (intents per tool as given), or None if this draw does not work out."""
        intents = self._intents(tools, rules, per_tool)
        if not intents:
            return None
        calls = [call for intent in intents for call in intent.calls]
        relevant: list[BoundApi] = []
        for call in calls:
            if call.api not in relevant:
                relevant.append(call.api)
        if len(relevant) > MAX_RELEVANT:
            return None
        api_list = self._api_list(relevant, tools, distractor_pool)
        facts: list[str] = []
        for intent in intents:
            facts.extend(f for f in intent.facts if f not in facts)
        answer = "Here is what I found. " + " ".join(
            f"For {intent.phrase}: {', '.join(intent.facts)}." for intent in intents)
        return {
            "_answer": answer,  # the oracle's final answer; not written to query files
            "query": self._text(intents, rules, context),
            "api_list": [api_entry(api) for api in api_list],
            "relevant APIs": [[api.tool, api.name] for api in relevant],
            "ground_truth": {"facts": facts, "call_plan": [call.as_dict() for call in calls]},
        }

    def _api_list(self, relevant: list[BoundApi], tools: list[str], pool: list[str]) -> list[BoundApi]:
        """Relevant APIs plus distractors from the same tools first, then other tools of the pool."""
        # 4-6 APIs keep a query's ToolLLaMA prompt near 1,000 tokens (small models train on these).
        target = max(len(relevant) + 1, self.rng.randint(4, 5))
        chosen = list(relevant)
        same_tool = [a for t in tools for a in self.catalog.tool_apis(t) if a not in chosen]
        self.rng.shuffle(same_tool)
        others = [a for t in pool if t not in tools for a in self.catalog.tool_apis(t)]
        self.rng.shuffle(others)
        for api in same_tool + others:
            if len(chosen) >= target:
                break
            chosen.append(api)
        self.rng.shuffle(chosen)
        return chosen
