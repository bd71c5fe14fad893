"""Stage 1 — latency profile tables: load/validate/write, the GPU-free engine estimator,
and the load-testing profiler. Rates in requests/s (``_rps``), times in ms (``_ms``).
"""
