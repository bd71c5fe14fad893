"""Stage 0 — frozen domain types and their file I/O (docs/architecture.md §2).

Inputs: user files (scores CSV/Parquet, spec YAML). Outputs: frozen, validated objects.
Nothing here imports from a later stage.
"""
