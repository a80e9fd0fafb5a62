"""The batch runner: many trajectories in flight, local or Ray executors, resumable run directories.

Entry point: `execute_run(RunConfig(...))`; the `run` and `ablate` commands are thin layers over it.
"""

from toolbench_eval.runner.config import RunConfig
from toolbench_eval.runner.execute import ModelCache, RunResult, execute_run, run_directory

__all__ = ["ModelCache", "RunConfig", "RunResult", "execute_run", "run_directory"]
