"""Training data: tool-use trajectories -> token ids with labels on assistant turns only.

Two input formats are read:

- ours (`data/localtoolbench/train/trajectories.jsonl`): one JSON object per line with OpenAI-style
  `messages` (system, user, assistant with `function_call`, function, ...);
- ToolBench's released `toolllama_G123_dfs_train.json`: a JSON list of `{"id", "conversations": [{"from",
  "value"}]}` where an assistant value is already `"\\nThought: ...\\nAction: ...\\nAction Input: ..."`.

Both become a `Conversation`: a list of (role, text) turns, where an assistant turn's text is exactly what
the model must write at inference (`Thought: ...\\nAction: <name>\\nAction Input: <json>`). The sequence is
rendered with the same renderer as inference, so every assistant turn's prompt is a prefix of the sequence;
loss is taken on assistant texts (plus the end-of-sequence token that makes generation stop) and nothing else.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from toolbench_eval.errors import located

ROLE_ALIASES = {"system": "system", "user": "user", "assistant": "assistant", "function": "function", "tool": "function"}


@dataclass(frozen=True)
class Conversation:
    conversation_id: str
    turns: tuple[tuple[str, str], ...]  # (role, text); role in system/user/assistant/function
    untrained: frozenset[int] = frozenset()  # indices of assistant turns kept as context only (weight 0)


def assistant_text(message: dict[str, Any]) -> str:
    """The raw text a model writes for one assistant message: thought, then the action in ReAct form."""
    thought = (message.get("content") or "").strip()
    if thought.startswith("Thought:"):
        thought = thought[len("Thought:") :].strip()
    call = message.get("function_call")
    if call is None and message.get("tool_calls"):
        call = message["tool_calls"][0].get("function")
    if not call:
        return f"Thought: {thought}"
    arguments = call.get("arguments", "{}")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return f"Thought: {thought}\nAction: {call['name']}\nAction Input: {arguments}"


def conversation_from_messages(conversation_id: str, messages: list[dict[str, Any]], *,
                               honour_weights: bool = True) -> Conversation:
    turns, untrained = [], set()
    for index, message in enumerate(messages):
        role = ROLE_ALIASES.get(message.get("role", ""))
        if role is None:
            raise ValueError(f"unknown role {message.get('role')!r}")
        text = assistant_text(message) if role == "assistant" else str(message.get("content") or "")
        turns.append((role, text))
        weight = message.get("weight", 1)
        if weight not in (0, 1):
            raise ValueError(f"message {index}: weight must be 0 or 1, got {weight!r}")
        if honour_weights and role == "assistant" and weight == 0:
            untrained.add(index)
    return Conversation(conversation_id, tuple(turns), frozenset(untrained))


def conversation_from_toolllama(conversation_id: str, conversations: list[dict[str, str]]) -> Conversation:
    turns = []
    for turn in conversations:
        role = ROLE_ALIASES.get(turn.get("from", ""))
        if role is None:
            raise ValueError(f"unknown speaker {turn.get('from')!r}")
        text = turn["value"]
        # Released ToolLLaMA data starts assistant values with a newline; our renderer puts it after "Assistant:".
        turns.append((role, text.lstrip("\n") if role == "assistant" else text))
    return Conversation(conversation_id, tuple(turns))


def read_conversations(path: str | Path, *, honour_weights: bool = True) -> Iterator[Conversation]:
    """Yield conversations from a trajectories JSONL file or a ToolLLaMA-format JSON list.

    `honour_weights=False` trains on every assistant turn, weight-0 ones too (upstream ToolLLaMA has no
    weights and trains on its failed branches as well).
    """
    path = Path(path)
    if not path.exists():
        raise located(path, "training data file not found (build LocalToolBench with "
                      "`toolbench-eval localtoolbench generate` or pass --data PATH)")
    if path.suffix == ".jsonl":
        from toolbench_eval.jsonl import JsonlLineError, read_jsonl

        try:
            for line_number, record in read_jsonl(path):
                try:
                    yield conversation_from_messages(str(record.get("query_id", line_number)), record["messages"],
                                                     honour_weights=honour_weights)
                except (KeyError, TypeError, ValueError, AttributeError) as error:
                    raise located(path, f"cannot read trajectory: {error}", entry=f"line {line_number}",
                                  field="messages") from error
        except JsonlLineError as error:
            raise located(path, f"cannot read trajectory: {error.message}", entry=f"line {error.line_number}",
                          field="messages") from None
        return
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise located(path, f"invalid JSON ({error})") from error
    if not isinstance(records, list):
        raise located(path, "expected a JSON list of {'id', 'conversations'} records")
    for index, record in enumerate(records):
        try:
            yield conversation_from_toolllama(str(record.get("id", index)), record["conversations"])
        except (KeyError, TypeError, ValueError) as error:
            raise located(path, f"cannot read conversation: {error}", entry=record.get("id", index)
                          if isinstance(record, dict) else index, field="conversations") from error


TOOL_LIST = re.compile(r"You have access of the following tools:\n((?:\d+\.[^\n]*\n?)+)")
TOOL_ENTRY = re.compile(r"^\d+\.([^:\n]+):", re.MULTILINE)
# Parts of invented tool names: compounds like the real ones ("weathernow", "stockpulse").
NAME_PARTS = ("astro", "bright", "data", "deep", "echo", "flow", "go", "grid", "info", "lab", "link", "live",
              "mint", "nova", "open", "orbit", "peak", "pilot", "pixel", "point", "quick", "sage", "signal",
              "smart", "spot", "stack", "swift", "true", "vista", "wave", "wise", "zen")


def tool_names(system_prompt: str) -> list[str]:
    """The tool names a ToolBench system prompt lists ("1.bookfinder: ..."); empty if it lists none."""
    listing = TOOL_LIST.search(system_prompt)
    return TOOL_ENTRY.findall(listing.group(1)) if listing else []


def rename_tools(conversation: Conversation, rng: random.Random) -> Conversation:
    """The conversation with every listed tool renamed to an invented name, in all but tool observations.

    A function name is `<api>_for_<tool>`, so this renames the functions too, consistently across the API
    list, the thoughts, the calls and the diversity prompt's earlier candidates.
    """
    names = tool_names(_system_prompt(conversation))
    if not names:
        return conversation
    taken, mapping = set(names), {}
    for name in names:
        invented = name
        while invented in taken:
            invented = "".join(rng.sample(NAME_PARTS, 2))
        taken.add(invented)
        mapping[name] = invented
    # Whole names only: a tool name is bounded by non-alphanumerics (`_for_<tool>`, `"<tool>"`, `1.<tool>:`).
    return _replace_names(conversation, mapping, "a-z0-9")


def _system_prompt(conversation: Conversation) -> str:
    return next((text for role, text in conversation.turns if role == "system"), "")


def _replace_names(conversation: Conversation, mapping: dict[str, str], name_chars: str) -> Conversation:
    """Every whole occurrence of a `mapping` key (not inside a longer run of `name_chars`, a regex character
    class body) replaced by its value, in all turns but tool observations, which are data."""
    pattern = re.compile(rf"(?<![{name_chars}])(" + "|".join(map(re.escape, sorted(mapping, key=len, reverse=True)))
                         + rf")(?![{name_chars}])")
    turns = tuple((role, text if role == "function" else pattern.sub(lambda match: mapping[match.group(1)], text))
                  for role, text in conversation.turns)
    return replace(conversation, turns=turns)


def rename_share(conversations: list[Conversation], share: float, seed: int, *,
                 rename: Callable[[Conversation, random.Random], Conversation] = rename_tools,
                 stream: str = "tool-renaming") -> tuple[list[Conversation], int]:
    """Rename the tools (or, with `rename=rename_apis`, the APIs) of about `share` of the conversations, seeded;
    returns them and how many changed. `stream` names the random stream, so two renamings draw independently."""
    rng = random.Random(f"{stream}-{seed}")
    renamed, count = [], 0
    for conversation in conversations:
        if rng.random() < share:
            changed = rename(conversation, rng)
            count += changed is not conversation
            conversation = changed
        renamed.append(conversation)
    return renamed, count


# `<api>_for_<tool>` as listed in the prompt; the API part is greedy because API names may contain "_for_".
FUNCTION_ENTRY = re.compile(r"""['"]name['"]: ['"]([a-z0-9_^]+)_for_([a-z0-9_^]+?)['"]""")
# Neutral parts of invented API names: they say nothing about what the API returns, so a model trained on
# them has to read the description and the parameters to choose.
API_VERBS = ("get", "fetch", "find", "list", "lookup", "query", "read", "pull", "scan", "load")
API_NOUNS = ("items", "records", "entries", "data", "info", "details", "results", "rows", "index", "feed",
             "catalog", "report")


def function_names(system_prompt: str) -> list[tuple[str, str]]:
    """The (API part, tool part) of every `<api>_for_<tool>` function a ToolBench system prompt lists."""
    return list(dict.fromkeys(FUNCTION_ENTRY.findall(system_prompt)))


def rename_apis(conversation: Conversation, rng: random.Random) -> Conversation:
    """The conversation with the API part of every listed function renamed to an invented, neutral name
    (`search_movies_for_filmdb` -> `fetch_records_for_filmdb`), in all but tool observations.

    Tool names stay. Names that say nothing make the description and the parameter schema the only way to
    choose between sibling APIs, which is the choice a model faces on unseen tools and categories.
    """
    functions = function_names(_system_prompt(conversation))
    if not functions:
        return conversation
    taken = {api for api, _ in functions}
    mapping = {}
    for api, tool in functions:
        invented = api
        while invented in taken:
            invented = f"{rng.choice(API_VERBS)}_{rng.choice(API_NOUNS)}"
            if invented in taken:
                invented += f"_{rng.randrange(2, 10)}"
        taken.add(invented)
        mapping[f"{api}_for_{tool}"] = f"{invented}_for_{tool}"
    return _replace_names(conversation, mapping, "A-Za-z0-9_")  # whole function names only


def render_segments(conversation: Conversation) -> list[tuple[str, bool]]:
    """Render a conversation as (text, is_target) segments; their concatenation is the training text.

    The layout is the inference layout (`reasoning.prompts.render_toolllama_prompt`): `Role: content\\n`
    per turn, and each assistant turn as `Assistant:\\n` followed by the model's own text. So the prompt of
    assistant turn k is exactly the text before its target segment.
    """
    from reasoning.prompts import render_toolllama_prompt

    segments: list[tuple[str, bool]] = []
    history: list[dict[str, str]] = []
    rendered_so_far = ""
    for index, (role, text) in enumerate(conversation.turns):
        if role == "assistant":
            prompt = render_toolllama_prompt(history)  # ends with "Assistant:\n"
            if not prompt.startswith(rendered_so_far):
                raise ValueError("renderer is not prefix-stable: cannot train on the inference layout")
            segments.append((prompt[len(rendered_so_far):], False))
            segments.append((text, index not in conversation.untrained))
            rendered_so_far = prompt + text
        history.append({"role": role, "content": text})
    return segments


def tokenize_conversation(conversation: Conversation, tokenizer, max_length: int) -> dict[str, list[int]] | None:
    """Token ids and labels (-100 outside trained assistant texts).

    The model must also learn to stop after each assistant text. At inference the next prompt continues
    with the rendered history (no end-of-sequence token in it), so the inputs here carry no EOS either:
    the label of the first token after an assistant text is EOS instead of that token (not after an
    untrained one: its stop is as much a non-target as its text). Only the very last turn, which has
    nothing after it, gets an explicit EOS input. Returns None if no target survives the `max_length` cut.
    """
    input_ids: list[int] = []
    labels: list[int] = []
    if tokenizer.bos_token_id is not None and getattr(tokenizer, "add_bos_token", False):
        input_ids.append(tokenizer.bos_token_id)
        labels.append(-100)
    stop_label_due = False
    for text, is_target in render_segments(conversation):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            continue
        segment_labels = list(ids) if is_target else [-100] * len(ids)
        if stop_label_due:
            segment_labels[0] = tokenizer.eos_token_id
        input_ids.extend(ids)
        labels.extend(segment_labels)
        stop_label_due = is_target
    if stop_label_due:
        input_ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    if all(label == -100 for label in labels):
        return None
    return {"input_ids": input_ids, "labels": labels}


def build_examples(conversations: Iterable[Conversation], tokenizer, max_length: int) -> tuple[list[dict], dict]:
    """Tokenize all conversations; returns the examples and counts for the recipe manifest."""
    examples, dropped, tokens, target_tokens, untrained = [], 0, 0, 0, 0
    for conversation in conversations:
        untrained += len(conversation.untrained)
        example = tokenize_conversation(conversation, tokenizer, max_length)
        if example is None:
            dropped += 1
            continue
        examples.append(example)
        tokens += len(example["input_ids"])
        target_tokens += sum(label != -100 for label in example["labels"])
    stats = {"examples": len(examples), "dropped_too_long": dropped, "tokens": tokens, "target_tokens": target_tokens,
             "untrained_turns": untrained}
    return examples, stats
