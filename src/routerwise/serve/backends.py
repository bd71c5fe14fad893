"""Serve stage — the backends: an upstream client for completions (``serve.upstream``),
a pooled ``httpx.AsyncClient`` for health checks and discovery, and live load.

A backend is *available* when it is healthy and has fewer than ``max_running`` requests in
flight. Health: a background check of ``GET /health`` every ``health_interval_s``;
``unhealthy_after`` consecutive failures take a backend out, one success puts it back. A
connection error or timeout on a real request takes it out at once (the next check decides
when it returns). Transports are injectable (``httpx.MockTransport`` in tests): a backend
with one sends its completions through its httpx client too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from routerwise.serve.config import BackendSpec, GatewayConfig
from routerwise.serve.metrics import BackendMetrics, GatewayMetrics, backend_metrics
from routerwise.serve.upstream import HttpxUpstream, RawUpstream, Upstream

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)
KEEPALIVE_EXPIRY_S = 3.0


class Backend:
    """One backend's client and live state (mutated only on the event loop)."""

    __slots__ = ("client", "failures", "health_path", "healthy", "max_running", "metrics",
                 "model", "running", "served_name", "upstream", "url")

    def __init__(self, spec: BackendSpec, client: httpx.AsyncClient, upstream: Upstream,
                 max_running: int, metrics: BackendMetrics) -> None:
        self.model, self.url, self.client = spec.model, spec.base_url, client
        self.upstream, self.metrics = upstream, metrics
        self.served_name = spec.model
        self.max_running = max_running
        self.running = 0
        self.healthy = True  # optimistic until the first check says otherwise
        self.failures = 0
        self.health_path = "/health"  # "/v1/models" for servers without one (llama-cpp-python)

    @property
    def available(self) -> bool:
        return self.healthy and self.running < self.max_running

    def mark_failed(self) -> None:
        if self.healthy:
            log.warning("backend %s (%s) taken out after a failed request", self.model,
                        self.url)
        self.healthy = False


def _lean(spec: BackendSpec, cfg: GatewayConfig,
          transport: httpx.AsyncBaseTransport | None) -> bool:
    return transport is None and cfg.lean_transport and spec.base_url.startswith("http://")


def make_upstream(spec: BackendSpec, cfg: GatewayConfig, client: httpx.AsyncClient,
                  lean: bool) -> Upstream:
    """Completions go over ``RawUpstream`` for a lean ``http://`` backend, else through the
    backend's httpx client."""
    if not lean:
        return HttpxUpstream(client)
    return RawUpstream(spec.base_url, cfg.connect_timeout_s, cfg.request_timeout_s,
                       KEEPALIVE_EXPIRY_S, max_idle=cfg.max_running_per_backend + 8)


def make_client(spec: BackendSpec, cfg: GatewayConfig,
                transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    """The backend's pooled httpx client: the lean asyncio transport for ``http://``
    backends (``serve.transport``; ``cfg.lean_transport``), httpx's own otherwise."""
    import httpx

    # idle connections expire before a uvicorn backend's (vLLM's) 5 s keep-alive closes
    # them, so a request never races a server-side close
    pooled = cfg.max_running_per_backend + 8
    limits = httpx.Limits(max_connections=pooled, max_keepalive_connections=pooled,
                          keepalive_expiry=KEEPALIVE_EXPIRY_S)
    if _lean(spec, cfg, transport):
        from routerwise.serve.transport import StreamTransport

        transport = StreamTransport(KEEPALIVE_EXPIRY_S, max_idle=pooled)
    timeout = httpx.Timeout(cfg.request_timeout_s, connect=cfg.connect_timeout_s,
                            pool=cfg.connect_timeout_s)
    return httpx.AsyncClient(base_url=spec.base_url, transport=transport, limits=limits,
                             timeout=timeout)


class BackendPool:
    """Every backend by plan model name, and the health-check loop."""

    def __init__(self, cfg: GatewayConfig, metrics: GatewayMetrics,
                 transports: Mapping[str, httpx.AsyncBaseTransport] | None = None) -> None:
        self.cfg = cfg
        self.by_model = {b.model: _backend(b, cfg, metrics, (transports or {}).get(b.model))
                         for b in cfg.backends}
        self._task: asyncio.Task[None] | None = None

    async def check(self, backend: Backend) -> bool:
        """One health check: ``GET /health`` answers 2xx within the connect timeout. A
        server without ``/health`` (404: llama-cpp-python's) is probed on ``/v1/models``
        from then on. A probe that times out while the backend has requests running is
        load, not a failure (taking a busy backend out piles its load on the others)."""
        import httpx

        try:
            resp = await backend.client.get(backend.health_path,
                                            timeout=self.cfg.connect_timeout_s)
            if resp.status_code == 404 and backend.health_path == "/health":
                log.info("backend %s has no /health: probing /v1/models", backend.model)
                backend.health_path = "/v1/models"
                return await self.check(backend)
        except httpx.TimeoutException:
            return backend.healthy and backend.running > 0
        except Exception:  # any other transport failure means unhealthy
            return False
        return resp.is_success

    def record(self, backend: Backend, ok: bool) -> None:
        if ok:
            if not backend.healthy:
                log.warning("backend %s (%s) is healthy again", backend.model, backend.url)
            backend.healthy, backend.failures = True, 0
            return
        backend.failures += 1
        if backend.healthy and backend.failures >= self.cfg.unhealthy_after:
            log.warning("backend %s (%s) failed %d health checks: taken out", backend.model,
                        backend.url, backend.failures)
            backend.healthy = False

    async def check_all(self) -> None:
        backends = list(self.by_model.values())
        results = await asyncio.gather(*(self.check(b) for b in backends))
        for backend, ok in zip(backends, results, strict=True):
            self.record(backend, ok)

    async def discover_names(self) -> None:
        """Learn each backend's served model name from ``/v1/models`` when the plan's name
        is not among them and it serves exactly one model."""
        for backend in self.by_model.values():
            with contextlib.suppress(Exception):
                resp = await backend.client.get("/v1/models",
                                                timeout=self.cfg.connect_timeout_s)
                ids = [d.get("id") for d in resp.json().get("data", [])]
                if backend.model not in ids and len(ids) == 1 and isinstance(ids[0], str):
                    backend.served_name = ids[0]
                    log.info("backend %s serves it as %r", backend.model, ids[0])

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.health_interval_s)
            await self.check_all()

    async def start(self) -> None:
        await self.discover_names()
        await self.check_all()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(b.client.aclose() for b in self.by_model.values()),
                             *(b.upstream.aclose() for b in self.by_model.values()))


def _backend(spec: BackendSpec, cfg: GatewayConfig, metrics: GatewayMetrics,
             transport: httpx.AsyncBaseTransport | None) -> Backend:
    client = make_client(spec, cfg, transport)
    upstream = make_upstream(spec, cfg, client, _lean(spec, cfg, transport))
    return Backend(spec, client, upstream, cfg.max_running_per_backend,
                   backend_metrics(metrics, spec.model))
