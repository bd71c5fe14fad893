"""The lean backend transport (``serve.transport``) against a scripted asyncio server:
chunked and Content-Length bodies, keep-alive reuse, ``Connection: close``, and failures
mapped to httpx's exceptions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from routerwise.serve.transport import StreamTransport

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CHUNKED = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
           b"transfer-encoding: chunked\r\n\r\n"
           b"6\r\ndata: \r\n5\r\nhello\r\n0\r\n\r\n")


async def _serve(reply: Reply, test: Callable[[str, list[int]], Awaitable[None]]) -> None:
    """Run ``test(url, connections)`` against a server answering each request with
    ``reply``; ``connections`` counts the TCP connections accepted."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
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
        await test(f"http://127.0.0.1:{port}", connections)


def _client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, transport=StreamTransport(3.0, 8),
                             timeout=httpx.Timeout(2.0))


def test_chunked_stream_and_keep_alive() -> None:
    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED)

    async def test(url: str, connections: list[int]) -> None:
        async with _client(url) as client:
            for _ in range(3):
                async with client.stream("POST", "/v1/x", content=b'{"a":1}') as resp:
                    assert resp.status_code == 200
                    assert [c async for c in resp.aiter_raw()] == [b"data: ", b"hello"]
        assert len(connections) == 1  # reused

    asyncio.run(_serve(reply, test))


def test_content_length_and_connection_close() -> None:
    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 7\r\nconnection: close\r\n"
                     b"content-type: application/json\r\n\r\n{\"a\":1}")
        writer.close()

    async def test(url: str, connections: list[int]) -> None:
        async with _client(url) as client:
            for _ in range(2):
                resp = await client.post("/v1/x", json={"q": 1})
                assert resp.status_code == 201 and resp.json() == {"a": 1}
        assert len(connections) == 2  # closed by the server: not reused

    asyncio.run(_serve(reply, test))


def test_failures_are_httpx_errors() -> None:
    async def cut(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED[:-12])  # dies mid-body
        writer.close()

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def test_cut(url: str, _: list[int]) -> None:
        async with _client(url) as client:
            with pytest.raises(httpx.ReadError):
                async with client.stream("POST", "/v1/x", content=b"{}") as resp:
                    [c async for c in resp.aiter_raw()]

    async def test_silent(url: str, _: list[int]) -> None:
        async with httpx.AsyncClient(base_url=url, transport=StreamTransport(3.0, 8),
                                     timeout=httpx.Timeout(0.2)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/v1/x", content=b"{}")

    async def refused() -> None:
        async with _client("http://127.0.0.1:1") as client:
            with pytest.raises(httpx.ConnectError):
                await client.post("/v1/x", content=b"{}")

    asyncio.run(_serve(cut, test_cut))
    asyncio.run(_serve(silent, test_silent))
    asyncio.run(refused())


def test_a_keep_alive_connection_closed_by_the_server_is_replaced() -> None:
    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED)  # keep-alive claimed, then closed: the idle-close race
        await writer.drain()
        writer.close()

    async def test(url: str, connections: list[int]) -> None:
        async with _client(url) as client:
            for _ in range(3):
                resp = await client.post("/v1/x", content=b"{}")
                assert resp.status_code == 200 and resp.content == b"data: hello"
        assert len(connections) == 3

    asyncio.run(_serve(reply, test))
