"""A streaming OpenAI-compatible chat-completions client that measures one request.

Every request becomes a ``RequestRecord`` — success or not: connection refused, a timeout,
an HTTP error, a malformed or truncated stream and a cancellation are data (``success``
False, ``error`` says what happened), never an exception. Times are measured from the
request's *scheduled* send time (open loop: a request the client sends late, or holds back
under a concurrency limit, waited that long from the user's point of view); ``send_lag_ms``
records how late the client actually sent it.

* TTFT: scheduled send → the first chunk with generated text (``delta.content``, or
  ``reasoning_content``); role-only chunks do not count.
* E2E: scheduled send → the end of the stream (``data: [DONE]``).
* TPOT: ``(E2E − TTFT) / (output_tokens − 1)`` (vLLM's definition); ``output_tokens`` from
  the stream's ``usage`` when the server sends it (``stream_options.include_usage``), else
  the number of text chunks. ``itl_max_ms``: the longest gap between text chunks.

Requests go through any ``StreamingClient``: an ``httpx.AsyncClient`` (its transport is
injectable: an ``httpx.MockTransport`` in unit tests) or the load generator's lean
``transport.RawStreamer``. ``check_endpoint`` answers within a few seconds
whether anything listens at the URL; ``probe`` sends one short request and drops the
optional body fields (``ignore_eos``, ``stream_options``) a server rejects.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from routerwise.errors import InputError
from routerwise.profiles.prompts import RequestSpec

#: How long ``check_endpoint`` waits for any answer (a dead endpoint is named within 5 s).
CHECK_DEADLINE_S = 4.0
_ERROR_BODY_CHARS = 200


class EndpointError(InputError):
    """The endpoint cannot be profiled (unreachable, refuses the model or the key)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The URLs of an OpenAI-compatible server."""

    base: str  # e.g. http://127.0.0.1:8000
    chat_url: str
    models_url: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """``http://host:port``, ``…/v1`` or ``…/v1/chat/completions``."""
        text = url.strip().rstrip("/")
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(f"--endpoint {url!r}: must be an http:// or https:// URL "
                             "(e.g. http://127.0.0.1:8000)")
        if text.endswith("/chat/completions"):
            root = text.removesuffix("/chat/completions")
        elif text.endswith("/v1"):
            root = text
        else:
            root = text + "/v1"
        return cls(base=f"{parts.scheme}://{parts.netloc}", chat_url=root + "/chat/completions",
                   models_url=root + "/models")


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What every request carries and how long it may take."""

    endpoint: Endpoint
    model: str  # the server's model name
    api_key: str | None = field(default=None, repr=False)
    ignore_eos: bool = True  # vLLM/SGLang extension: generate exactly max_tokens
    include_usage: bool = True  # stream_options.include_usage: exact token counts
    timeout_s: float = 300.0  # one request, end to end
    connect_timeout_s: float = 5.0
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("timeout_s", "connect_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name}={value!r} must be a positive number of seconds")

    def headers(self) -> dict[str, str]:
        out = {"content-type": "application/json", "accept": "text/event-stream"}
        if self.api_key:
            out["authorization"] = f"Bearer {self.api_key}"
        return out

    def body(self, spec: RequestSpec) -> bytes:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": spec.prompt}],
            "max_tokens": spec.max_tokens,
            "stream": True,
        }
        if self.ignore_eos:
            payload["ignore_eos"] = True
        if self.include_usage:
            payload["stream_options"] = {"include_usage": True}
        payload.update(self.extra_body)
        return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request's outcome; times in ms from its scheduled send time (NaN when unknown)."""

    rate_rps: float
    index: int
    scheduled_s: float  # from the rate's start
    send_lag_ms: float
    success: bool
    error: str  # "" on success
    status_code: int  # 0: no HTTP response
    ttft_ms: float
    tpot_ms: float
    e2e_ms: float
    itl_max_ms: float
    input_tokens: int
    output_tokens: int
    chunks: int

    @property
    def done_s(self) -> float:
        """When it ended, in s from the rate's start (NaN when unknown)."""
        return self.scheduled_s + self.e2e_ms / 1e3


class StreamedResponse(Protocol):
    """What a request needs of a streamed response (``httpx.Response`` has it)."""

    @property
    def status_code(self) -> int: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...


class StreamingClient(Protocol):
    """Sends one streaming request (``httpx.AsyncClient.stream``'s shape)."""

    def stream(self, method: str, url: str, *, content: bytes, headers: dict[str, str]
               ) -> AbstractAsyncContextManager[StreamedResponse]: ...


class _StreamError(Exception):
    """The stream broke the protocol (the message is the row's error)."""


