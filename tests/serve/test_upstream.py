"""The gateway's hot-path client (``serve.upstream.RawUpstream``) against a scripted asyncio
server: chunked and Content-Length bodies split at every byte, keep-alive reuse,
``Connection: close``, the idle-close race, timeouts and failures as named errors; the
httpx adapter's error mapping; and ``rank``'s numpy-free path against the softmax one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerwise.serve.routing import rank, softmax_rank
from routerwise.serve.upstream import (
    HttpxUpstream,
    RawUpstream,
    UpstreamClosedError,
    UpstreamConnectError,
    UpstreamTimeoutError,
)

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CHUNKED = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
           b"transfer-encoding: chunked\r\n\r\n"
           b"6\r\ndata: \r\n5;ext=1\r\nhello\r\n0\r\n\r\n")


async def _serve(reply: Reply, test: Callable[[str, list[bytes]], Awaitable[None]]) -> None:
    """Run ``test(url, heads)`` against a server answering each request with ``reply``;
    ``heads`` collects each request's head, one connection's requests in a row, with a
    ``b"--new connection--"`` marker before each connection's first."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(b"--new connection--")
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head)
                length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n")
                               if h.lower().startswith(b"content-length")), 0)
                await reader.readexactly(length)
                await reply(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await test(f"http://127.0.0.1:{port}", heads)


def _upstream(url: str, read_s: float = 2.0) -> RawUpstream:
    return RawUpstream(url, connect_s=2.0, read_s=read_s, keepalive_s=3.0, max_idle=8)


async def _body(up: RawUpstream, path: str = "/v1/x") -> tuple[int, list[bytes]]:
    resp = await up.post(path, b'{"a":1}', {"x-request-id": "r1"})
    parts = []
    while data := await resp.next():
        assert not resp.finished or not await resp.next()  # finished: nothing more comes
        parts.append(data)
    assert resp.finished
    await resp.aclose()
    return resp.status, parts


def test_chunked_body_byte_by_byte_and_keep_alive() -> None:
    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i in range(len(CHUNKED)):  # every split point of head, sizes and data
            writer.write(CHUNKED[i:i + 1])
            await writer.drain()

    async def test(url: str, heads: list[bytes]) -> None:
        up = _upstream(f"{url}/prefix")
        for _ in range(3):
            status, parts = await _body(up)
            assert status == 200 and b"".join(parts) == b"data: hello"
        assert heads.count(b"--new connection--") == 1  # reused
        assert heads[1].startswith(b"POST /prefix/v1/x HTTP/1.1\r\n")
        assert b"x-request-id: r1" in heads[1] and b"content-length: 7" in heads[1]
        await up.aclose()

    asyncio.run(_serve(reply, test))


def test_trailers_and_a_long_chunk_in_many_reads() -> None:
    long = bytes(range(256)) * 800  # 200 kB in one chunk

    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        message = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                   + b"%x\r\n" % len(long) + long + b"\r\n3\r\nend\r\n"
                   + b"0\r\nx-trailer: 1\r\n\r\n")
        for i in range(0, len(message), 1000):
            writer.write(message[i:i + 1000])
            await writer.drain()

    async def test(url: str, heads: list[bytes]) -> None:
        up = _upstream(url)
        for _ in range(2):
            status, parts = await _body(up)
            assert status == 200 and b"".join(parts) == long + b"end"
        assert heads.count(b"--new connection--") == 1  # the trailer ended the body

    asyncio.run(_serve(reply, test))


def test_content_length_and_connection_close() -> None:
    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 7\r\nconnection: close\r\n"
                     b"content-type: application/json\r\n\r\n{\"a\":1}")
        writer.close()

    async def test(url: str, heads: list[bytes]) -> None:
        up = _upstream(url)
        for _ in range(2):
            resp = await up.post("/v1/x", b"{}", {})
            assert resp.status == 201 and resp.headers["content-type"] == "application/json"
            assert await resp.read() == b'{"a":1}'
            await resp.aclose()
        assert heads.count(b"--new connection--") == 2  # closed by the server: not reused

    asyncio.run(_serve(reply, test))


