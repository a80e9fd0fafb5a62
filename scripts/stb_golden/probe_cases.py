"""Inputs for parser_cases.json and observations.json (see probe_env.py)."""

from __future__ import annotations

import json

PARSER_QUERY = {"group": "G1_instruction", "query_id": 588}  # TheClique: 10 functions, shared suffixes
OBSERVATION_QUERY = {"group": "G1_instruction", "query_id": 1073}
PROBE_QUERIES = [PARSER_QUERY, OBSERVATION_QUERY]


def _ok(response):
    return {"error": "", "response": response}


def _entry(api, arguments, reply):
    return {"category": "Data", "tool_name": "TheClique", "api_name": api, "arguments": arguments, "reply": reply}


CACHE = [
    # '{"name": "messi"}' and the Transfermarkt details call are cached by the react_long_unicode scenario
    _entry("Transfermarkt search", '{"name": "Lionel Andrés Messi"}',
           _ok({"players": [{"id": "28003", "name": "Lionel Andrés Messi", "alias": "梅西"}]})),
    _entry("Transfermarkt search", '{"name": {"first": "Lionel", "last": "Messi"}, "filters": [1, 2.5, true, null]}',
           _ok("nested arguments accepted")),
    _entry("Transfermarkt search", '{}', _ok("empty arguments: no search term")),
    _entry("Songkick concert", '{}', _ok({"concert": None})),
    _entry("Songkick concert", '{"id_conc": "40698227"}', _ok({"concert": "Coldplay, Wembley"})),
]

SEARCH = "transfermarkt_search_for_theclique"
ARGS = '{"name": "messi"}'


def c(name, raw, note):
    return {"name": name, "raw": raw, "note": note}


