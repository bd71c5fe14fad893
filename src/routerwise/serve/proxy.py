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

The stream is relayed as raw bytes: whatever arrived from the backend since the last write
goes to the client in one write (no per-event parsing); only the bytes before the first
token are searched, for the token. A client that disconnects mid-stream closes the backend
connection (the backend stops generating, as vLLM does when its client leaves).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from routerwise.serve.asgi import Receive, Reply
from routerwise.serve.backends import Backend
from routerwise.serve.bodies import error_body
from routerwise.serve.upstream import UpstreamError, UpstreamResponse, UpstreamTimeoutError

if TYPE_CHECKING:
    from routerwise.serve.gateway import Gateway

#: A chunk that carries a token: a non-empty ``content`` (chat) or ``text`` (completions).
TOKEN_RE = re.compile(rb'"(?:content|text)":\s*"(?!")')
EVENT_STREAM = b"text/event-stream"


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


async def _first_token(resp: UpstreamResponse, timeout_s: float) -> bytes:
    """The body up to and including the read with the first token (all of it if none)."""
    pending = b""
    async with asyncio.timeout(timeout_s):
        while data := await resp.next():
            pending += data
            if TOKEN_RE.search(data):
                return pending
    return pending


def _sse_error(message: str) -> bytes:
    return f"data: {json.dumps(error_body(message, 'server_error'))}\n\n".encode()


def _overhead(att: Attempt) -> dict[str, str]:
    return {"x-routerwise-overhead-ms": f"{(att.forwarded - att.arrived) * 1e3:.3f}",
            "x-routerwise-attempts": str(att.attempts)}


def _done(backend: Backend, att: Attempt, status: int) -> None:
    backend.metrics.e2e.observe(time.perf_counter() - att.arrived)
    backend.metrics.requests(status).inc()


def _release(backend: Backend) -> None:
    backend.running -= 1
    backend.metrics.running.dec()


def _payload(body: dict[str, Any], backend: Backend) -> bytes:
    return json.dumps({**body, "model": backend.served_name}, separators=(",", ":")).encode()


async def _open(gw: Gateway, backend: Backend, path: str, payload: bytes, stream: bool,
                att: Attempt) -> tuple[UpstreamResponse, bytes]:
    """Send; the response and what was read of it (a stream: up to its first token; else
    all of it). ``_RetryError`` when the backend failed; nothing was sent to the client."""
    resp: UpstreamResponse | None = None
    try:
        resp = await backend.upstream.post(f"/v1/{path}", payload, _upstream_headers(att))
        if resp.status == 429 or resp.status >= 500:
            att.saturated = att.saturated or resp.status == 429
            att.failed = att.failed or resp.status != 429
            raise _RetryError(f"{backend.model} answered HTTP {resp.status}")
        if resp.status >= 400 or not stream:
            return resp, await resp.read()
        return resp, await _first_token(resp, gw.cfg.first_token_timeout_s)
    except (UpstreamError, TimeoutError) as exc:
        if resp is not None:  # closed before its end: the backend stops generating
            await resp.aclose()
        att.failed = True
        if not isinstance(exc, UpstreamTimeoutError | TimeoutError):
            # refused or dropped: out until a health check passes; a timeout is load, not
            # death (taking a slow backend out would pile its load on the others)
            backend.mark_failed()
            backend.metrics.healthy.set(0.0)
        raise _RetryError(f"{backend.model}: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        if resp is not None:
            await resp.aclose()
        raise


async def forward(gw: Gateway, backend: Backend, path: str, body: dict[str, Any],
                  stream: bool, att: Attempt, extra_headers: dict[str, str], reply: Reply,
                  receive: Receive) -> None:
    """Send to ``backend`` and answer the client; ``_RetryError`` before any byte was
    sent."""
    payload = _payload(body, backend)
    att.attempts += 1
    if not att.forwarded:
        att.forwarded = time.perf_counter()
        gw.metrics.overhead.observe(att.forwarded - att.arrived)
    backend.running += 1
    backend.metrics.running.inc()
    try:
        resp, head = await _open(gw, backend, path, payload, stream, att)
    except BaseException:
        _release(backend)
        raise
    headers = {**extra_headers, **_overhead(att)}
    if resp.status >= 400 or not stream:
        await resp.aclose()
        _release(backend)
        _done(backend, att, resp.status)
        await reply.full(resp.status, head, headers,
                         resp.headers.get("content-type", "application/json").encode())
        return
    ttft_ms = (time.perf_counter() - att.arrived) * 1e3
    backend.metrics.ttft.observe(ttft_ms / 1e3)
    gw.record_ttft(ttft_ms)
    await _relay(backend, resp, head, att, headers, reply, receive)


async def _relay(backend: Backend, resp: UpstreamResponse, head: bytes, att: Attempt,
                 headers: dict[str, str], reply: Reply, receive: Receive) -> None:
    """The committed stream: what was held back, then each read as it comes (the read
    that holds the body's end closes the response in the same write)."""
    status = resp.status
    # done before the response is only when the client left (uvicorn answers the pending
    # receive() with a disconnect; at the response's end too, so it needs no cancelling)
    gone = asyncio.ensure_future(receive())
    ended = False
    try:
        await reply.start(status, headers, EVENT_STREAM)
        data = head
        while data:
            ended = resp.finished
            await reply.body(data, not ended)
            if ended:
                break
            data = await resp.next()
            if gone.done():  # 499: nginx's "client closed the request"
                status = 499
                break
    except UpstreamError as exc:  # the stream has started: end it with an error event
        status = 502
        backend.metrics.stream_broken.inc()
        await reply.body(_sse_error(f"backend {backend.model} failed mid-stream: "
                                    f"{type(exc).__name__}; the response is incomplete"), True)
    except BaseException:
        gone.cancel()
        raise
    finally:
        await resp.aclose()  # before its end (client gone): the connection is closed
        _release(backend)
        _done(backend, att, status)
    if not ended:
        await reply.body(b"", False)


async def try_in_order(gw: Gateway, order: tuple[str, ...], path: str, body: dict[str, Any],
                       stream: bool, att: Attempt, headers: dict[str, str], reply: Reply,
                       receive: Receive) -> bool:
    """Answer from the first backend in ``order`` that can (False: none could; ``att``
    says why)."""
    for model in order:
        if att.attempts >= gw.cfg.max_attempts:
            break
        backend = gw.pool.by_model[model]
        if not backend.available:
            att.saturated = att.saturated or backend.healthy
            continue
        try:
            await forward(gw, backend, path, body, stream, att,
                          {**headers, "x-routerwise-model": model}, reply, receive)
            return True
        except _RetryError as exc:
            att.last_error = str(exc)
            backend.metrics.backend_errors.inc()
            backend.metrics.fallbacks.inc()
    return False