class _Timing:
    """Mutable measurements of one request while it runs."""

    __slots__ = ("chunks", "done", "first", "last", "max_gap", "prompt_tokens", "status",
                 "usage_tokens")

    def __init__(self) -> None:
        self.status = 0
        self.first = math.nan
        self.last = math.nan
        self.max_gap = 0.0
        self.chunks = 0
        self.usage_tokens: int | None = None
        self.prompt_tokens: int | None = None
        self.done = False

    def text_chunk(self, now: float) -> bool:
        """Record a chunk with text; True for the first one."""
        first = self.chunks == 0
        if first:
            self.first = now
        else:
            self.max_gap = max(self.max_gap, now - self.last)
        self.last = now
        self.chunks += 1
        return first


def _has_text(obj: Mapping[str, Any]) -> bool:
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    choice = choices[0]
    if not isinstance(choice, dict):
        raise _StreamError("malformed stream: a choice is not an object")
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return bool(delta.get("content") or delta.get("reasoning_content"))
    return bool(choice.get("text"))


def _event(payload: bytes, timing: _Timing, now: float) -> bool:
    """Handle one ``data:`` payload; True when it carried the first text."""
    if payload == b"[DONE]":
        timing.done = True
        return False
    if timing.done:
        raise _StreamError("malformed stream: data after [DONE]")
    try:
        obj = json.loads(payload)
    except ValueError:
        raise _StreamError(f"malformed stream: not JSON: {payload[:80]!r}") from None
    if not isinstance(obj, dict):
        raise _StreamError(f"malformed stream: not an object: {payload[:80]!r}")
    if "error" in obj:
        raise _StreamError(f"error event: {str(obj['error'])[:_ERROR_BODY_CHARS]}")
    usage = obj.get("usage")
    if isinstance(usage, dict):
        if isinstance(usage.get("completion_tokens"), int):
            timing.usage_tokens = usage["completion_tokens"]
        if isinstance(usage.get("prompt_tokens"), int):
            timing.prompt_tokens = usage["prompt_tokens"]
    return timing.text_chunk(now) if _has_text(obj) else False


async def _read_stream(response: StreamedResponse, timing: _Timing,
                       on_first: Callable[[], None] | None) -> None:
    buffer = b""
    async for data in response.aiter_bytes():
        now = time.perf_counter()
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue  # blank separators, comments (": ping"), event:/id: fields
            if _event(line[5:].strip(), timing, now) and on_first is not None:
                on_first()
    if buffer.strip():
        raise _StreamError("malformed stream: ended inside an event")
    if not timing.done:
        raise _StreamError("incomplete stream: ended without [DONE]")
    if timing.chunks == 0:
        raise _StreamError("empty stream: no generated text")


def _http_error(status: int, body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return f"HTTP {status}: {text[:_ERROR_BODY_CHARS]}"


def _describe(exc: BaseException) -> str:
    """A short, stable error text for a transport failure."""
    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (httpx.ConnectTimeout, "connect timeout"), (httpx.ConnectError, "connect error"),
        (httpx.ReadTimeout, "read timeout"), (httpx.WriteTimeout, "write timeout"),
        (httpx.PoolTimeout, "pool timeout"),
        (httpx.RemoteProtocolError, "protocol error"), (httpx.ReadError, "read error"),
        (httpx.WriteError, "write error"), (TimeoutError, "timeout"),
    )
    kind = next((k for t, k in kinds if isinstance(exc, t)), type(exc).__name__)
    detail = str(exc).strip()
    return f"{kind}: {detail[:_ERROR_BODY_CHARS]}" if detail else kind


async def _exchange(client: StreamingClient, settings: ClientSettings, body: bytes,
                    timing: _Timing, on_first: Callable[[], None] | None) -> None:
    async with asyncio.timeout(settings.timeout_s), client.stream(
            "POST", settings.endpoint.chat_url, content=body,
            headers=settings.headers()) as response:
        timing.status = response.status_code
        if response.status_code != 200:
            raise _StreamError(_http_error(response.status_code, await _head(response)))
        await _read_stream(response, timing, on_first)


async def _head(response: StreamedResponse, limit: int = 2048) -> bytes:
    out = b""
    async for data in response.aiter_bytes():
        out += data
        if len(out) >= limit:
            break
    return out


