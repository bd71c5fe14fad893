"""Serve stage — forwarding one request to a backend, with fallback before any byte is sent.

A routed request tries its models in order (at most ``max_attempts``): a connection error,
a timeout, a 5xx or a 429 from a backend moves it to the next available model; a refused or
dropped connection also takes the backend out until a health check passes (a timeout does
not: it means load). A stream is
committed to the client only once its first token arrived (the role-only first chunk of an
OpenAI stream is held back with it, which delays nothing a client can see), so a backend
that dies before its first token is retried elsewhere; after that, nothing is retried — a
failure mid-stream ends the stream with an OpenAI error event. A backend's 4xx is the
client's error and is passed through as is.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from routerwise.serve.backends import Backend
from routerwise.serve.bodies import error_body

if TYPE_CHECKING:
    import httpx
    from starlette.responses import Response

    from routerwise.serve.gateway import Gateway

#: A chunk that carries a token: a non-empty ``content`` (chat) or ``text`` (completions).
TOKEN_RE = re.compile(rb'"(?:content|text)":\s*"(?!")')


@dataclass(slots=True)
class Attempt:
    """One request's progress through its candidate models."""

    arrived: float  # perf_counter at arrival
    request_id: str  # sent to every backend tried and back to the client
    forwarded: float = 0.0  # perf_counter when the first attempt was sent
    attempts: int = 0
    last_error: str = ""
    saturated: bool = False  # a backend was at capacity or answered 429
    failed: bool = False  # a backend failed (connection, timeout, 5xx)


class _RetryError(Exception):
    """This backend failed before any byte was sent: try the next model."""


def _upstream_headers(att: Attempt) -> dict[str, str]:
    # identity: the body is relayed byte for byte, so it must not be compressed
    return {"content-type": "application/json", "accept-encoding": "identity",
            "x-request-id": att.request_id}


async def _send(backend: Backend, path: str, payload: bytes,
                headers: dict[str, str]) -> httpx.Response:
    request = backend.client.build_request("POST", f"/v1/{path}", content=payload,
                                           headers=headers)
    return await backend.client.send(request, stream=True)


async def _first_token(chunks: AsyncIterator[bytes], timeout_s: float) -> list[bytes]:
    """Chunks up to and including the first one with a token (all of them if none has)."""
    pending: list[bytes] = []
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return pending
            pending.append(chunk)
            if TOKEN_RE.search(chunk):
                return pending


def _sse_error(message: str) -> bytes:
    return f"data: {json.dumps(error_body(message, 'server_error'))}\n\n".encode()


async def forward(gw: Gateway, backend: Backend, path: str, body: dict[str, Any],
                  stream: bool, att: Attempt, extra_headers: dict[str, str]) -> Response:
    """Send to ``backend``; a response for the client, or ``_RetryError``."""
    import httpx
    from starlette.responses import Response

    payload = json.dumps({**body, "model": backend.served_name},
                         separators=(",", ":")).encode()
    att.attempts += 1
    if not att.forwarded:
        att.forwarded = time.perf_counter()
        gw.metrics.overhead.observe(att.forwarded - att.arrived)
    backend.running += 1
    gw.metrics.running.labels(backend.model).inc()
    committed = False
    resp: httpx.Response | None = None
    try:
        resp = await _send(backend, path, payload, _upstream_headers(att))
        if resp.status_code == 429 or resp.status_code >= 500:
            att.saturated = att.saturated or resp.status_code == 429
            att.failed = att.failed or resp.status_code != 429
            raise _RetryError(f"{backend.model} answered HTTP {resp.status_code}")
        headers = {**extra_headers, **_overhead(att)}
        if resp.status_code >= 400 or not stream:
            content = await resp.aread()
            _done(gw, backend, att, resp.status_code)
            return Response(content, resp.status_code, headers=headers,
                            media_type=resp.headers.get("content-type", "application/json"))
        chunks = resp.aiter_raw()
        pending = await _first_token(chunks, gw.cfg.first_token_timeout_s)
        ttft_ms = (time.perf_counter() - att.arrived) * 1e3
        gw.metrics.ttft.labels(backend.model).observe(ttft_ms / 1e3)
        gw.record_ttft(ttft_ms)
        committed = True
        return _streaming(gw, backend, resp, pending, chunks, att, headers)
    except (httpx.TransportError, TimeoutError) as exc:
        att.failed = True
        if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            # refused or dropped: out until a health check passes; a timeout is load, not
            # death (taking a slow backend out would pile its load on the others)
            backend.mark_failed()
            gw.metrics.healthy.labels(backend.model).set(0.0)
        raise _RetryError(f"{backend.model}: {type(exc).__name__}: {exc}") from exc
    finally:
        if not committed:
            if resp is not None:
                await resp.aclose()
            backend.running -= 1
            gw.metrics.running.labels(backend.model).dec()


def _overhead(att: Attempt) -> dict[str, str]:
    return {"x-routerwise-overhead-ms": f"{(att.forwarded - att.arrived) * 1e3:.3f}",
            "x-routerwise-attempts": str(att.attempts)}


def _done(gw: Gateway, backend: Backend, att: Attempt, status: int) -> None:
    gw.metrics.e2e.labels(backend.model).observe(time.perf_counter() - att.arrived)
    gw.metrics.requests.labels(backend.model, str(status)).inc()


def _streaming(gw: Gateway, backend: Backend, resp: httpx.Response, pending: list[bytes],
               chunks: AsyncIterator[bytes], att: Attempt, headers: dict[str, str]
               ) -> Response:
    from starlette.responses import StreamingResponse

    async def relay() -> AsyncIterator[bytes]:
        status = resp.status_code
        try:
            if pending:  # what was held back, in one write
                yield b"".join(pending)
            async for chunk in chunks:
                yield chunk
        except Exception as exc:  # the stream has started: end it with an error event
            status = 502
            gw.metrics.errors.labels(backend.model, "stream_broken").inc()
            yield _sse_error(f"backend {backend.model} failed mid-stream: "
                             f"{type(exc).__name__}; the response is incomplete")
        finally:
            await resp.aclose()
            backend.running -= 1
            gw.metrics.running.labels(backend.model).dec()
            _done(gw, backend, att, status)

    return StreamingResponse(relay(), resp.status_code, headers=headers,
                             media_type="text/event-stream")


async def try_in_order(gw: Gateway, order: tuple[str, ...], path: str, body: dict[str, Any],
                       stream: bool, att: Attempt, headers: dict[str, str]) -> Response | None:
    """The first backend in ``order`` that answers (None: none did; ``att`` says why)."""
    for model in order:
        if att.attempts >= gw.cfg.max_attempts:
            break
        backend = gw.pool.by_model[model]
        if not backend.available:
            att.saturated = att.saturated or backend.healthy
            continue
        try:
            return await forward(gw, backend, path, body, stream, att,
                                 {**headers, "x-routerwise-model": model})
        except _RetryError as exc:
            att.last_error = str(exc)
            gw.metrics.errors.labels(model, "backend").inc()
            gw.metrics.fallbacks.labels(model).inc()
    return None
