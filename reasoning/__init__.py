"""ToolBench reasoning: prompts, output parsing, ReAct (CoT@1), DFSDT, trajectory trees and answer JSON.

Talks to a model and a tool environment only through the protocols in `reasoning.protocols`;
never imports engines or tool backends.
"""
