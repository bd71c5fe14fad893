"""Serve stage — the FastAPI app factory: OpenAI-compatible endpoints over a ``Gateway``.

``POST /v1/chat/completions`` and ``POST /v1/completions`` (``model: "routerwise"`` or
``"auto"``: routed by the plan; a backend's model name: passed straight through),
``GET /v1/models``, ``GET /health``, ``GET /metrics``. Errors use OpenAI's body: 400
malformed, 401 bad key, 404 unknown model, 413 too large, 429 saturated (``Retry-After``),
503 no backend could answer. Response headers: ``x-routerwise-model`` (who served),
``x-routerwise-scores`` and ``x-routerwise-score-source`` (why, for routed requests),
``x-routerwise-overhead-ms`` (time spent in the gateway before forwarding),
``x-request-id`` (the client's, or a new one; also sent to the backend). A client that
hangs up mid-stream is counted as 499 and its backend stream closed.

The completion endpoints are served as plain ASGI (``serve.asgi``): on a 2-core machine
the framework's per-request and per-chunk work cost more CPU than the gateway's own.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from routerwise.serve.asgi import (
    BodyTooLargeError,
    ClientGoneError,
    Receive,
    Reply,
    Scope,
    Send,
    header_fields,
    read_body,
)
from routerwise.serve.bodies import BodyError, ChatBody, CompletionBody, error_body, parse_body
from routerwise.serve.config import ROUTED_NAMES, GatewayConfig
from routerwise.serve.gateway import Gateway, build_gateway
from routerwise.serve.proxy import Attempt, try_in_order

log = logging.getLogger(__name__)

#: A client's ``x-request-id`` longer than this is replaced by a new one.
MAX_REQUEST_ID_CHARS = 128

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response


def _error(status: int, message: str, kind: str, code: str | None = None,
           param: str | None = None, headers: Mapping[str, str] | None = None) -> Response:
    """An OpenAI error as a Starlette response (the non-completion endpoints)."""
    from starlette.responses import JSONResponse

    return JSONResponse(error_body(message, kind, code, param), status_code=status,
                        headers=dict(headers or {}))


def _key_ok(gw: Gateway, given: bytes | None) -> bool:
    key = gw.cfg.api_key
    if key is None:
        return True
    text = (given or b"").decode("latin-1")
    token = text[7:] if text.lower().startswith("bearer ") else ""
    return hmac.compare_digest(token.encode(), key.encode())


_DENIED = ("Incorrect or missing API key: send Authorization: Bearer <key>",
           "invalid_request_error", "invalid_api_key")


def _unauthorized(gw: Gateway, request: Request) -> Response | None:
    given = request.headers.get("authorization")
    if _key_ok(gw, None if given is None else given.encode("latin-1")):
        return None
    return _error(401, *_DENIED)


def _scores_header(gw: Gateway, values: Any) -> str:
    return ",".join(f"{m}={float(v):.4f}" for m, v in zip(gw.models, values, strict=True))


class _RefusalError(Exception):
    """An answer other than a completion: status, OpenAI error body, extra headers."""

    def __init__(self, status: int, message: str, kind: str, code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}
        self.body = error_body(message, kind, code, param)


async def _order(gw: Gateway, body: ChatBody | CompletionBody
                 ) -> tuple[tuple[str, ...], dict[str, str]]:
    if body.model in ROUTED_NAMES:
        scores = await gw.score(body.text(), body.task)
        decision = gw.decide(scores)
        return decision.order, {"x-routerwise-scores": _scores_header(gw, scores.values),
                                "x-routerwise-score-source": scores.source}
    if body.model in gw.pool.by_model:
        return (body.model,), {}
    known = [*ROUTED_NAMES, *gw.pool.by_model]
    raise _RefusalError(404, f"The model `{body.model}` does not exist; this gateway serves "
                   f"{known}", "invalid_request_error", "model_not_found", "model")


def _unanswered(gw: Gateway, att: Attempt, order: tuple[str, ...]) -> _RefusalError:
    retry = {"retry-after": str(gw.cfg.retry_after_s)}
    if att.saturated and not att.failed:
        gw.metrics.errors.labels("", "saturated").inc()
        return _RefusalError(429, f"every backend for this request is at capacity "
                        f"({list(order)}); retry later", "rate_limit_error", "saturated",
                        headers=retry)
    gw.metrics.errors.labels("", "unavailable").inc()
    why = att.last_error or "no healthy backend"
    return _RefusalError(503, f"no backend could serve this request ({why}); retry later",
                    "server_error", "backend_unavailable", headers=retry)


_HEAD_FIELDS = (b"authorization", b"content-length", b"x-request-id")


def request_id(given: bytes | None) -> str:
    """The client's ``x-request-id`` (as vLLM and LiteLLM take it) when it is short,
    printable ASCII (it is echoed in a response header), else a new one."""
    if given and len(given) <= MAX_REQUEST_ID_CHARS and given.isascii() \
            and given.decode("ascii").isprintable():
        return given.decode("ascii")
    return uuid.uuid4().hex


async def handle(gw: Gateway, scope: Scope, receive: Receive, send: Send, chat: bool) -> None:
    """One completion request: authenticate, parse, route, forward (with fallbacks).

    Every answer, error or not, carries the request's ``x-request-id``, which is also sent
    to the backend."""
    arrived = time.perf_counter()
    auth, length, given_id = header_fields(scope, _HEAD_FIELDS)
    att = Attempt(arrived=arrived, request_id=request_id(given_id))
    reply = Reply(send, att.request_id)
    try:
        if not _key_ok(gw, auth):
            raise _RefusalError(401, *_DENIED)
        await _handle(gw, receive, chat, att, reply, length)
    except _RefusalError as refusal:
        await reply.json(refusal.status, refusal.body, refusal.headers)
    except ClientGoneError:
        return
    except Exception:
        if reply.started:
            raise  # the server ends the connection: the client sees a cut stream
        log.exception("request %s failed", att.request_id)
        await reply.json(500, error_body("internal gateway error", "server_error"))


async def _body(gw: Gateway, receive: Receive, chat: bool, length: bytes | None,
                ) -> tuple[dict[str, Any], ChatBody | CompletionBody]:
    limit = gw.cfg.max_body_bytes
    try:
        raw = await read_body(receive, length, limit)
    except BodyTooLargeError:
        raise _RefusalError(413, f"request body exceeds the gateway's limit of {limit} bytes",
                       "invalid_request_error", "request_too_large") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _RefusalError(400, "the request body is not valid JSON",
                       "invalid_request_error") from None
    try:
        return data, parse_body(data, chat)
    except BodyError as exc:
        raise _RefusalError(400, str(exc), "invalid_request_error", None, exc.param) from None


async def _handle(gw: Gateway, receive: Receive, chat: bool, att: Attempt, reply: Reply,
                  length: bytes | None) -> None:
    data, body = await _body(gw, receive, chat, length)
    order, headers = await _order(gw, body)
    gw.in_flight += 1
    gw.metrics.queue_depth.set(gw.in_flight)
    try:
        path = "chat/completions" if chat else "completions"
        answered = await try_in_order(gw, order, path, data, bool(body.stream), att,
                                      headers, reply, receive)
    finally:
        gw.in_flight -= 1
        gw.metrics.queue_depth.set(gw.in_flight)
    if not answered:
        raise _unanswered(gw, att, order)


def _models_list(gw: Gateway) -> dict[str, Any]:
    created = int(time.time())
    data = [{"id": "routerwise", "object": "model", "created": created,
             "owned_by": "routerwise",
             "metadata": {"routed_models": list(gw.models), "aliases": list(ROUTED_NAMES)}}]
    data += [{"id": m, "object": "model", "created": created, "owned_by": "routerwise-backend",
              "metadata": {"url": b.url, "served_name": b.served_name, "healthy": b.healthy,
                           "routed": m in gw.index}}
             for m, b in gw.pool.by_model.items()]
    return {"object": "list", "data": data}


def _health(gw: Gateway) -> tuple[int, dict[str, Any]]:
    backends = {m: {"healthy": b.healthy, "running": b.running}
                for m, b in gw.pool.by_model.items()}
    ok = any(b.healthy for m, b in gw.pool.by_model.items() if m in gw.index)
    return (200 if ok else 503), {"status": "ok" if ok else "unavailable",
                                  "backends": backends, "prices_from": gw.prices.source}


class _Completions:
    """The ASGI endpoint of ``/v1/chat/completions`` (``chat``) or ``/v1/completions``."""

    def __init__(self, gw: Gateway, chat: bool) -> None:
        self.gw, self.chat = gw, chat

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await handle(self.gw, scope, receive, send, self.chat)


def create_app(cfg: GatewayConfig,
               transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
               gateway: Gateway | None = None) -> FastAPI:
    """The gateway app (the plan and predictor are read here; backends are contacted when
    the app starts).

    A completion request (``POST`` to either completion path) goes from the server straight
    to its endpoint, past the framework's middleware and router (each wraps every chunk
    sent); everything else, other methods on those paths included, is FastAPI's."""
    from fastapi import FastAPI
    from starlette.responses import JSONResponse, Response

    gw = gateway or build_gateway(cfg, transports)
    endpoints = {"/v1/chat/completions": _Completions(gw, chat=True),
                 "/v1/completions": _Completions(gw, chat=False)}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gw.start()
        yield
        await gw.stop()

    class GatewayApp(FastAPI):
        async def __call__(self, scope: Scope, receive: Receive,
                           send: Send) -> None:
            if scope["type"] == "http" and scope["method"] == "POST":
                endpoint = endpoints.get(scope["path"])
                if endpoint is not None:
                    await endpoint(scope, receive, send)
                    return
            await super().__call__(scope, receive, send)

    app = GatewayApp(title="RouterWise gateway", lifespan=lifespan, docs_url=None,
                     redoc_url=None, openapi_url=None)
    app.state.gateway = gw

    async def models(request: Request) -> Response:
        if (denied := _unauthorized(gw, request)) is not None:
            return denied
        return JSONResponse(_models_list(gw))

    async def health(request: Request) -> Response:
        for b in gw.pool.by_model.values():
            b.metrics.healthy.set(1.0 if b.healthy else 0.0)
        status, content = _health(gw)
        return JSONResponse(content, status_code=status)

    async def metrics(request: Request) -> Response:
        for b in gw.pool.by_model.values():
            b.metrics.healthy.set(1.0 if b.healthy else 0.0)
        from routerwise.serve.metrics import render

        text, media = render(gw.metrics)
        return Response(text, media_type=media)

    from starlette.routing import Route

    for path, endpoint in endpoints.items():  # reached by other methods (405) or mounts
        app.router.routes.append(Route(path, endpoint, methods=["POST"]))
    for path, handler in (("/v1/models", models), ("/health", health),
                          ("/metrics", metrics)):
        app.add_route(path, handler, methods=["GET"], include_in_schema=False)
    return app
