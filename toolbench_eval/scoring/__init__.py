"""Scoring: judges, pass rate (StableToolBench SoPR), win rate, statistics and leaderboard export.

- `labels`: raw answer files and ToolEval converted files -> `AnswerRecord`; `AnswerStatus`.
- `normalize`: the rule judge's text and number normalisation.
- `judges` (`RuleJudge`, the `Judge` protocol), `llm_judge` (`LLMJudge`), `judge_prompts`, `judge_cache`.
- `passrate`: SoPR per group and averaged, saved reports, StableToolBench-compatible label files.
- `winrate`: win rate against a reference run. `stats`: SoPR arithmetic and bootstrap intervals.
- `export`, `rows`, `reference`: leaderboard tables, plots and published reference rows.
"""
