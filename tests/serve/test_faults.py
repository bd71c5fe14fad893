"""Faults at the gateway, with scripted backends (``httpx.MockTransport``): fallback before
any byte, no retry once a stream started, 429 when saturated, 503 when nothing answers,
health checks that take a backend out and put it back, and a drain on shutdown."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

openai = pytest.importorskip("openai")

from tests.serve.planfixture import LARGE, MODELS, SMALL, ServeFixture  # noqa: E402
from tests.serve.servers import ServerThread  # noqa: E402
from tests.serve.test_gateway import config, gateway, sdk  # noqa: E402

Handler = Callable[[httpx.Request], Any]


def _chunk(text: str) -> bytes:
    return f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': text}}]})}\n\n"\
        .encode()


class Scripted:
    """A backend whose completions behave as ``mode`` says; counts the calls."""

    def __init__(self, model: str, mode: str = "ok", delay_s: float = 0.0) -> None:
        self.model, self.mode, self.delay_s = model, mode, delay_s
        self.calls = 0
        self.lock = threading.Lock()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            if self.mode == "down":
                raise httpx.ConnectError("refused")
            return httpx.Response(200, json={"status": "ok"})
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": self.model}]})
        with self.lock:
            self.calls += 1
        if self.mode == "down":
            raise httpx.ConnectError("refused")
        if self.mode == "busy":
            return httpx.Response(429, json={"error": {"message": "busy"}})
        return httpx.Response(200, content=self._stream(),
                              headers={"content-type": "text/event-stream"})

    async def _stream(self) -> AsyncIterator[bytes]:
        yield b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
        await asyncio.sleep(self.delay_s)
        if self.mode == "dies_before_token":
            raise httpx.ReadError("connection reset")
        yield _chunk(f"from {self.model}")
        if self.mode == "dies_mid_stream":
            raise httpx.ReadError("connection reset")
        await asyncio.sleep(self.delay_s)
        yield _chunk(" done")
        yield b"data: [DONE]\n\n"


def _urls() -> dict[str, str]:
    return {SMALL: "http://small.invalid", LARGE: "http://large.invalid"}


def _stream_text(url: str, model: str = "routerwise") -> tuple[str, str]:
    raw = sdk(url).chat.completions.with_raw_response.create(
        model=model, stream=True, messages=[{"role": "user", "content": "hello weather"}])
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse())
    return text, raw.headers["x-routerwise-model"]


def test_a_dead_backend_falls_back_to_the_next_model(serve_fixture: ServeFixture) -> None:
    small, large = Scripted(SMALL, "down"), Scripted(LARGE)
    with gateway(serve_fixture, _urls(), {SMALL: httpx.MockTransport(small),
                                          LARGE: httpx.MockTransport(large)}) as server:
        for _ in range(5):
            text, served = _stream_text(server.url)
            assert (text, served) == (f"from {LARGE} done", LARGE)
        health = httpx.get(f"{server.url}/health").json()
        assert health["backends"][SMALL]["healthy"] is False
        with pytest.raises(openai.APIStatusError) as info:  # named: no fallback
            _stream_text(server.url, SMALL)
        assert info.value.status_code == 503


def test_failure_before_the_first_token_is_retried_once_elsewhere(
        serve_fixture: ServeFixture) -> None:
    small, large = Scripted(SMALL, "dies_before_token"), Scripted(LARGE, "dies_before_token")
    with gateway(serve_fixture, _urls(), {SMALL: httpx.MockTransport(small),
                                          LARGE: httpx.MockTransport(large)}) as server:
        with pytest.raises(openai.APIStatusError) as info:
            _stream_text(server.url)
        assert info.value.status_code == 503
        assert "no backend could serve" in info.value.message
        assert (small.calls, large.calls) == (1, 1)  # each tried once, no more


def test_no_retry_once_bytes_were_streamed(serve_fixture: ServeFixture) -> None:
    small, large = Scripted(SMALL, "dies_mid_stream"), Scripted(LARGE, "dies_mid_stream")
    with gateway(serve_fixture, _urls(), {SMALL: httpx.MockTransport(small),
                                          LARGE: httpx.MockTransport(large)}) as server:
        with pytest.raises(openai.APIError, match="failed mid-stream"):
            _stream_text(server.url)
        assert small.calls + large.calls == 1  # never duplicated


def test_a_client_that_leaves_mid_stream_stops_the_relay(serve_fixture: ServeFixture) -> None:
    """The client reads the first token and hangs up: the gateway stops relaying (and
    closes the backend's response) instead of reading it to the end; counted as 499."""
    small, large = Scripted(SMALL, delay_s=0.3), Scripted(LARGE, delay_s=0.3)
    with gateway(serve_fixture, _urls(), {SMALL: httpx.MockTransport(small),
                                          LARGE: httpx.MockTransport(large)}) as server:
        async def leave_after_first_token() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            body = json.dumps({"model": "routerwise", "stream": True, "messages": [
                {"role": "user", "content": "hello"}]}).encode()
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                         b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                         % (len(body), body))
            seen = b""
            while b"from " not in seen:
                seen += await reader.read(4096)
            writer.close()

        asyncio.run(leave_after_first_token())
        deadline = time.monotonic() + 5
        while 'code="499"' not in (text := httpx.get(f"{server.url}/metrics").text):
            assert time.monotonic() < deadline, "the relay never noticed the client left"
            time.sleep(0.05)
        assert 'code="200"' not in text