PARSER_CASES = [
    c("canonical", f"Thought: I will search Transfermarkt.\nAction: {SEARCH}\nAction Input: {ARGS}",
      "the trained layout"),
    c("multiline_json", f'Thought: search\nAction: {SEARCH}\nAction Input: {{\n  "name": "messi"\n}}',
      "arguments pretty-printed over several lines"),
    c("leading_newline_layout", f"\nThought: search\nAction: {SEARCH}\nAction Input: {ARGS}",
      "the training target starts with a newline"),
    c("missing_action_input", f"Thought: search\nAction: {SEARCH}",
      "no '\\nAction Input: ': find() is -1, so the action slice drops its last character"),
    c("missing_action_input_with_newline", f"Thought: search\nAction: {SEARCH}\n",
      "trailing newline is stripped before parsing (HF); vLLM keeps it"),
    c("action_input_no_space", f"Thought: search\nAction: {SEARCH}\nAction Input:{ARGS}",
      "'Action Input:' without the space after the colon"),
    c("action_input_newline_before_json", f"Thought: search\nAction: {SEARCH}\nAction Input:\n{ARGS}",
      "'Action Input:' then a newline"),
    c("action_input_trailing_newline_spaces", f"Thought: search\nAction: {SEARCH}\nAction Input: {ARGS}\n   \n",
      "trailing whitespace after the JSON"),
    c("action_input_spaces_before_json", f"Thought: search\nAction: {SEARCH}\nAction Input:    {ARGS}",
      "extra spaces after the marker"),
    c("text_after_json", f"Thought: search\nAction: {SEARCH}\nAction Input: {ARGS}\nObservation: I expect a list.",
      "everything after 'Action Input: ' is the arguments"),
    c("end_action_after_json", f"Thought: search\nAction: {SEARCH}\nAction Input: {ARGS}\nEnd Action",
      "the Davinci-style terminator"),
    c("backticked_name", f"Thought: search\nAction: `{SEARCH}`\nAction Input: {ARGS}", "name in backticks"),
    c("quoted_name", f'Thought: search\nAction: "{SEARCH}"\nAction Input: {ARGS}', "name in double quotes"),
    c("name_trailing_space", f"Thought: search\nAction: {SEARCH}  \nAction Input: {ARGS}",
      "spaces after the name are kept"),
    c("name_different_case", f"Thought: search\nAction: Transfermarkt_Search_For_TheClique\nAction Input: {ARGS}",
      "matching is case-sensitive"),
    c("suffix_only_name", f"Thought: search\nAction: search_for_theclique\nAction Input: {ARGS}",
      "endswith() matching: first function ending with the name"),
    c("suffix_shared_by_two", "Thought: details\nAction: details_for_theclique\nAction Input: "
      '{"type_s": "spieler", "other": "profil", "id_talent": "28003", "part_slug": "lionel-messi"}',
      "transfermarkt_details and tunefind_for_details both end with it; the first in the list wins"),
    c("tool_name_only", f"Thought: search\nAction: theclique\nAction Input: {ARGS}",
      "the tool name is a suffix of every function: the first function is called"),
    c("api_name_without_tool", f"Thought: search\nAction: transfermarkt_search\nAction Input: {ARGS}",
      "the API name without '_for_<tool>' is not a suffix: no such function"),
    c("one_letter_suffix", f"Thought: search\nAction: e\nAction Input: {ARGS}",
      "any suffix works: 'e' ends songkick_concert_for_theclique"),
    c("suffix_of_finish", "Thought: done\nAction: ish\nAction Input: {\"return_type\": \"give_answer\", "
      "\"final_answer\": \"x\"}", "only 'Finish' ends with 'ish'; api_name_reflect has no 'Finish' key"),
    c("empty_output", "", "nothing generated"),
    c("whitespace_output", "  \n\t \n", "only whitespace"),
    c("no_markers", "I think Messi played for Barcelona.", "free text"),
    c("no_thought_marker", f"Action: {SEARCH}\nAction Input: {ARGS}", "no 'Thought: ' and no '\\nAction: '"),
    c("thought_without_space", f"Thought:search\nAction: {SEARCH}\nAction Input: {ARGS}", "'Thought:' only"),
    c("action_without_space", f"Thought: search\nAction:{SEARCH}\nAction Input: {ARGS}",
      "'Action:' without the space: find('Action: ') hits 'Action Input: '"),
    c("extra_thought_lines", f"Thought: first idea\nThought: second idea\nAction: {SEARCH}\nAction Input: {ARGS}",
      "two Thought lines"),
    c("two_actions", f"Thought: a\nAction: songkick_concert_for_theclique\nAction Input: {{\"id_conc\": \"40698227\"}}"
      f"\nThought: b\nAction: {SEARCH}\nAction Input: {ARGS}", "only the first Action counts; the input runs on"),
    c("crlf_line_endings", f"Thought: search\r\nAction: {SEARCH}\r\nAction Input: {ARGS}\r\n",
      "Windows line endings"),
    c("stop_string_at_end", f"Thought: search\nAction: {SEARCH}\nAction Input: {ARGS}</s>",
      "'</s>' as text: generate_stream cuts at its last occurrence"),
    c("stop_string_inside_thought", f"Thought: search</s>\nAction: {SEARCH}\nAction Input: {ARGS}",
      "'</s>' early: everything after it is cut (HF); vLLM would have stopped there too"),
    c("stop_string_twice", f"Thought: a</s>\nAction: {SEARCH}\nAction Input: {ARGS}</s>trailing",
      "rfind: cut at the LAST '</s>'"),
    c("unicode_arguments", f"Thought: recherche de « Messi » ⚽\nAction: {SEARCH}\nAction Input: "
      '{"name": "Lionel Andrés Messi"}', "non-ASCII thought and arguments"),
    c("unicode_escaped_arguments", f"Thought: search\nAction: {SEARCH}\nAction Input: "
      '{"name": "Lionel Andr\\u00e9s Messi"}', "the same arguments with a JSON escape"),
    c("nested_json_arguments", f"Thought: search\nAction: {SEARCH}\nAction Input: "
      '{"name": {"first": "Lionel", "last": "Messi"}, "filters": [1, 2.5, true, null]}',
      "nested objects, numbers, true/null: the cache key is str() of the parsed dict"),
    c("empty_object_arguments", f"Thought: search\nAction: {SEARCH}\nAction Input: {{}}", "{}"),
    c("empty_arguments", f"Thought: search\nAction: {SEARCH}\nAction Input: ", "nothing after the marker"),
    c("array_arguments", f"Thought: search\nAction: {SEARCH}\nAction Input: [\"messi\"]", "a JSON array"),
    c("null_arguments", f"Thought: search\nAction: {SEARCH}\nAction Input: null", "JSON null"),
    c("string_arguments", f"Thought: search\nAction: {SEARCH}\nAction Input: \"messi\"", "a JSON string"),
    c("python_dict_arguments", f"Thought: search\nAction: {SEARCH}\nAction Input: {{'name': 'messi'}}",
      "single quotes: not JSON"),
    c("unquoted_keys_arguments", f"Thought: search\nAction: {SEARCH}\nAction Input: {{name: messi}}",
      "not JSON"),
    c("hallucinated_name", f"Thought: search\nAction: search_player_for_transfermarkt\nAction Input: {ARGS}",
      "no function ends with it"),
    c("finish_give_answer", 'Thought: done\nAction: Finish\nAction Input: {"return_type": "give_answer", '
      '"final_answer": "Messi played for Barcelona, PSG and Inter Miami."}', "code 3"),
    c("finish_give_up", 'Thought: stuck\nAction: Finish\nAction Input: {"return_type": "give_up_and_restart"}',
      "code 4"),
    c("finish_bad_return_type", 'Thought: done\nAction: Finish\nAction Input: {"return_type": "give_answer_now", '
      '"final_answer": "x"}', "valid JSON, unknown return_type"),
    c("finish_missing_return_type", 'Thought: done\nAction: Finish\nAction Input: {"final_answer": "x"}',
      "no return_type"),
    c("finish_missing_final_answer", 'Thought: done\nAction: Finish\nAction Input: {"return_type": "give_answer"}',
      "give_answer without final_answer"),
    c("finish_invalid_json_fallback", 'Thought: done\nAction: Finish\nAction Input: {"return_type": "give_answer", '
      '"final_answer": "Messi: "the GOAT""}', "broken JSON: the string-search fallback finds both fields"),
    c("finish_invalid_json_other_type", 'Thought: done\nAction: Finish\nAction Input: {"return_type": "maybe", '
      '"final_answer": x}', "broken JSON, unknown type: sliced up to the first '\",'"),
    c("finish_single_quotes", "Thought: done\nAction: Finish\nAction Input: {'return_type': 'give_answer', "
      "'final_answer': 'x'}", "Python dict: no fallback match"),
    c("finish_no_space_after_colon", 'Thought: done\nAction: Finish\nAction Input: {"return_type":"give_answer",'
      '"final_answer":"x"}', "valid JSON without spaces"),
    c("finish_raw_newline_in_string", 'Thought: done\nAction: Finish\nAction Input: {"return_type": "give_answer", '
      '"final_answer": "line one\nline two"}', "json.loads(strict=False) accepts the control character"),
    c("finish_unicode_answer", 'Thought: fini\nAction: Finish\nAction Input: {"return_type": "give_answer", '
      '"final_answer": "Lionel Andrés Messi — 梅西 ⚽"}', "non-ASCII answer"),
    c("finish_text_after_json", 'Thought: done\nAction: Finish\nAction Input: {"return_type": "give_answer", '
      '"final_answer": "x"}\nI hope this helps.', "trailing text breaks json.loads; fallback takes the rest"),
    c("finish_lowercase", 'Thought: done\nAction: finish\nAction Input: {"return_type": "give_answer", '
      '"final_answer": "x"}', "'finish' is not 'Finish' and no function ends with it"),
    c("finish_trailing_space", 'Thought: done\nAction: Finish \nAction Input: {"return_type": "give_answer", '
      '"final_answer": "x"}', "'Finish ' is not 'Finish'"),
    c("finish_return_type_not_string", 'Thought: done\nAction: Finish\nAction Input: {"return_type": 1}',
      "return_type of another type"),
    c("finish_arguments_list", 'Thought: done\nAction: Finish\nAction Input: ["give_answer"]',
      "valid JSON that is not an object"),
]

