"""The golden scenarios: which query, entry point, arguments and scripted model replies each one runs.

A ToolLLaMA reply is the raw text the model generates (upstream strips it and cuts at the last "</s>"). A
function-calling reply (backbone chatgpt_function, scenarios `fc_*`) is the assistant message the chat server
returns (`fc_message`: role, content (None = JSON null), tool_calls). Each scenario also declares the cache
entries its calls hit; calls not in the cache go through upstream's miss path.
"""

from __future__ import annotations

import json

MULTI = "toolbench/inference/qa_pipeline_multithread.py"
SINGLE = "toolbench/inference/qa_pipeline.py"


def call(thought: str, name: str, arguments: str) -> str:
    return f"Thought: {thought}\nAction: {name}\nAction Input: {arguments}"


def answer(thought: str, final: str) -> str:
    args = json.dumps({"return_type": "give_answer", "final_answer": final}, ensure_ascii=False)
    return call(thought, "Finish", args)


def give_up(thought: str) -> str:
    return call(thought, "Finish", '{"return_type": "give_up_and_restart"}')


def fc_call(call_id: str, name: str, arguments: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def fc_message(content, *calls: dict) -> dict:
    """An assistant message as the chat server returns it; no tool_calls key when there are no calls."""
    message = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = list(calls)
    return message


def fc_answer(call_id: str, final: str) -> dict:
    args = json.dumps({"return_type": "give_answer", "final_answer": final}, ensure_ascii=False)
    return fc_call(call_id, "Finish", args)


def fc_give_up(call_id: str) -> dict:
    return fc_call(call_id, "Finish", '{"return_type": "give_up_and_restart"}')


def ok(response) -> dict:
    return {"error": "", "response": response}


def entry(category, tool, api, arguments, reply):
    return {"category": category, "tool_name": tool, "api_name": api, "arguments": arguments, "reply": reply}


# -- long, non-ASCII Transfermarkt reply (more than 1,024 characters once json.dumps escapes it) -------------
MESSI_SEARCH = ok({
    "players": [
        {"id": "28003", "name": "Lionel Andrés Messi Cuccittini", "club": "Inter Miami CF",
         "nationality": "Argentina 🇦🇷", "position": "Rechtsaußen (right winger)", "market_value": "€25.00m",
         "former_clubs": ["FC Barcelona", "Paris Saint-Germain", "Newell’s Old Boys (youth)"],
         "nicknames": ["La Pulga", "梅西", "Лео"]},
        {"id": "520637", "name": "Thiago Messi", "club": "Club Atlético Güemes", "position": "Stürmer",
         "market_value": "€150k", "former_clubs": ["São Paulo FC (loan)", "CA Independiente"]},
        {"id": "880201", "name": "Mateo Messi", "club": "Newell’s Old Boys U19", "position": "Mittelfeld",
         "market_value": "—", "former_clubs": []},
    ],
    "managers": [{"id": "1420", "name": "Gerardo “Tata” Martino", "clubs": ["FC Barcelona", "Inter Miami CF"]},
                 {"id": "7521", "name": "Lionel Scaloni", "clubs": ["Argentina (Selección)"]}],
    "note": "Search results for “messi” — 3 players, 2 managers, 0 clubs. Ünïcödé ✓ " + "· " * 40,
})

MESSI_DETAILS = ok({
    "profile": {"full_name": "Lionel Andrés Messi Cuccittini", "born": "1987-06-24", "place": "Rosario, Santa Fe",
                "height_m": 1.7, "foot": "left", "caps": 180, "goals": 106, "retired": False, "agent": None},
    "career": [{"season": "2004/05", "club": "FC Barcelona", "apps": 9, "goals": 1},
               {"season": "2021/22", "club": "Paris Saint-Germain", "apps": 34, "goals": 11},
               {"season": "2023", "club": "Inter Miami CF", "apps": 14, "goals": 11}],
    "honours": {"Ballon d’Or": 8, "World Cup": [2022], "Copa América": [2021, 2024]},
})

SCENARIOS = [
    {
        "name": "react_answered",
        "description": "ReAct (CoT@1) answers after two cached tool calls.",
        "group": "G1_instruction", "query_id": 1073, "method": "CoT@1", "backbone": "toolllama", "entry": MULTI,
        "replies": [
            call('I need the popular sites for the query "birthday party ideas" first.',
                 "popularsitesforquery_for_keyword_analysis", '{\n  "q": "birthday party ideas"\n}'),
            call("Now I need the main keywords for the same query.",
                 "querykeywords_for_keyword_analysis", '{"q": "birthday party ideas"}'),
            answer("I have the popular sites and the keywords, so I can answer.",
                   'Popular sites for "birthday party ideas": pinterest.com, thespruce.com and parents.com. '
                   "Main keywords: birthday party, party ideas, surprise party."),
        ],
        "cache": [
            entry("Data", "Keyword Analysis", "PopularSitesForQuery", '{"q": "birthday party ideas"}',
                  ok([{"name": "pinterest.com", "score": 0.92}, {"name": "thespruce.com", "score": 0.81},
                      {"name": "parents.com", "score": 0.77}])),
            entry("Data", "Keyword Analysis", "QueryKeywords", '{"q": "birthday party ideas"}',
                  ok({"keywords": ["birthday party", "party ideas", "surprise party"], "count": 3})),
        ],
    },
    {
        "name": "react_give_up",
        "description": "ReAct makes one call, then Finish(give_up_and_restart): code 4, the chain is pruned.",
        "group": "G2_instruction", "query_id": 4746, "method": "CoT@1", "backbone": "toolllama", "entry": MULTI,
        "replies": [
            call("I will fetch the NAV of fund STU321 first.", "fundid_for_mutual_fund_nav", '{"is_id": "STU321"}'),
            give_up("The fund API does not know this ID, so I cannot finish the task. I give up and restart."),
        ],
        "cache": [
            entry("Financial", "Mutual fund Nav", "fundID", '{"is_id": "STU321"}',
                  ok("{'message': 'No fund found with ID STU321'}")),
        ],
    },
    {
        "name": "react_step_limit",
        "description": "ReAct never calls Finish; with the multithread default --single_chain_max_step 50 the "
                       "chain is pruned after the 17th call (depth 51 >= 50).",
        "group": "G1_instruction", "query_id": 608, "method": "CoT@1", "backbone": "toolllama", "entry": MULTI,
        "replies": "kick_17",
    },
    {
        "name": "react_step_limit_12",
        "description": "The same replies through qa_pipeline.py, whose rapidapi.py hard-codes "
                       "single_chain_max_step=12: pruned after the 4th call (depth 12).",
        "group": "G1_instruction", "query_id": 608, "method": "CoT@1", "backbone": "toolllama", "entry": SINGLE,
        "replies": "kick_17",
    },
    {
        "name": "react_errors",
        "description": "ReAct: a hallucinated function name (code 1), unparseable arguments (server parse error, "
                       "code 0), a cache miss (server 500 after the real API and GPT simulation fail, code 12), "
                       "a suffix-only name that matches a real function, then an answer.",
        "group": "G2_instruction", "query_id": 5744, "method": "CoT@1", "backbone": "toolllama", "entry": MULTI,
        "replies": [
            call("I will get the product details for B08N5WG761.", "get_a_product_details_for_amazon_scraper",
                 '{"productid": "B08N5WG761"}'),
            call("That name was wrong; I will use the Amazon Scrapper v4 function.",
                 "get_a_product_details_for_amazon_scrapper_v4", "{productid: B08N5WG761}"),
            call("Let me search for the latest gadgets instead.", "get_search_results_for_amazon_scrapper_v4",
                 '{"searchquery": "latest gadgets 2023"}'),
            call("I will try the product details once more.", "product_details_for_amazon_scrapper_v4",
                 '{"productid": "B08N5WG761"}'),
            answer("I have the product details.",
                   "Product B08N5WG761 is the Fire TV Stick 4K (Amazon), priced at $49.99 with 4.7 stars."),
        ],
        "cache": [
            entry("eCommerce", "Amazon Scrapper_v4", "GET a product details", '{"productid": "B08N5WG761"}',
                  ok({"name": "Fire TV Stick 4K", "brand": "Amazon", "price": "$49.99", "stars": 4.7})),
            entry("eCommerce", "Amazon Scrapper_v4", "GET search results", '{"searchquery": "macbook air"}',
                  ok({"results": [{"name": "MacBook Air M2", "price": "$1,099"}]})),
        ],
    },
    {
        "name": "react_long_unicode",
        "description": "ReAct: a cached reply longer than 1,024 characters after json.dumps (truncated, \\u "
                       "escapes), a suffix name ('details_for_theclique' -> the first function ending with it), "
                       "and a non-ASCII answer.",
        "group": "G1_instruction", "query_id": 588, "method": "CoT@1", "backbone": "toolllama", "entry": MULTI,
        "replies": [
            call("Je cherche d’abord Messi sur Transfermarkt.", "transfermarkt_search_for_theclique",
                 '{"name": "messi"}'),
            call("Now the player details for id 28003.", "details_for_theclique",
                 '{"type_s": "spieler", "other": "profil", "id_talent": "28003", "part_slug": "lionel-messi"}'),
            answer("I know his clubs and managers.",
                   "Lionel Andrés Messi (梅西) played for FC Barcelona, Paris Saint-Germain and Inter Miami CF; "
                   "managers include Gerardo “Tata” Martino and Lionel Scaloni. ⚽"),
        ],
        "cache": [
            entry("Data", "TheClique", "Transfermarkt search", '{"name": "messi"}', MESSI_SEARCH),
            entry("Data", "TheClique", "Transfermarkt details",
                  '{"type_s": "spieler", "other": "profil", "id_talent": "28003", "part_slug": "lionel-messi"}',
                  MESSI_DETAILS),
        ],
    },
    {
        "name": "dfs_answered",
        "description": "DFSDT (DFS_woFilter_w2) answers on its first branch (an API with only optional "
                       "parameters, which upstream drops from the schema, called with {}).",
        "group": "G1_instruction", "query_id": 1572, "method": "DFS_woFilter_w2", "backbone": "toolllama",
        "entry": MULTI,
        "replies": [
            call("I will get the media sources statistics.", "media_sources_statistics_for_public_url_share", "{}"),
            answer("I have the statistics.", "There are 1,204 tracked media sources; the most cited is Reuters."),
        ],
        "cache": [
            entry("Media", "public-url-share", "Media sources statistics", "{}",
                  ok({"sources": 1204, "top": [{"name": "Reuters", "citations": 5321}]})),
        ],
    },
    {
        "name": "dfs_backtrack",
        "description": "DFSDT: two calls, then give_up at depth 9; the give-up backs off two levels, the first "
                       "call's node expands a second child with the diversity prompt (with 'again, your former "
                       "observation'), which then answers.",
        "group": "G1_instruction", "query_id": 1856, "method": "DFS_woFilter_w2", "backbone": "toolllama",
        "entry": MULTI,
        "replies": [
            call("First the best goal prediction.", "best_bestgoal_for_morpheus_predictions", "{}"),
            call("Now the best sign 2 prediction.", "best_sign_2_for_morpheus_predictions", "{}"),
            give_up("The sign 2 endpoint returned nothing useful. I give up and restart."),
            call("This time I try the best sign 1 prediction.", "best_sign_1_for_morpheus_predictions", "{}"),
            answer("I have enough predictions.",
                   "Best goal: Arsenal vs Chelsea (over 2.5). Best sign 1: Bayern Munich to win at 1.45."),
        ],
        "cache": [
            entry("Sports", "Morpheus Predictions ", "Best BestGoal", "{}",
                  ok([{"match": "Arsenal vs Chelsea", "tip": "over 2.5", "odd": 1.62}])),
            entry("Sports", "Morpheus Predictions ", "Best Sign 2", "{}", ok([])),
            entry("Sports", "Morpheus Predictions ", "Best Sign 1", "{}",
                  ok([{"match": "Bayern Munich vs Mainz", "tip": "1", "odd": 1.45}])),
        ],
    },
    {
        "name": "dfs_budget",
        "description": "DFSDT with --max_query_count 6: a give-up at depth 9, a diversity re-expansion, and "
                       "the 6th model call hits the budget (its reply is generated, then dropped). No answer, "
                       "so the give-up node is written (finish_type give_up). Also a 64-character cut name.",
        "group": "G2_instruction", "query_id": 9834, "method": "DFS_woFilter_w2", "backbone": "toolllama",
        "entry": MULTI, "extra_args": ["--max_query_count", "6"],
        "replies": [
            call("First, exercises for the biceps.", "v1_exercises_for_exercises_by_api_ninjas",
                 '{"muscle": "biceps"}'),
            call("Now my BMI in metric units.", "gives_the_bmi_when_you_input_values_in_metric_units_for_bmi_v2",
                 '{"heightincm": 180, "weightinkg": 75}'),
            give_up("The BMI service is failing. I give up and restart."),
            call("Try the BMI in feet and inches instead.",
                 "t_height_in_feet_and_inches_input_weight_in_kilograms_for_bmi_v2",
                 '{"weightinkg": 75, "heightfeet": 5, "heightinches": 11}'),
            call("Now the weight category for BMI 23.1.", "gives_the_weight_catergory_based_on_the_bmi_for_bmi_v2",
                 '{"bmienter": 23.1}'),
            call("And exercises for the chest.", "v1_exercises_for_exercises_by_api_ninjas", '{"muscle": "chest"}'),
        ],
        "cache": [
            entry("Health_and_Fitness", "Exercises by API-Ninjas", "/v1/exercises", '{"muscle": "biceps"}',
                  ok([{"name": "Incline Hammer Curls", "muscle": "biceps", "difficulty": "beginner"}])),
            entry("Health_and_Fitness", "BMI_v2", "Gives the BMI when you Input values in Metric units",
                  '{"heightincm": 180, "weightinkg": 75}', ok({"bmi": 23.15})),
            entry("Health_and_Fitness", "BMI_v2",
                  "Gives the BMI when you input height in feet and inches & input weight in kilograms",
                  '{"weightinkg": 75, "heightfeet": 5, "heightinches": 11}', ok({"bmi": 23.1})),
            entry("Health_and_Fitness", "BMI_v2", "Gives the weight catergory based on the BMI",
                  '{"bmienter": 23.1}', ok({"category": "Normal weight"})),
        ],
    },
    {
        "name": "dfs_exhaust_tree",
        "description": "DFSDT through qa_pipeline.py (single_chain_max_step=12): no reply ever calls Finish, so "
                       "every node at depth 0, 3, 6, 9 expands 2 children and every leaf at depth 12 is pruned: "
                       "30 model calls, no answer.",
        "group": "G2_instruction", "query_id": 7257, "method": "DFS_woFilter_w2", "backbone": "toolllama",
        "entry": SINGLE,
        "replies": "email_30",
    },
    {
        "name": "react_answered_vllm",
        "description": "react_answered with --backbone_model toolllama_vllm (ToolLLaMA_vllm: completion request "
                       "settings, no .strip(), ids without 'call_').",
        "group": "G1_instruction", "query_id": 1073, "method": "CoT@1", "backbone": "toolllama_vllm",
        "entry": MULTI, "replies": "same_as:react_answered",
    },
    {
        "name": "dfs_backtrack_vllm",
        "description": "dfs_backtrack with --backbone_model toolllama_vllm.",
        "group": "G1_instruction", "query_id": 1856, "method": "DFS_woFilter_w2", "backbone": "toolllama_vllm",
        "entry": MULTI, "replies": "same_as:dfs_backtrack",
    },
    # -- function calling: upstream's ChatGPTFunction + the real openai SDK against services.ScriptedChat -----
    {
        "name": "fc_react_answered",
        "description": "react_answered with --backbone_model chatgpt_function: one call, then two parallel calls "
                       "in one message (content null), then Finish(give_answer).",
        "group": "G1_instruction", "query_id": 1073, "method": "CoT@1", "backbone": "chatgpt_function",
        "entry": MULTI, "cache": "same_as:react_answered",
        "replies": [
            fc_message("I need the popular sites first.",
                       fc_call("call_fc1a", "popularsitesforquery_for_keyword_analysis",
                               '{"q": "birthday party ideas"}')),
            fc_message(None,
                       fc_call("call_fc2a", "querykeywords_for_keyword_analysis", '{"q": "birthday party ideas"}'),
                       fc_call("call_fc2b", "popularsitesforquery_for_keyword_analysis",
                               '{"q": "birthday party ideas"}')),
            fc_message("I can answer now.",
                       fc_answer("call_fc3a", 'Popular sites for "birthday party ideas": pinterest.com, '
                                 "thespruce.com and parents.com. Main keywords: birthday party, party ideas, "
                                 "surprise party.")),
        ],
    },
    {
        "name": "fc_react_errors",
        "description": "ReAct with chatgpt_function: a hallucinated function name (code 1, renamed "
                       "invalid_hallucination_function_name), unparseable arguments (server parse error, code 0), "
                       "a content-only message (no tool_calls), then Finish(give_up_and_restart): code 4, pruned.",
        "group": "G2_instruction", "query_id": 5744, "method": "CoT@1", "backbone": "chatgpt_function",
        "entry": MULTI, "cache": "same_as:react_errors",
        "replies": [
            fc_message("I will get the product details for B08N5WG761.",
                       fc_call("call_fce1", "get_a_product_details_for_amazon_scraper",
                               '{"productid": "B08N5WG761"}')),
            fc_message(None,
                       fc_call("call_fce2", "get_a_product_details_for_amazon_scrapper_v4",
                               "{productid: B08N5WG761}")),
            fc_message("Let me think about which function to use."),
            fc_message("Nothing works, so I give up and restart.", fc_give_up("call_fce4")),
        ],
    },
    {
        "name": "fc_dfs_backtrack",
        "description": "dfs_backtrack with chatgpt_function: two calls (the second with content null), give_up, "
                       "back two levels, the first call's node expands a second child with the diversity prompt, "
                       "which then answers.",
        "group": "G1_instruction", "query_id": 1856, "method": "DFS_woFilter_w2", "backbone": "chatgpt_function",
        "entry": MULTI, "cache": "same_as:dfs_backtrack",
        "replies": [
            fc_message("First the best goal prediction.",
                       fc_call("call_fcb1", "best_bestgoal_for_morpheus_predictions", "{}")),
            fc_message(None, fc_call("call_fcb2", "best_sign_2_for_morpheus_predictions", "{}")),
            fc_message("The sign 2 endpoint returned nothing useful. I give up and restart.",
                       fc_give_up("call_fcb3")),
            fc_message("This time I try the best sign 1 prediction.",
                       fc_call("call_fcb4", "best_sign_1_for_morpheus_predictions", "{}")),
            fc_message("I have enough predictions.",
                       fc_answer("call_fcb5", "Best goal: Arsenal vs Chelsea (over 2.5). Best sign 1: Bayern "
                                              "Munich to win at 1.45.")),
        ],
    },
    {
        "name": "fc_dfs_answered",
        "description": "dfs_answered with chatgpt_function: one message with two parallel calls (both the "
                       "optional-only API, called with {}), then Finish(give_answer) with content null.",
        "group": "G1_instruction", "query_id": 1572, "method": "DFS_woFilter_w2", "backbone": "chatgpt_function",
        "entry": MULTI, "cache": "same_as:dfs_answered",
        "replies": [
            fc_message("I will get the media sources statistics, twice to check they are stable.",
                       fc_call("call_fcd1a", "media_sources_statistics_for_public_url_share", "{}"),
                       fc_call("call_fcd1b", "media_sources_statistics_for_public_url_share", "{}")),
            fc_message(None, fc_answer("call_fcd2", "There are 1,204 tracked media sources; the most cited is "
                                                    "Reuters.")),
        ],
    },
]


def _kick_replies() -> tuple[list[str], list[dict]]:
    calls = [
        ("get_channel_details_for_kick_com_api_kick_api", '{"channel_name": "gmhikaru"}',
         "Get Channel Details", ok({"slug": "gmhikaru", "followers": 151230, "verified": True})),
        ("get_channel_clips_for_kick_com_api_kick_api", '{"cursor": "0", "channel_name": "gmhikaru"}',
         "Get Channel Clips", ok({"clips": [{"id": "clip_01", "title": "Bullet blunder", "views": 4021}],
                                  "nextCursor": "1"})),
        ("get_chatroom_rules_for_kick_com_api_kick_api", '{"channel_name": "gmhikaru"}',
         "Get Chatroom Rules", ok({"rules": "Be nice. No spam."})),
    ]
    replies = []
    for i in range(17):
        name, args, _, _ = calls[i % 3]
        replies.append(call(f"Step {i + 1}: I will look at the channel again.", name, args))
    cache = [entry("Data", "Kick.com API | Kick API", api, args, reply) for _, args, api, reply in calls]
    return replies, cache


def _email_replies() -> tuple[list[str], list[dict]]:
    replies, cache = [], []
    for i in range(30):
        address = f"subscriber{i}@example.com"
        if i % 2 == 0:
            name, api, tool = "email_validate_regex_for_email_validator_v3", "Email Validate Regex", "Email Validator_v3"
            reply = ok({"email": address, "valid": i % 4 == 0})
        else:
            name, api, tool = "read_inbox_for_temp_mail", "Read Inbox", "Temp Mail"
            reply = ok({"email": address, "messages": []})
        args = json.dumps({"email": address})
        replies.append(call(f"Check {address}.", name, args))
        cache.append(entry("Email", tool, api, args, reply))
    return replies, cache


GENERATED = {"kick_17": _kick_replies(), "email_30": _email_replies()}


def resolved() -> list[dict]:
    """SCENARIOS with 'replies' references expanded and 'cache' filled in."""
    by_name = {s["name"]: s for s in SCENARIOS}
    out = []
    for s in SCENARIOS:
        s = dict(s)
        if isinstance(s.get("cache"), str) and s["cache"].startswith("same_as:"):
            s["cache"] = by_name[s["cache"].split(":", 1)[1]]["cache"]
        ref = s["replies"]
        if isinstance(ref, str) and ref in GENERATED:
            s["replies"], s["cache"] = GENERATED[ref]
        elif isinstance(ref, str) and ref.startswith("same_as:"):
            other = by_name[ref.split(":", 1)[1]]
            s["replies"], s["cache"] = other["replies"], other["cache"]
        out.append(s)
    return out
