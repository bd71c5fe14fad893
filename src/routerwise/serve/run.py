"""Serve stage — run the gateway with uvicorn until interrupted, draining on shutdown.

On SIGINT/SIGTERM uvicorn stops accepting connections and waits up to
``drain_timeout_s`` for in-flight requests (streams included) before the app's lifespan
closes the backend clients.
"""

from __future__ import annotations

import logging

from routerwise.serve.config import GatewayConfig

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
#: Idle client connections are kept longer than clients keep them (httpx, the openai SDK:
#: 5 s), so a client never sends on a connection the gateway is closing.
CLIENT_KEEPALIVE_S = 75


def serve(cfg: GatewayConfig, host: str, port: int, log_level: str = "info") -> None:
    """Build the app (the plan and predictor are read first: errors before binding) and
    serve it."""
    import uvicorn

    from routerwise.serve.app import create_app

    logging.getLogger("routerwise").setLevel(log_level.upper())
    app = create_app(cfg)
    uvicorn.run(app, host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=int(cfg.drain_timeout_s), access_log=False,
                timeout_keep_alive=CLIENT_KEEPALIVE_S)