# canned server replies for observations.json: (name, note, status, body text or bytes, extra)
LONG_OK = "x" * 995  # json.dumps({"error": "", "response": s}) is 29 + len(s) characters


def _j(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


OBSERVATION_CASES = [
    ("dict_response", "the usual shape", 200, _j({"error": "", "response": {"a": 1, "b": [1, 2]}})),
    ("string_response", "a string response", 200, _j({"error": "", "response": "plain text"})),
    ("list_response", "a list response", 200, _j({"error": "", "response": [{"name": "x", "score": 0.5}]})),
    ("empty_string_response", "", 200, _j({"error": "", "response": ""})),
    ("null_response", "", 200, _j({"error": "", "response": None})),
    ("bool_number_response", "JSON true and a number", 200, '{"error": "", "response": [true, false, 0, -1, 3.0]}'),
    ("float_forms", "floats as Python re-serialises them", 200,
     '{"error": "", "response": [1e-7, 1E20, 2.50, -0.0, 12345678901234567890, 1.0000000000000001]}'),
    ("nan_infinity", "non-standard JSON tokens Python accepts", 200,
     '{"error": "", "response": [NaN, Infinity, -Infinity]}'),
    ("nested_deep", "nesting", 200, _j({"error": "", "response": {"a": {"b": {"c": {"d": [{"e": None}]}}}}})),
    ("key_order", "keys in reply order, 'response' first", 200, '{"response": {"z": 1, "a": 2}, "error": ""}'),
    ("extra_keys", "keys besides error/response are kept", 200,
     _j({"error": "", "response": "x", "status": 200, "cached": True})),
    ("missing_response_key", "no 'response'", 200, _j({"error": ""})),
    ("missing_error_key", "no 'error': response['error'] raises", 200, _j({"response": "x"})),
    ("unicode_raw_utf8", "raw UTF-8 in the reply; json.dumps escapes it", 200,
     _j({"error": "", "response": "Lionel Andrés Messi — 梅西 😀"})),
    ("unicode_escaped", "\\u escapes in the reply", 200,
     '{"error": "", "response": "Andr\\u00e9s \\u6885\\u897f \\ud83d\\ude00"}'),
    ("lone_surrogate", "an unpaired surrogate escape", 200, '{"error": "", "response": "bad \\ud800 end"}'),
    ("control_characters", "newline, tab, NUL, quote and backslash", 200,
     _j({"error": "", "response": "line1\nline2\ttab \u0000 nul \"q\" back\\slash"})),
    ("python_repr_string", "a string holding a Python repr", 200,
     _j({"error": "", "response": "{'name': 'x', 'ok': True, 'v': None}"})),
    ("json_text_string", "a string holding JSON text", 200, _j({"error": "", "response": "{\"a\": 1}"})),
    ("html_string", "HTML", 200, _j({"error": "", "response": "<html><body><h1>502 Bad Gateway</h1></body></html>"})),
    ("stop_string_in_response", "'</s>' inside an observation", 200, _j({"error": "", "response": "a</s>b"})),
    ("exactly_1024", "observation of exactly 1,024 characters: not cut", 200, _j({"error": "", "response": LONG_OK})),
    ("exactly_1025", "1,025 characters: cut to 1,024 + '...'", 200, _j({"error": "", "response": LONG_OK + "y"})),
    ("long_5000", "long reply", 200, _j({"error": "", "response": "0123456789" * 500})),
    ("long_unicode_cut_in_escape", "non-ASCII counted after escaping; the cut can split an escape", 200,
     _j({"error": "", "response": "a" * 994 + "é" * 10})),
    ("error_api_not_working", "code 6", 200, _j({"error": "API not working error...", "response": ""})),
    ("error_unauthorized", "code 7 (the docstring says 8)", 200, _j({"error": "Unauthorized error...", "response": ""})),
    ("error_unsubscribed", "code 8 (the docstring says 7)", 200, _j({"error": "Unsubscribed error...", "response": ""})),
    ("error_too_many_requests", "code 9", 200, _j({"error": "Too many requests error...", "response": ""})),
    ("error_rate_limit_per_minute", "code 10, after time.sleep(10)", 200,
     _j({"error": "Rate limit per minute error...", "response": ""})),
    ("error_message", "code 11", 200, _j({"error": "Message error...", "response": "details"})),
    ("error_api_not_working_suffix", "exact match only: a suffix makes it code 0", 200,
     _j({"error": "API not working error...\nHTTP 404", "response": ""})),
    ("error_rate_limit_other_wording", "'Rate limit error...' is not mapped", 200,
     _j({"error": "Rate limit error...", "response": ""})),
    ("error_timeout_from_server", "a server-side timeout string is code 0", 200,
     _j({"error": "Timeout error...", "response": ""})),
    ("error_tool_input_parse", "upstream server's parse error", 200,
     _j({"error": "Tool input parse error...\n", "response": ""})),
    ("error_failed_fake_response", "upstream server's simulation failure", 200,
     _j({"error": "Failed to generate fake response", "response": ""})),
    ("error_function_executing", "a ToolBench executor error", 200,
     _j({"error": "Function executing from my_tools.Data.keyword_analysis.api import popularsitesforquery "
                  "error...\npopularsitesforquery() got an unexpected keyword argument 'x'", "response": ""})),
    ("error_null", "error null", 200, _j({"error": None, "response": "x"})),
    ("error_dict", "error as an object", 200, _j({"error": {"code": 500}, "response": ""})),
    ("body_json_list", "200 with a JSON array", 200, "[1, 2]"),
    ("body_json_string", "200 with a JSON string", 200, '"ok"'),
    ("body_json_null", "200 with JSON null", 200, "null"),
    ("body_not_json", "200 with text", 200, "Internal error, please retry"),
    ("body_empty", "200 with no body", 200, ""),
    ("http_201", "any status but 200 is code 12", 201, _j({"error": "", "response": "created"})),
    ("http_401", "", 401, _j({"detail": "Unauthorized"})),
    ("http_404", "", 404, _j({"detail": "Not Found"})),
    ("http_422", "FastAPI validation error", 422, _j({"detail": [{"loc": ["body", "strip"], "msg": "field required"}]})),
    ("http_429", "", 429, _j({"error": "Too many requests"})),
    ("http_500", "what upstream's server answers when a cache miss cannot be simulated", 500, "Internal Server Error"),
    ("http_502", "", 502, "<html>502 Bad Gateway</html>"),
    ("http_503", "", 503, ""),
]
