"""Scripted stand-ins for the model weights behind upstream's ToolLLaMA classes.

Only what produces text is replaced; upstream's prompt building, `generate_stream` decoding loop, stop-string
handling, `.strip()`, `react_parser`, message layout and token accounting all run unchanged:

- `ScriptedTokenizer` / `ScriptedModel` replace `AutoTokenizer` / `AutoModelForCausalLM` in
  `toolbench.inference.LLM.tool_llama_model`. The tokenizer is character level (one id per character, BOS
  prepended like Llama's); the model's greedy argmax spells the next scripted reply one character per step and
  then emits EOS. Upstream's real `generate_stream` drives it, so the decoded text is what upstream would get
  from a model whose detokenized output is the scripted string.
- `generate_stream` in that module is wrapped (not replaced): the wrapper records the prompt and every
  generation setting, then yields from upstream's own function (on device "cpu": the recorded device is the
  "cuda" upstream asked for).
- For `ToolLLaMA_vllm`, `OpenAI` in `tool_llama_vllm_model` becomes `ScriptedOpenAI`, whose
  `completions.create(**kwargs)` records the request and returns the scripted text as vLLM's completion.
- `parse` of both classes is wrapped to record the message list it was given and the message it returned.

Where the script runs out, the model returns FALLBACK_REPLY (a Finish give_up_and_restart).
"""

from __future__ import annotations

import copy
import json

FALLBACK_REPLY = (
    "Thought: I have no more scripted replies, so I give up.\nAction: Finish\n"
    'Action Input: {"return_type": "give_up_and_restart"}'
)

BOS_ID, EOS_ID, FIRST_CHAR_ID = 1, 2, 3


class Script:
    """The scripted replies, consumed in order; shared by the model and the recorders."""

    def __init__(self, replies: list[str]):
        self.replies = list(replies)
        self.used = 0
        self.fallbacks = 0
        self.calls: list[dict] = []

    def next_reply(self) -> str:
        if self.used < len(self.replies):
            reply = self.replies[self.used]
            self.used += 1
            return reply
        self.fallbacks += 1
        return FALLBACK_REPLY


class _Ids(dict):
    """A stand-in for transformers' BatchEncoding when transformers is absent (same len(): number of keys)."""

    @property
    def input_ids(self):
        return self["input_ids"]


class ScriptedTokenizer:
    """Character-level tokenizer; `pad_token_id` is None like Llama-2's, so ToolLLaMA.__init__ adds specials."""

    def __init__(self):
        self.vocab: dict[str, int] = {}
        self.inverse: dict[int, str] = {}
        self.bos_token_id, self.eos_token_id = BOS_ID, EOS_ID
        self.pad_token_id = None
        self.special: dict[str, int] = {"<s>": BOS_ID, "</s>": EOS_ID}

    def add_special_tokens(self, tokens: dict) -> int:
        added = 0
        for value in tokens.values():
            if value not in self.special:
                self.special[value] = FIRST_CHAR_ID + 100000 + len(self.special)
                added += 1
        self.pad_token_id = self.special.get("<pad>")
        return added

    def __len__(self):
        return FIRST_CHAR_ID + len(self.vocab) + len(self.special)

    def char_id(self, ch: str) -> int:
        if ch not in self.vocab:
            self.vocab[ch] = FIRST_CHAR_ID + len(self.vocab)
            self.inverse[self.vocab[ch]] = ch
        return self.vocab[ch]

    def __call__(self, text: str):
        ids = [BOS_ID] + [self.char_id(ch) for ch in text]
        try:
            from transformers import BatchEncoding
            return BatchEncoding({"input_ids": ids, "attention_mask": [1] * len(ids)})
        except ImportError:  # pragma: no cover
            return _Ids({"input_ids": ids, "attention_mask": [1] * len(ids)})

    def decode(self, ids, skip_special_tokens=False, spaces_between_special_tokens=True):
        out = []
        special_ids = {v: k for k, v in self.special.items()}
        for i in ids:
            i = int(i)
            if i in special_ids:
                if not skip_special_tokens:
                    out.append(special_ids[i])
            else:
                out.append(self.inverse[i])
        return "".join(out)


class _Config:
    is_encoder_decoder = False


class _Out:
    def __init__(self, logits, past_key_values):
        self.logits = logits
        self.past_key_values = past_key_values


class ScriptedModel:
    """Greedy decoding of this model spells the current scripted reply, then EOS (forever)."""

    def __init__(self, script: Script, tokenizer: ScriptedTokenizer):
        self.script = script
        self.tokenizer = tokenizer
        self.config = _Config()
        self.reply_ids: list[int] = []
        self.position = 0

    def resize_token_embeddings(self, n):
        return None

    def _logits(self, token_id: int):
        import torch
        size = max(len(self.tokenizer), token_id + 1)
        logits = torch.zeros((1, 1, size))
        logits[0, -1, token_id] = 1.0
        return logits

    def __call__(self, input_ids=None, use_cache=True, past_key_values=None):
        if past_key_values is None:  # a new generation starts
            reply = self.script.next_reply()
            self.script.calls[-1]["scripted_reply"] = reply
            self.reply_ids = [self.tokenizer.char_id(ch) for ch in reply]
            self.position = 0
        else:
            self.position += 1
        token = self.reply_ids[self.position] if self.position < len(self.reply_ids) else EOS_ID
        return _Out(self._logits(token), past_key_values=("kv", self.position))


