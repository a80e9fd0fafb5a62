"""CLI subcommands, one module each; see `toolbench_eval.cli` for the contract."""
