"""`mirror` backend: MirrorAPI (StableToolBench-MirrorAPI, arXiv 2503.20527) behind an OpenAI-compatible endpoint.

MirrorAPI is a Qwen2.5-7B fine-tune that imitates ToolBench APIs. Upstream serves it with vLLM and
wraps it in a `/virtual` server (`server/main_mirrorapi.py`); this backend does that wrapper's work
in-process, so only the model endpoint is needed (e.g. `vllm serve stabletoolbench/MirrorAPI
--port 12345 --api-key EMPTY --served-model-name simulation-250123-qwen25-mixed`). To use an
upstream wrapper server instead, point the `stb` backend at it.

Per call, as upstream:

- messages: system `SFT_SYSTEM` (verbatim), user `"API doc:\\n{api_doc}\\n\\nRequest:\\n{request}"`, where
  `api_doc` is Python's `str()` of `{api_name, api_description, required_parameters,
  optional_parameters, tool_description, tool_name, tool_category}` from the tool JSON and `request`
  is `str()` of the argument dict (the text the model was trained on, hence `str()` and not JSON);
- `max_tokens 2048`, `seed 42`, temperature 0.1 (upstream config);
- the reply text is parsed as JSON `{error, response}`, else regex-extracted; when neither yields
  anything, `{"error": "Failed to generate fake response", "response": ""}`.

`api_name` in `api_doc` is the tool JSON's name (`main_mirrorapi.py`); `variant="mirrorapi_cache"` uses the
standardized name as `main_mirrorapi_cache.py` does for the MirrorAPI-Cache model.

Fixes over upstream (each behind `upstream_extraction=True` / tolerated silently):
the regex fallback keeps the closing `"}` of the JSON in `response`; we strip it by default. Upstream
compares API names after `change_name`, so `id`/`from`/... APIs never find their doc and the server
crashes; we match them. A missing doc is an observation with status 12, never an exception.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolbench_eval.api_keys import PLACEHOLDER, key_from_env
from toolbench_eval.benchmark.model import Tool
from toolbench_eval.benchmark.naming import change_name, standardize, standardize_category
from toolbench_eval.errors import UserError
from toolbench_eval.tools.base import Observation, Status, ToolBackend, ToolCall
from toolbench_eval.tools.http import (
    DATA_ERROR,
    CircuitBreaker,
    HttpClient,
    HttpFailure,
    RetryPolicy,
    Secret,
    check_on_unavailable,
    redact,
    status_for_error,
    unavailable_or_observation,
)
from toolbench_eval.tools.stb import standardize_arguments

logger = logging.getLogger(__name__)

# Verbatim from StableToolBench `server/system_prompts.py` (SFT_SYSTEM): the prompt MirrorAPI was trained with.
SFT_SYSTEM = """\
Imagine you are an API Server operating within a specialized tool, which contains a collection of distinct APIs. \
Your role is to deeply understand the function of each API based on their descriptions in the API documentation. \
As you receive specific inputs for individual API calls within this tool, analyze these inputs to determine their \
intended purpose. Your task is to craft a JSON formatted response that aligns with the expected output of the API. \
The JSON scheme is:
{
    "error": "",
    "response": ""
}

The error field should remain empty, indicating no errors in processing. The response field should contain the \
content you formulate based on the API's functionality and the input provided. Ensure that your responses are \
meaningful, directly addressing the API's intended functionality.\x20
The key is to maintain the JSON format's integrity while ensuring that your response is an accurate reflection of \
the API's intended output within the tool.
Please note that your answer should not contain anything other than a json format object, which should be parsable \
directly to json.
Note that:
- your response should contain rich information given the api input parameters.
- your response must be effective and have practical content.

API calls may fail for various reasons, such as invalid input parameters, authentication issues, or server errors. \
Your goal is to generate a response that accurately reflects the API's intended functionality, even if the input \
parameters are incorrect. Your response should be informative and relevant to the API's purpose, providing a clear \
and concise explanation of the expected output based on the input provided.
Here is an example:
API doc:
{
    "api_name": "List Languages",
    "api_description": "Get a list of currently supported languages. We are constantly adding more every few weeks.",
    "required_parameters": [],
    "optional_parameters": [],
    "tool_description": "Introducing our cutting-edge text to speech service, designed to provide you with the \
most realistic human-sounding voices at an affordable price. Our service is fast and reliable, delivering \
high-quality audio output in a matter of seconds. Additionally, we offer a wide range of languages and a variety of \
voice choices, so you can find the perfect fit for your project. Whether you need a voiceover for a video, an \
audiobook, or any other project, our text to speech service has you covered. Ex...",
    "tool_name": "TTSKraken",
    "tool_category": "Artificial_Intelligence_Machine_Learning"
}
Request:
    data = {
        "category": "Artificial_Intelligence_Machine_Learning",
        "tool_name": "TTSKraken",
        "api_name": "List Languages",
        "tool_input": "{}",
        "strip": "filter",
        }
Response:
    {
        "error": "",
        "response": "{"status":0,"msg":"Success","languages":["en","fr-fr","pt-br"]}"
    }
