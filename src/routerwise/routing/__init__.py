"""Stage 3 — routing for a fixed setup: dual prices, the exact LP reference, baselines.

Inputs: per-prompt scores (N × K, in [0, 1]) and one latency curve per model. Outputs: a
:class:`~routerwise.routing.result.RoutingResult` — prices, per-prompt shares, loads.
"""
