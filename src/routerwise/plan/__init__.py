"""Stage 5 — the plan: inputs resolved from a spec, the search and baselines run, the Plan
artifact (plan.json), its rich summary and plots. This is the shell around the pure search.
"""
