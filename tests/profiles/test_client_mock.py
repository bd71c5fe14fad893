"""The streaming client against ``httpx.MockTransport``: what is measured, and every failure
is a row (never an exception)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from routerwise.profiles.client import (
    ClientSettings,
    Endpoint,
    EndpointError,
    RequestRecord,
    check_endpoint,
    probe,
    send_request,
)
from routerwise.profiles.prompts import RequestSpec

SPEC = RequestSpec("hello", 4, 3)
SETTINGS = ClientSettings(Endpoint.parse("http://test"), "m", timeout_s=2.0)


def event(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def delta(text: str | None = None, role: str | None = None) -> bytes:
    d = {k: v for k, v in (("content", text), ("role", role)) if v is not None}
    return event({"choices": [{"index": 0, "delta": d}]})


async def stream(parts: list[tuple[float, bytes]]) -> AsyncIterator[bytes]:
    for wait, data in parts:
        if wait:
            await asyncio.sleep(wait)
        yield data


Handler = Callable[[httpx.Request], httpx.Response]


def run(handler: Handler, settings: ClientSettings = SETTINGS, **kw: object) -> RequestRecord:
    async def go() -> RequestRecord:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await send_request(client, settings, SPEC, rate_rps=1.0, index=0,
                                      scheduled_s=0.0, origin=time.perf_counter(), **kw)  # type: ignore[arg-type]
    return asyncio.run(go())


def streaming(parts: list[tuple[float, bytes]], status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=stream(parts),
                              headers={"content-type": "text/event-stream"})
    return handler


GOOD = [(0.0, delta(role="assistant")), (0.05, delta("a")), (0.01, delta("b")),
        (0.01, delta("c")), (0.01, delta("d")),
        (0.0, event({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}})),
        (0.0, b"data: [DONE]\n\n")]


def test_ttft_is_the_first_text_not_the_role_chunk() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return streaming(GOOD)(request)

    r = run(handler)
    assert r.success and r.error == "" and r.status_code == 200
    assert r.ttft_ms >= 45  # the role chunk came at once, the first text after 50 ms
    assert r.output_tokens == 4 and r.chunks == 4 and r.input_tokens == 9  # from usage
    assert r.tpot_ms == pytest.approx((r.e2e_ms - r.ttft_ms) / 3)
    assert r.e2e_ms >= r.ttft_ms + 25
    body = json.loads(seen[0])
    assert body["stream"] is True and body["max_tokens"] == 4 and body["ignore_eos"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_events_split_across_reads_and_comments_are_handled() -> None:
    raw = b"".join(d for _, d in GOOD)
    parts = [(0.0, b": ping\n\n")] + [(0.0, raw[i:i + 7]) for i in range(0, len(raw), 7)]
    r = run(streaming(parts))
    assert r.success and r.output_tokens == 4


@pytest.mark.parametrize(("parts", "status", "error"), [
    ([(0.0, b'{"error": "boom"}')], 500, "HTTP 500: {\"error\": \"boom\"}"),
    ([(0.0, delta("a")), (0.0, b"data: {oops\n\n")], 200, "malformed stream: not JSON"),
    ([(0.0, delta("a")), (0.0, delta("b"))], 200, "incomplete stream: ended without [DONE]"),
    ([(0.0, delta("a")), (0.0, b"data: {\"x\"")], 200, "malformed stream: ended inside"),
    ([(0.0, event({"error": {"message": "overloaded"}}))], 200, "error event: "),
    ([(0.0, b"data: [DONE]\n\n")], 200, "empty stream: no generated text"),
    ([(0.0, b"data: [DONE]\n\n"), (0.0, delta("late"))], 200, "data after [DONE]"),
    ([(0.0, b"data: [1, 2]\n\n")], 200, "not an object"),
])
def test_broken_answers_are_error_rows(parts: list[tuple[float, bytes]], status: int,
                                       error: str) -> None:
    r = run(streaming(parts, status))
    assert not r.success and error in r.error
    assert r.status_code == status


def test_transport_failures_are_error_rows() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    r = run(refused)
    assert not r.success and r.error.startswith("connect error") and r.status_code == 0

    def cut(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    assert run(cut).error.startswith("protocol error")


def test_a_request_past_its_limit_is_a_timeout_row() -> None:
    slow = streaming([(0.0, delta("a")), (5.0, delta("b"))])
    settings = ClientSettings(Endpoint.parse("http://test"), "m", timeout_s=0.2)
    t = time.perf_counter()
    r = run(slow, settings)
    assert time.perf_counter() - t < 2
    assert not r.success and r.error.startswith("timeout") and r.chunks == 1


def test_cancellation_hands_over_the_row_and_propagates() -> None:
    rows: list[RequestRecord] = []

    async def go() -> None:
        handler = streaming([(0.0, delta("a")), (5.0, delta("b"))])
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            task = asyncio.create_task(send_request(
                client, SETTINGS, SPEC, rate_rps=1.0, index=7, scheduled_s=0.0,
                origin=time.perf_counter(), on_cancelled=rows.append))
            await asyncio.sleep(0.1)
            task.cancel(msg="interrupted")
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(go())
    assert len(rows) == 1 and rows[0].error == "cancelled: interrupted" and rows[0].index == 7


def test_probe_drops_fields_the_server_rejects() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if "ignore_eos" in body:
            return httpx.Response(400, json={"error": "extra fields not permitted"})
        return streaming(GOOD)(request)

    async def go() -> tuple[ClientSettings, tuple[str, ...]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await probe(client, SETTINGS, SPEC)

    accepted, notes = asyncio.run(go())
    assert accepted.ignore_eos is False and accepted.include_usage is True
    assert "ignore_eos" in notes[0]


def test_probe_names_a_server_that_refuses_the_model() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "model 'm' not found"})

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            await probe(client, SETTINGS, SPEC)

    with pytest.raises(EndpointError, match=r"HTTP 404.*not found"):
        asyncio.run(go())


def test_check_endpoint_lists_models_and_names_a_rejected_key() -> None:
    def ok(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/models"
        return httpx.Response(200, json={"data": [{"id": "m"}, {"id": "n"}]})

    def denied(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "bad key"})

    async def go(handler: Handler) -> tuple[str, ...]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await check_endpoint(client, SETTINGS)

    assert asyncio.run(go(ok)) == ("m", "n")
    with pytest.raises(EndpointError, match=r"HTTP 401.*--api-key-env"):
        asyncio.run(go(denied))


def test_api_key_goes_in_the_header_and_not_in_the_repr() -> None:
    s = ClientSettings(Endpoint.parse("http://test"), "m", api_key="sekrit")
    assert s.headers()["authorization"] == "Bearer sekrit"
    assert "sekrit" not in repr(s)
