"""The context-awareness probe: key-value retrieval with the target moved across the context.

Attention Buckets' first experiment (Chen et al., arXiv 2312.04455, after Liu et al.'s "Lost in the
Middle" KV retrieval): K key-value pairs in a JSON object, ask for one key's value, move the target pair
across positions and compare RoPE bases and bucket sets. Modules: `kv` (seeded prompts), `scoring`
(exact match), `runner` (resumable cells on the bucketed engine), `report` (CSV, PNG, Markdown).
"""
