"""Inputs for the StableToolBench golden runs: tool documentation files and the tool response cache.

Upstream needs `toolenv/tools/<Category>/<standard_tool>.json` files, which StableToolBench does not ship.
They are rebuilt here from the queries' `api_list` (first entry of each API wins, as
`toolbench_eval.benchmark.loader.tools_from_api_lists` does). The `api_list` carries no tool description, so
each tool gets a fixed one from TOOL_DESCRIPTIONS: one with a newline and more than 512 characters, one empty,
the rest short, so the task description's `[:512]`, newline removal and `"None"` rules all show.

The cache is `tool_response_cache/<category>/<standard_tool>_for_<category>/<api>.json`, each file a dict
keyed by `str(<parsed arguments dict>)`, the layout upstream `server/main.py` reads. Names are computed with
upstream's own `standardize`/`change_name` (imported from the StableToolBench checkout at run time).
"""

from __future__ import annotations

import json
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "stabletoolbench_sample" / "solvable_queries"

LONG_DESCRIPTION = (
    "TheClique: concert, artist and football data.\nFrom Songkick, Transfermarkt and TuneFind. "
    + "Artist pages, concert listings, festival line-ups, player market values, transfer histories, "
    "club and manager details. " * 6
)

TOOL_DESCRIPTIONS = {
    "TheClique": LONG_DESCRIPTION,
    "Mutual fund Nav": "",
    "Kick.com API | Kick API": "Kick.com streaming: channels, clips, chat and livestreams.",
    "Morpheus Predictions ": "Daily football betting predictions.\n",
}


def tool_description(tool_name: str) -> str:
    return TOOL_DESCRIPTIONS.get(tool_name, f"{tool_name.strip()}: tool rebuilt from the query api_list.")


def load_queries(group: str) -> list[dict]:
    return json.loads((SAMPLE / "test_instruction" / f"{group}.json").read_text(encoding="utf-8"))


def query_by_id(group: str, query_id: int) -> dict:
    for query in load_queries(group):
        if query["query_id"] == query_id:
            return query
    raise KeyError(f"{group}: no query {query_id} in {SAMPLE}")


def build_tool_files(queries: list[dict], tools_dir: Path, standardize) -> list[str]:
    """Write one tool JSON per (category, standardized tool name); returns the relative paths written."""
    tools: dict[tuple[str, str], dict] = {}
    for query in queries:
        for api in query["api_list"]:
            key = (api["category_name"], standardize(api["tool_name"]))
            tool = tools.setdefault(key, {
                "tool_description": tool_description(api["tool_name"]),
                "tool_name": api["tool_name"],
                "title": api["tool_name"],
                "api_list": [],
                "standardized_name": key[1],
            })
            if any(a["name"] == api["api_name"] for a in tool["api_list"]):
                continue
            entry = {
                "name": api["api_name"],
                "url": "",
                "description": api.get("api_description", ""),
                "method": api.get("method", "GET"),
                "required_parameters": api.get("required_parameters", []),
                "optional_parameters": api.get("optional_parameters", []),
            }
            if "template_response" in api:
                entry["template_response"] = api["template_response"]
            tool["api_list"].append(entry)
    written = []
    for (category, stem), tool in sorted(tools.items()):
        path = tools_dir / category / f"{stem}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(tool, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(str(path.relative_to(tools_dir)))
    return written


def cache_location(category: str, tool_name: str, api_name: str, standardize, change_name,
                   standardize_category) -> tuple[str, str, str]:
    """(category folder, tool folder, api file stem) where upstream's server looks for this API."""
    std_category = standardize_category(category)
    std_tool = standardize(tool_name)
    api = change_name(standardize(api_name))
    return std_category, f"{std_tool}_for_{std_category}", api


def build_cache(entries: list[dict], cache_dir: Path, standardize, change_name, standardize_category) -> list[str]:
    """entries: {category, tool_name, api_name, arguments (the JSON text the model sends), reply (dict)}."""
    files: dict[Path, dict] = {}
    for entry in entries:
        cat, tool, api = cache_location(entry["category"], entry["tool_name"], entry["api_name"],
                                        standardize, change_name, standardize_category)
        path = cache_dir / cat / tool / f"{api}.json"
        key = str(json.loads(entry["arguments"])) if entry["arguments"] != "" else str({})
        existing = files.setdefault(path, {})
        if key in existing and existing[key] != entry["reply"]:
            raise ValueError(f"two different cached replies for {path.name} {key}")
        existing[key] = entry["reply"]
    written = []
    for path, content in sorted(files.items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        # indent=4 and ensure_ascii default, as upstream's save_cache writes cache files
        path.write_text(json.dumps(content, indent=4), encoding="utf-8")
        written.append(str(path.relative_to(cache_dir)))
    return written