def test_a_keep_alive_connection_closed_by_the_server_is_replaced() -> None:
    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED)  # keep-alive claimed, then closed: the idle-close race
        await writer.drain()
        writer.close()

    async def test(url: str, heads: list[bytes]) -> None:
        up = _upstream(url)
        for _ in range(3):
            await asyncio.sleep(0.05)  # the close has reached the client
            assert b"".join((await _body(up))[1]) == b"data: hello"
        assert heads.count(b"--new connection--") == 3

    asyncio.run(_serve(reply, test))


def test_a_request_on_a_connection_closed_unanswered_is_sent_again_once() -> None:
    """The server closes a kept-alive connection on its second request, unanswered: the
    request goes out again on a fresh connection (no byte of an answer had come)."""
    async def test(url: str, heads: list[bytes]) -> None:
        up = _upstream(url)
        for _ in range(3):
            assert b"".join((await _body(up))[1]) == b"data: hello"
        assert heads.count(b"--new connection--") == 3
        assert len(heads) == 3 + 5  # requests 2 and 3 were each sent twice

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(b"--new connection--")
        for answered in (True, False):
            head = await reader.readuntil(b"\r\n\r\n")
            heads.append(head)
            await reader.readexactly(7)
            if answered:
                writer.write(CHUNKED)
        writer.close()

    async def run() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            await test(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", heads)

    heads: list[bytes] = []
    asyncio.run(run())


def test_failures_are_named() -> None:
    async def cut(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED[:-12])  # dies mid-body
        writer.close()

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def garbage(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n")

    async def test_cut(url: str, _: list[bytes]) -> None:
        with pytest.raises(UpstreamClosedError, match="mid-body"):
            await _body(_upstream(url))

    async def test_silent(url: str, _: list[bytes]) -> None:
        with pytest.raises(UpstreamTimeoutError):
            await _upstream(url, read_s=0.2).post("/v1/x", b"{}", {})

    async def test_garbage(url: str, _: list[bytes]) -> None:
        with pytest.raises(UpstreamClosedError, match="malformed"):
            await _body(_upstream(url))

    async def refused() -> None:
        with pytest.raises(UpstreamConnectError):
            await _upstream("http://127.0.0.1:1").post("/v1/x", b"{}", {})

    asyncio.run(_serve(cut, test_cut))
    asyncio.run(_serve(silent, test_silent))
    asyncio.run(_serve(garbage, test_garbage))
    asyncio.run(refused())


def test_a_slow_reader_pauses_the_backend_and_gets_everything() -> None:
    big = b"x" * (3 << 20)

    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(big) + big)
        await writer.drain()

    async def test(url: str, _: list[bytes]) -> None:
        resp = await _upstream(url).post("/v1/x", b"{}", {})
        await asyncio.sleep(0.3)  # the backend writes ahead of us
        assert await resp.read() == big
        await resp.aclose()

    asyncio.run(_serve(reply, test))


def test_httpx_adapter_maps_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            raise httpx.ConnectError("refused")
        if request.url.path == "/slow":
            raise httpx.ReadTimeout("slow")
        raise httpx.RemoteProtocolError("garbage")

    async def run() -> None:
        async with httpx.AsyncClient(base_url="http://b.invalid",
                                     transport=httpx.MockTransport(handler)) as client:
            up = HttpxUpstream(client)
            for path, error in (("/down", UpstreamConnectError),
                                ("/slow", UpstreamTimeoutError), ("/bad", UpstreamClosedError)):
                with pytest.raises(error):
                    await up.post(path, b"{}", {})

    asyncio.run(run())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.5, 0.5000001, 0.9]),
                          st.sampled_from([0.0, 0.05, 0.1]), st.booleans()),
                min_size=1, max_size=5),
       st.sampled_from([0.0, 1e-9, 1e-3, 0.05]), st.integers(0, 3))
def test_rank_matches_the_softmax_rank(rows: list[tuple[float, float, bool]], temp: float,
                                       seed: int) -> None:
    scores = np.array([r[0] for r in rows])
    prices = np.array([r[1] for r in rows])
    available = [r[2] for r in rows]
    assert (rank(scores, prices, temp, available, np.random.default_rng(seed))
            == softmax_rank(scores, prices, temp, available, np.random.default_rng(seed)))
