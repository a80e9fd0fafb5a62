"""The context-awareness probe: key-value retrieval with the target moved across the context.

Attention Buckets' first experiment (Chen et al., arXiv 2312.04455, after Liu et al.'s "Lost in the
Middle" KV retrieval): K key-value pairs in a JSON object, ask for one key's value, move the target pair
across positions and compare RoPE bases and bucket sets. Modules: `kv` (seeded prompts), `needles`
(multi-needle prompts and per-needle scoring), `scoring` (exact match), `scaling` (context extension:
linear PI, dynamic NTK, YaRN), `engine` (the bucketed generator with that extension and a position gap),
`runner` (resumable cells), `report` (CSV, PNG, Markdown); `scan` (the teacher-forced distance scan:
context prefilled once, question moved over a dense grid of distances), `scan_report`, `scan_cli`.
"""
