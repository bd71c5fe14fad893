"""Stage 2 — latency curves ℓ(λ) fitted from profile points (rate in req/s → time in ms).

Inputs: :class:`~routerwise.profiles.table.ProfilePoints`. Outputs: fitted, monotone curves.
"""
