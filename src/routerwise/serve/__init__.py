"""Serve stage — an OpenAI-compatible routing gateway in front of a plan's backends.

Inputs: a plan (``spec.plan.load_plan``), one URL per deployed model, optionally a quality
predictor. Output: an HTTP server (FastAPI app factory ``serve.app.create_app``) that routes
``model: "routerwise"`` requests by the plan's rule, ``argmax_m (score_m(prompt) − price_m)``,
passes named-model requests straight through, streams SSE without buffering, exports
Prometheus metrics, and adjusts the prices online from measured TTFT (``serve.controller``).
Times are in ms unless a name says ``_s``. Nothing is created at import time; fastapi,
uvicorn, httpx and prometheus_client are imported only when an app is built.
"""
