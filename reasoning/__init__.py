"""ToolBench reasoning: prompts, output parsing, ReAct (CoT@1), DFSDT, trajectory trees and answer JSON.

Talks to a model and a tool environment only through the protocols in `reasoning.protocols`;
never imports engines or tool backends.

    trajectory = await solve_dfsdt(query_text, functions, tool_descriptions, model, env, seed=42)
    write_answer_file(path / answer_filename(query_id, trajectory.method), answer_json(trajectory))
"""

from reasoning.answer import answer_filename, answer_json, write_answer_file
from reasoning.dfsdt import solve_dfsdt
from reasoning.react import solve_react
from reasoning.trajectory import Trajectory

__all__ = ["Trajectory", "answer_filename", "answer_json", "solve_dfsdt", "solve_react", "write_answer_file"]