def install_hf(script: Script) -> None:
    """Patch toolbench.inference.LLM.tool_llama_model so ToolLLaMA runs on the script."""
    import toolbench.inference.LLM.tool_llama_model as tlm

    tokenizer = ScriptedTokenizer()

    class AutoTokenizer:
        @staticmethod
        def from_pretrained(path, **kwargs):
            script.load_calls.append({"what": "AutoTokenizer.from_pretrained", "path": path, "kwargs": kwargs})
            return tokenizer

    class AutoModelForCausalLM:
        @staticmethod
        def from_pretrained(path, **kwargs):
            script.load_calls.append({"what": "AutoModelForCausalLM.from_pretrained", "path": path,
                                      "kwargs": kwargs})
            return ScriptedModel(script, tokenizer)

    script.load_calls = []
    tlm.AutoTokenizer = AutoTokenizer
    tlm.AutoModelForCausalLM = AutoModelForCausalLM

    real_generate_stream = tlm.generate_stream

    def recording_generate_stream(model, tokenizer, params, device, context_len=8192, stream_interval=2,
                                  force_generate=False):
        settings = {k: copy.deepcopy(v) for k, v in params.items() if k != "prompt"}
        settings.update({"device": device, "context_len": context_len, "stream_interval": stream_interval,
                         "force_generate": force_generate})
        script.calls.append({"prompt": params["prompt"], "settings": settings})
        final = None
        # ToolLLaMA.prediction passes device "cuda"; this CPU-only torch cannot place tensors there. The device
        # only decides where tensors live, so the recorded "cuda" is what upstream asked for and "cpu" is used.
        for out in real_generate_stream(model, tokenizer, params, "cpu", context_len, stream_interval,
                                        force_generate):
            final = out
            yield out
        script.calls[-1]["generate_stream_text"] = final["text"] if final else None
        script.calls[-1]["finish_reason"] = final.get("finish_reason") if final else None

    tlm.generate_stream = recording_generate_stream
    _wrap_parse(tlm.ToolLLaMA, script)


class _Completion:
    def __init__(self, data):
        self._data = data

    def dict(self):
        return self._data


def fake_total_tokens(prompt: str, text: str) -> int:
    """vLLM would count Llama tokens; with no tokenizer here, a fixed stand-in: characters // 4."""
    return (len(prompt) + len(text)) // 4


class ScriptedOpenAI:
    script: Script = None  # set by install_vllm

    def __init__(self, base_url=None, api_key=None, **kwargs):
        self.client_args = {"base_url": base_url, "api_key": api_key, **kwargs}
        self.completions = self

    def create(self, **kwargs):
        script = ScriptedOpenAI.script
        settings = {k: copy.deepcopy(v) for k, v in kwargs.items() if k != "prompt"}
        settings["client"] = dict(self.client_args)
        reply = script.next_reply()
        script.calls.append({"prompt": kwargs["prompt"], "settings": settings, "scripted_reply": reply})
        total = fake_total_tokens(kwargs["prompt"], reply)
        return _Completion({"choices": [{"text": reply, "index": 0, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": total, "completion_tokens": 0, "total_tokens": total}})


def install_vllm(script: Script) -> None:
    import toolbench.inference.LLM.tool_llama_vllm_model as tvm

    script.load_calls = []
    ScriptedOpenAI.script = script
    tvm.OpenAI = ScriptedOpenAI
    _wrap_parse(tvm.ToolLLaMA_vllm, script)


def _wrap_parse(cls, script: Script) -> None:
    real_parse = cls.parse

    def recording_parse(self, tools, process_id, **args):
        before = len(script.calls)
        # roles as Tree.to_json(use_messages=True) writes them: "<role>" or "<role>_invalid" (valid == False);
        # the prompt holds the full text of every one of them
        history = [m["role"] + ("_invalid" if m.get("valid") is False else "") for m in self.conversation_history]
        message, error_code, tokens = real_parse(self, tools, process_id, **args)
        record = {"history_roles": history, "returned_message": copy.deepcopy(message), "error_code": error_code,
                  "total_tokens": tokens}
        if len(script.calls) > before:
            script.calls[-1].update(record)
        else:  # pragma: no cover - parse returned without generating
            script.calls.append(record)
        return message, error_code, tokens

    cls.parse = recording_parse


def dump(script: Script, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"calls": script.calls, "replies_used": script.used, "fallback_replies": script.fallbacks,
                   "load_calls": getattr(script, "load_calls", [])}, f, indent=1, ensure_ascii=False)