def test_saturation_answers_429_with_retry_after(serve_fixture: ServeFixture) -> None:
    small, large = Scripted(SMALL, "busy"), Scripted(LARGE, "busy")
    with gateway(serve_fixture, _urls(), {SMALL: httpx.MockTransport(small),
                                          LARGE: httpx.MockTransport(large)}) as server:
        resp = httpx.post(f"{server.url}/v1/chat/completions", json={
            "model": "routerwise", "messages": [{"role": "user", "content": "x"}]})
        assert resp.status_code == 429 and resp.headers["retry-after"] == "1"
        assert resp.json()["error"]["type"] == "rate_limit_error"


def test_in_flight_limit_saturates(serve_fixture: ServeFixture) -> None:
    small, large = Scripted(SMALL, delay_s=0.5), Scripted(LARGE, delay_s=0.5)
    with gateway(serve_fixture, _urls(), {SMALL: httpx.MockTransport(small),
                                          LARGE: httpx.MockTransport(large)},
                 max_running_per_backend=1) as server:
        async def three() -> list[int]:
            async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
                async def one() -> int:
                    r = await client.post("/v1/chat/completions", json={
                        "model": "routerwise", "stream": True,
                        "messages": [{"role": "user", "content": "x"}]})
                    return r.status_code
                return await asyncio.gather(*(one() for _ in range(3)))

        assert sorted(asyncio.run(three())) == [200, 200, 429]


def test_health_checks_take_out_and_put_back(serve_fixture: ServeFixture) -> None:
    small, large = Scripted(SMALL), Scripted(LARGE)
    with gateway(serve_fixture, _urls(), {SMALL: httpx.MockTransport(small),
                                          LARGE: httpx.MockTransport(large)},
                 health_interval_s=0.05) as server:
        def healthy() -> bool:
            return bool(httpx.get(f"{server.url}/health").json()["backends"][SMALL]["healthy"])

        def wait_for(value: bool) -> None:
            deadline = time.monotonic() + 5
            while healthy() != value:
                assert time.monotonic() < deadline, f"health never became {value}"
                time.sleep(0.02)

        assert healthy()
        small.mode = "down"
        wait_for(False)
        assert all(_stream_text(server.url)[1] == LARGE for _ in range(3))
        small.mode = "ok"
        wait_for(True)


def test_shutdown_drains_in_flight_streams(serve_fixture: ServeFixture) -> None:
    from routerwise.serve.app import create_app

    small, large = Scripted(SMALL, delay_s=0.4), Scripted(LARGE, delay_s=0.4)
    app = create_app(config(serve_fixture, _urls()), {SMALL: httpx.MockTransport(small),
                                                      LARGE: httpx.MockTransport(large)})
    server = ServerThread(app, timeout_graceful_shutdown=10).start()
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(_stream_text(server.url)[0]))
    worker.start()
    time.sleep(0.2)  # the stream is in flight
    server.stop()
    worker.join(timeout=10)
    assert len(result) == 1 and result[0].startswith("from ") and result[0].endswith(" done")
    assert set(MODELS) == {SMALL, LARGE}


def test_a_backend_silent_after_its_head_is_hung_up_on(serve_fixture: ServeFixture) -> None:
    """A real TCP backend (the lean upstream) answers the head and the role chunk, then
    nothing: after ``first_token_timeout_s`` the gateway tries the other model and hangs
    up on the silent one (so a real engine stops generating for nobody)."""
    hung_up: list[float] = []
    role = b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n")
                      if h.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(role), role))
        sent = time.monotonic()
        await reader.read()  # EOF: the gateway hung up
        hung_up.append(time.monotonic() - sent)
        writer.close()

    ready, done = threading.Event(), threading.Event()
    port: list[int] = []

    def serve() -> None:
        async def main() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port.append(server.sockets[0].getsockname()[1])
            ready.set()
            async with server:
                while not done.is_set():
                    await asyncio.sleep(0.05)

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(5)
    url = f"http://127.0.0.1:{port[0]}"
    with gateway(serve_fixture, {SMALL: url, LARGE: url}, first_token_timeout_s=0.3,
                 health_interval_s=60) as server:
        with pytest.raises(openai.APIStatusError) as info:
            _stream_text(server.url)
        assert info.value.status_code == 503
        deadline = time.monotonic() + 3
        while len(hung_up) < 2:
            assert time.monotonic() < deadline, f"hung up on {len(hung_up)} of 2 attempts"
            time.sleep(0.02)
    done.set()
    thread.join(10)
    assert all(0.2 < s < 2.0 for s in hung_up), hung_up
