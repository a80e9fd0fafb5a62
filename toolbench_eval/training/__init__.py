"""Supervised fine-tuning in the ToolLLaMA recipe: multi-turn trajectories, loss on assistant turns only."""
