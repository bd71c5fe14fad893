"""Serve stage — the FastAPI app factory: OpenAI-compatible endpoints over a ``Gateway``.

``POST /v1/chat/completions`` and ``POST /v1/completions`` (``model: "routerwise"`` or
``"auto"``: routed by the plan; a backend's model name: passed straight through),
``GET /v1/models``, ``GET /health``, ``GET /metrics``. Errors use OpenAI's body: 400
malformed, 401 bad key, 404 unknown model, 413 too large, 429 saturated (``Retry-After``),
503 no backend could answer. Response headers: ``x-routerwise-model`` (who served),
``x-routerwise-scores`` and ``x-routerwise-score-source`` (why, for routed requests),
``x-routerwise-overhead-ms`` (time spent in the gateway before forwarding).
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from routerwise.serve.bodies import BodyError, ChatBody, CompletionBody, error_body, parse_body
from routerwise.serve.config import ROUTED_NAMES, GatewayConfig
from routerwise.serve.gateway import Gateway, build_gateway
from routerwise.serve.proxy import Attempt, try_in_order

#: A client's ``x-request-id`` longer than this is replaced by a new one.
MAX_REQUEST_ID_CHARS = 128

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response


def _error(status: int, message: str, kind: str, code: str | None = None,
           param: str | None = None, headers: Mapping[str, str] | None = None) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse(error_body(message, kind, code, param), status_code=status,
                        headers=dict(headers or {}))


def _unauthorized(gw: Gateway, request: Request) -> Response | None:
    key = gw.cfg.api_key
    if key is None:
        return None
    given = request.headers.get("authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else ""
    if hmac.compare_digest(token.encode(), key.encode()):
        return None
    return _error(401, "Incorrect or missing API key: send Authorization: Bearer <key>",
                  "invalid_request_error", "invalid_api_key")


def _too_large(limit: int) -> Response:
    return _error(413, f"request body exceeds the gateway's limit of {limit} bytes",
                  "invalid_request_error", "request_too_large")


async def _read_body(gw: Gateway, request: Request) -> tuple[Any, Response | None]:
    """The parsed JSON body, or an error response (413 or 400) when it cannot be read."""
    limit = gw.cfg.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            return None, _too_large(limit)
        raw: bytes | bytearray = await request.body()  # bounded by the declared length
    else:
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                return None, _too_large(limit)
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError):
        return None, _error(400, "the request body is not valid JSON", "invalid_request_error")


def _scores_header(gw: Gateway, values: Any) -> str:
    return ",".join(f"{m}={float(v):.4f}" for m, v in zip(gw.models, values, strict=True))


async def _order(gw: Gateway, body: ChatBody | CompletionBody
                 ) -> tuple[tuple[str, ...], dict[str, str]] | Response:
    if body.model in ROUTED_NAMES:
        scores = await gw.score(body.text(), body.task)
        decision = gw.decide(scores)
        return decision.order, {"x-routerwise-scores": _scores_header(gw, scores.values),
                                "x-routerwise-score-source": scores.source}
    if body.model in gw.pool.by_model:
        return (body.model,), {}
    known = [*ROUTED_NAMES, *gw.pool.by_model]
    return _error(404, f"The model `{body.model}` does not exist; this gateway serves "
                  f"{known}", "invalid_request_error", "model_not_found", "model")


def _unanswered(gw: Gateway, att: Attempt, order: tuple[str, ...]) -> Response:
    retry = {"Retry-After": str(gw.cfg.retry_after_s)}
    if att.saturated and not att.failed:
        gw.metrics.errors.labels("", "saturated").inc()
        return _error(429, f"every backend for this request is at capacity ({list(order)}); "
                      "retry later", "rate_limit_error", "saturated", headers=retry)
    gw.metrics.errors.labels("", "unavailable").inc()
    why = att.last_error or "no healthy backend"
    return _error(503, f"no backend could serve this request ({why}); retry later",
                  "server_error", "backend_unavailable", headers=retry)


def request_id(request: Request) -> str:
    """The client's ``x-request-id`` (as vLLM and LiteLLM take it), or a new one."""
    given = request.headers.get("x-request-id")
    return given if given and len(given) <= MAX_REQUEST_ID_CHARS else uuid.uuid4().hex


async def handle(gw: Gateway, request: Request, chat: bool) -> Response:
    """One completion request: authenticate, parse, route, forward (with fallbacks).

    Every answer, error or not, carries the request's ``x-request-id``, which is also sent
    to the backend."""
    att = Attempt(arrived=time.perf_counter(), request_id=request_id(request))
    response = await _handle(gw, request, chat, att)
    response.headers["x-request-id"] = att.request_id
    return response


async def _handle(gw: Gateway, request: Request, chat: bool, att: Attempt) -> Response:
    if (denied := _unauthorized(gw, request)) is not None:
        return denied
    data, refused = await _read_body(gw, request)
    if refused is not None:
        return refused
    try:
        body = parse_body(data, chat)
    except BodyError as exc:
        return _error(400, str(exc), "invalid_request_error", None, exc.param)
    routed = await _order(gw, body)
    if not isinstance(routed, tuple):
        return routed
    order, headers = routed
    gw.in_flight += 1
    gw.metrics.queue_depth.set(gw.in_flight)
    try:
        path = "chat/completions" if chat else "completions"
        response = await try_in_order(gw, order, path, data, bool(body.stream), att,
                                      headers)
    finally:
        gw.in_flight -= 1
        gw.metrics.queue_depth.set(gw.in_flight)
    return response if response is not None else _unanswered(gw, att, order)


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


def create_app(cfg: GatewayConfig,
               transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
               gateway: Gateway | None = None) -> FastAPI:
    """The gateway app (the plan and predictor are read here; backends are contacted when
    the app starts)."""
    from fastapi import FastAPI
    from starlette.responses import JSONResponse, Response

    gw = gateway or build_gateway(cfg, transports)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gw.start()
        yield
        await gw.stop()

    app = FastAPI(title="RouterWise gateway", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.gateway = gw

    async def chat_completions(request: Request) -> Response:
        return await handle(gw, request, chat=True)

    async def completions(request: Request) -> Response:
        return await handle(gw, request, chat=False)

    async def models(request: Request) -> Response:
        if (denied := _unauthorized(gw, request)) is not None:
            return denied
        return JSONResponse(_models_list(gw))

    async def health(request: Request) -> Response:
        for m, b in gw.pool.by_model.items():
            gw.metrics.healthy.labels(m).set(1.0 if b.healthy else 0.0)
        status, content = _health(gw)
        return JSONResponse(content, status_code=status)

    async def metrics(request: Request) -> Response:
        for m, b in gw.pool.by_model.items():
            gw.metrics.healthy.labels(m).set(1.0 if b.healthy else 0.0)
        from routerwise.serve.metrics import render

        text, media = render(gw.metrics)
        return Response(text, media_type=media)

    # plain Starlette routes: the handlers read the request themselves, so FastAPI's
    # per-request dependency resolution would be pure overhead on the hot path
    for path, endpoint, method in (("/v1/chat/completions", chat_completions, "POST"),
                                   ("/v1/completions", completions, "POST"),
                                   ("/v1/models", models, "GET"),
                                   ("/health", health, "GET"),
                                   ("/metrics", metrics, "GET")):
        app.add_route(path, endpoint, methods=[method], include_in_schema=False)
    return app