"""

USER_PROMPT = "API doc:\n{api_doc}\n\nRequest:\n{request}"

FAILED_RESPONSE = "Failed to generate fake response"
DEFAULT_BASE_URL = "http://127.0.0.1:12345/v1"  # upstream config_mirrorapi.yml
DEFAULT_MODEL = "simulation-250123-qwen25-mixed"  # upstream's default served model name
VARIANTS = ("mirrorapi", "mirrorapi_cache")

_PLAIN_PATTERN = re.compile(r'"error":\s*"([^"]*)",\s*"response":\s*"(.*)', re.DOTALL)
_COT_PATTERN = re.compile(
    r'"mechanism_of_the_api"\s*:\s*"(.*?)",\s*"error"\s*:\s*"(.*?)",\s*"response"\s*:\s*"(.*)', re.DOTALL
)
_TAIL = re.compile(r'"\s*}\s*$')
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")


def build_user_prompt(api_doc: Mapping[str, Any], arguments: Mapping[str, Any]) -> str:
    """The user message: upstream formats both dicts with `str()`, so we do too (`toolbench_key` dropped).

    >>> print(build_user_prompt({"api_name": "Ping"}, {"host": "a.b", "toolbench_key": "x"}))
    API doc:
    {'api_name': 'Ping'}
    <BLANKLINE>
    Request:
    {'host': 'a.b'}
    """
    request = {name: value for name, value in arguments.items() if name != "toolbench_key"}
    return USER_PROMPT.format(api_doc=dict(api_doc), request=request)


def extract_error_response(text: str, *, upstream: bool = False) -> tuple[str, Any] | None:
    """`(error, response)` from a MirrorAPI reply: JSON first, else the upstream regexes; None if nothing.

    >>> extract_error_response('{"error": "", "response": "{\\\\"temp\\\\": 21}"}')
    ('', '{"temp": 21}')
    >>> extract_error_response('{"error": "", "response": "{"temp": 21}"}')  # not JSON: regex fallback
    ('', '{"temp": 21}')
    >>> extract_error_response('{"error": "", "response": "{"temp": 21}"}', upstream=True)
    ('', '{"temp": 21}"}')
    >>> extract_error_response("no json here") is None
    True
    """
    cleaned = _FENCE.sub("", text) if not upstream else text
    try:
        parsed = json.loads(cleaned)
    except (json.JSONDecodeError, TypeError):
        parsed = None
    if isinstance(parsed, dict) and ("error" in parsed or "response" in parsed):
        return parsed.get("error", ""), parsed.get("response", "")
    match = _COT_PATTERN.search(cleaned) if "mechanism_of_the_api" in cleaned else _PLAIN_PATTERN.search(cleaned)
    if match is None:
        return None
    error, response = match.group(match.lastindex - 1), match.group(match.lastindex)
    if not upstream:
        response = _TAIL.sub("", response)
    return error, response


def _parameters_as_json(parameters: Any) -> list[dict[str, Any]]:
    return [
        {"name": p.name, "type": p.type, "description": p.description, "default": p.default} for p in parameters
    ]


class MirrorAPIBackend(ToolBackend):
    """Simulated API responses from a MirrorAPI model on an OpenAI-compatible chat endpoint.

    API docs come from `tools_dir` (a ToolBench `toolenv/tools` folder, read as raw JSON so the prompt is
    byte-identical to upstream's) or, failing that, from `tools` (the loader's `Tool` objects).
    The endpoint key is read from `$MIRROR_API_KEY` or `$OPENAI_API_KEY`; vLLM's `EMPTY` when neither is set.
    """

    name = "mirror"

    def __init__(
        self,
        base_url: str | None = None,
        *,
        model: str = DEFAULT_MODEL,
        tools_dir: str | Path | None = None,
        tools: Mapping[tuple[str, str], Tool] | None = None,
        temperature: float = 0.1,
        max_tokens: int = 2048,
        seed: int = 42,
        variant: str = "mirrorapi",
        upstream_extraction: bool = False,
        upstream_status: bool = False,
        key_envs: tuple[str, ...] = ("MIRROR_API_KEY", "OPENAI_API_KEY"),
        timeout_s: float | None = 120.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_concurrency: int = 16,
        trust_env: bool = True,
        on_unavailable: str = "fail",
        breaker_threshold: int = 5,
        breaker_cooldown_s: float = 30.0,
    ) -> None:
        check_on_unavailable("mirror", on_unavailable)
        self.on_unavailable = on_unavailable
        if variant not in VARIANTS:
            raise UserError(f"mirror backend: variant {variant!r} is not one of {list(VARIANTS)}")
        self.base_url = (base_url or os.environ.get("MIRROR_API_BASE") or DEFAULT_BASE_URL).rstrip("/")
        self.model = model
        self.tools_dir = Path(tools_dir).expanduser() if tools_dir is not None else None
        if self.tools_dir is not None and not self.tools_dir.is_dir():
            raise UserError(
                f"mirror backend: tools_dir {str(self.tools_dir)!r} is not a folder; point it at a ToolBench "
                f"`toolenv/tools` folder (one sub-folder per category)"
            )
        self.tools = dict(tools or {})
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.variant = variant
        self.upstream_extraction = upstream_extraction
        self.upstream_status = upstream_status
        self._key = Secret(key_from_env(*key_envs))
        self._http = HttpClient(
            timeout_s=timeout_s,
            retry=RetryPolicy(max_retries=max_retries, base_delay_s=backoff_s, max_delay_s=max_backoff_s),
            max_concurrency=max_concurrency,
            secrets=(self._key,),
            trust_env=trust_env,
            breaker=CircuitBreaker(threshold=breaker_threshold, cooldown_s=breaker_cooldown_s),
        )
        self._tool_files: dict[Path, dict[str, Any] | None] = {}

    def __repr__(self) -> str:
        return f"MirrorAPIBackend(base_url={self.base_url!r}, model={self.model!r}, variant={self.variant!r})"

    # ---- API documentation -----------------------------------------------------------------------------
    def _read_tool_json(self, path: Path) -> dict[str, Any] | None:
        if path not in self._tool_files:
            try:
                data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                logger.warning("mirror backend: cannot read tool file %s: %s", path, exc)
                data = None
            self._tool_files[path] = data if isinstance(data, dict) else None
        return self._tool_files[path]

    def api_doc(self, call: ToolCall) -> dict[str, Any] | None:
        """The `api_doc` dict of the prompt for `call`, or None when no documentation is found."""
        category = standardize_category(call.category_name)
        tool = standardize(call.tool_name)  # what a client sends (the tool file stem)
        wanted = change_name(standardize(call.api_name))
        doc_api_name = wanted if self.variant == "mirrorapi_cache" else None

        def same_api(name: str) -> bool:
            return change_name(standardize(name)) == wanted

        if self.tools_dir is not None:
            tool_json = self._read_tool_json(self.tools_dir / category / f"{tool}.json")
            for api in (tool_json or {}).get("api_list", []) or []:
                if isinstance(api, dict) and same_api(str(api.get("name", ""))):
                    return {
                        "api_name": doc_api_name or api.get("name"),
                        "api_description": api.get("description", ""),
                        "required_parameters": api.get("required_parameters", []),
                        "optional_parameters": api.get("optional_parameters", []),
                        "tool_description": tool_json.get("tool_description", ""),
                        "tool_name": tool,
                        "tool_category": category,
                    }
        for (tool_category, standard_name), tool_doc in self.tools.items():
            names = (standard_name, tool_doc.standardized_name, standardize(tool_doc.tool_name))
            if tool not in names or standardize_category(tool_category) != category:
                continue
            for api in tool_doc.apis:
                if same_api(api.api_name):
                    return {
                        "api_name": doc_api_name or api.api_name,
                        "api_description": api.api_description,
                        "required_parameters": _parameters_as_json(api.required_parameters),
                        "optional_parameters": _parameters_as_json(api.optional_parameters),
                        "tool_description": tool_doc.tool_description,
                        "tool_name": tool,
                        "tool_category": category,
                    }
        return None

    # ---- calls -----------------------------------------------------------------------------------------
    def messages(self, call: ToolCall, api_doc: Mapping[str, Any]) -> list[dict[str, str]]:
        arguments = standardize_arguments(call.arguments)
        return [
            {"role": "system", "content": SFT_SYSTEM},
            {"role": "user", "content": build_user_prompt(api_doc, arguments)},
        ]

    async def call(self, call: ToolCall) -> Observation:
        if change_name(standardize(call.api_name)) == "chat_with_user":  # as the upstream server
            return Observation(error="", response="Chat with user.")
        api_doc = self.api_doc(call)
        if api_doc is None:
            where = f"tools_dir {self.tools_dir}" if self.tools_dir is not None else "the given tools"
            return Observation(
                error=(f"{DATA_ERROR}. mirror backend: no documentation for API {call.api_name!r} of tool "
                       f"{call.tool_name!r} ({call.category_name}) in {where}"),
                response="",
                status=Status.REQUEST_ERROR,
            )
        payload = {
            "model": self.model,
            "messages": self.messages(call, api_doc),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        headers = {"Authorization": f"Bearer {self._key.reveal() or PLACEHOLDER}"}
        try:
            reply = await self._http.post_json(f"{self.base_url}/chat/completions", payload, headers=headers)
        except HttpFailure as failure:
            logger.info("mirror %s/%s: %s", call.tool_name, call.api_name, failure.error)
            return unavailable_or_observation(self, failure, (self._key,))
        try:
            content = reply.body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            return Observation(error=DATA_ERROR, response="", status=Status.REQUEST_ERROR)
        content = redact(content, (self._key,))
        extracted = extract_error_response(content, upstream=self.upstream_extraction)
        error, response = extracted if extracted is not None else (None, None)
        if not (error or response):
            return Observation(error=FAILED_RESPONSE, response="",
                               status=status_for_error(FAILED_RESPONSE, upstream=self.upstream_status))
        error = error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)
        return Observation(error=error, response=response,
                           status=status_for_error(error, upstream=self.upstream_status))

    async def close(self) -> None:
        await self._http.close()
