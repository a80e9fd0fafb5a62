"""Attention Buckets (Chen et al., arXiv 2312.04455): run one model under several RoPE bases and fuse.

Stands alone: imports torch, numpy and transformers, never `toolbench_eval` or `reasoning`.
"""