async def send_request(client: StreamingClient, settings: ClientSettings, spec: RequestSpec,
                       *, rate_rps: float, index: int, scheduled_s: float, origin: float,
                       on_first: Callable[[], None] | None = None,
                       on_cancelled: Callable[[RequestRecord], None] | None = None,
                       limit: asyncio.Semaphore | None = None) -> RequestRecord:
    """Send one streaming request and measure it; ``origin + scheduled_s`` is its intended
    send time on ``time.perf_counter``'s clock; ``limit`` (a concurrency limit) is held while
    it runs. Never raises except ``CancelledError``, and then only after handing the
    cancelled request's row to ``on_cancelled``."""
    intended = origin + scheduled_s
    start = math.nan
    timing = _Timing()
    error = ""
    acquired = False
    try:
        if limit is not None:
            await limit.acquire()
            acquired = True
        start = time.perf_counter()
        await _exchange(client, settings, settings.body(spec), timing, on_first)
    except _StreamError as exc:
        error = str(exc)
    except asyncio.CancelledError as exc:
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else "cancelled"
        if on_cancelled is not None:
            on_cancelled(_record(spec, rate_rps, index, scheduled_s, intended, start, timing,
                                 f"cancelled: {reason}"))
        raise
    except Exception as exc:  # a failed request is a row, never a crash
        error = _describe(exc)
    finally:
        if acquired:
            assert limit is not None
            limit.release()
    return _record(spec, rate_rps, index, scheduled_s, intended, start, timing, error)


def _record(spec: RequestSpec, rate_rps: float, index: int, scheduled_s: float,
            intended: float, start: float, timing: _Timing, error: str) -> RequestRecord:
    end = time.perf_counter()
    ok = not error
    tokens = timing.usage_tokens if timing.usage_tokens is not None else timing.chunks
    ttft = (timing.first - intended) * 1e3 if timing.chunks else math.nan
    e2e = (end - intended) * 1e3
    tpot = (e2e - ttft) / (tokens - 1) if ok and tokens > 1 else math.nan
    return RequestRecord(
        rate_rps=rate_rps, index=index, scheduled_s=scheduled_s,
        send_lag_ms=(start - intended) * 1e3, success=ok, error=error,
        status_code=timing.status, ttft_ms=ttft, tpot_ms=tpot, e2e_ms=e2e,
        itl_max_ms=timing.max_gap * 1e3 if timing.chunks > 1 else math.nan,
        input_tokens=timing.prompt_tokens if timing.prompt_tokens is not None
        else spec.input_tokens,
        output_tokens=tokens, chunks=timing.chunks)


async def check_endpoint(client: httpx.AsyncClient, settings: ClientSettings,
                         deadline_s: float = CHECK_DEADLINE_S) -> tuple[str, ...]:
    """The models the server lists (empty if it has no ``/models``); ``EndpointError`` when
    nothing answers within ``deadline_s`` or the server rejects the key."""
    url = settings.endpoint.models_url
    try:
        async with asyncio.timeout(deadline_s):
            response = await client.get(url, headers=settings.headers())
    except (TimeoutError, httpx.TimeoutException):
        raise EndpointError(f"--endpoint {settings.endpoint.base}: no answer from {url} within "
                            f"{deadline_s:g} s") from None
    except httpx.HTTPError as exc:
        raise EndpointError(f"--endpoint {settings.endpoint.base}: cannot reach {url} "
                            f"({_describe(exc)}); is the server running?") from None
    if response.status_code in (401, 403):
        raise EndpointError(f"--endpoint {settings.endpoint.base}: {url} rejected the request "
                            f"(HTTP {response.status_code}); pass the key with --api-key-env")
    if response.status_code != 200:
        return ()
    try:
        data = response.json().get("data", [])
        return tuple(str(m["id"]) for m in data if isinstance(m, dict) and "id" in m)
    except (ValueError, AttributeError, TypeError):
        return ()


def _optional_fields(settings: ClientSettings) -> list[ClientSettings]:
    """Settings to try in turn: as given, without ignore_eos, without stream_options too."""
    tries = [settings]
    if settings.ignore_eos:
        tries.append(replace(tries[-1], ignore_eos=False))
    if settings.include_usage:
        tries.append(replace(tries[-1], include_usage=False))
    return tries


async def probe(client: httpx.AsyncClient, settings: ClientSettings, spec: RequestSpec
                ) -> tuple[ClientSettings, tuple[str, ...]]:
    """One short streaming request (also a warm-up): the settings the server accepts and
    notes on what was dropped; ``EndpointError`` naming the answer when none works."""
    notes: list[str] = []
    record: RequestRecord | None = None
    for attempt in _optional_fields(settings):
        record = await send_request(client, attempt, spec, rate_rps=0.0, index=-1,
                                    scheduled_s=0.0, origin=time.perf_counter())
        if record.success:
            dropped = [n for n in ("ignore_eos", "include_usage")
                       if getattr(settings, n) and not getattr(attempt, n)]
            if dropped:
                notes.append(f"the server rejected {' and '.join(dropped)}; sent without")
            return attempt, tuple(notes)
        if record.status_code not in (400, 422):
            break
    assert record is not None
    raise EndpointError(f"--endpoint {settings.endpoint.base}: a test request for model "
                        f"{settings.model!r} failed: {record.error}")
