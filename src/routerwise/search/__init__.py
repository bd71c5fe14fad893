"""Stage 4 — setup search (docs/architecture.md §1 stage 3): enumerate deployments per model, place
shards on GPUs, prune dominated and bounded setups, evaluate the rest with the routing
solver through a pluggable executor. Every candidate keeps its status and reason.
"""
