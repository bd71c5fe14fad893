"""``LeanTransport``: bodies by length, chunks and close; keep-alive reuse; a stale pooled
connection retried once; failures as httpx's exception types."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from routerwise.profiles.transport import LeanTransport, RawStreamer, _parse_chunks


async def _serve(responses: list[bytes], close_after_each: bool) -> tuple[asyncio.Server, int,
                                                                          list[int]]:
    """A server that answers requests in order with ``responses``; counts connections."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while responses:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                await reader.readexactly(length)
                writer.write(responses.pop(0))
                await writer.drain()
                if close_after_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


def test_framings_and_keep_alive() -> None:
    async def go() -> tuple[list[bytes], int]:
        server, port, conns = await _serve([
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n"
            b"0\r\nx-trailer: 1\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\nuntil close",
        ], close_after_each=False)
        async with server, httpx.AsyncClient(transport=LeanTransport()) as client:
            url = f"http://127.0.0.1:{port}/v1/x"
            bodies = [(await client.get(url)).content,
                      (await client.post(url, content=b"q")).content]
            last = await client.get(url)
            assert last.status_code == 404
            bodies.append(last.content)
        return bodies, len(conns)

    bodies, connections = asyncio.run(go())
    assert bodies == [b"hello", b"abcde", b"until close"]
    assert connections == 1  # one keep-alive connection served all three


def test_a_stale_pooled_connection_is_retried_once() -> None:
    async def go() -> tuple[bytes, int]:
        ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        server, port, conns = await _serve([ok, ok], close_after_each=True)
        async with server, httpx.AsyncClient(transport=LeanTransport()) as client:
            url = f"http://127.0.0.1:{port}/"
            await client.get(url)
            await asyncio.sleep(0.05)  # the server has closed the pooled connection
            body = (await client.get(url)).content
        return body, len(conns)

    body, connections = asyncio.run(go())
    assert body == b"ok" and connections == 2


def test_failures_are_httpx_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def refused() -> None:
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            await client.get(f"http://127.0.0.1:{port}/")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(refused())

    async def cut() -> None:
        server, p, _ = await _serve([b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"],
                                    close_after_each=True)
        async with server, httpx.AsyncClient(transport=LeanTransport()) as client:
            await client.get(f"http://127.0.0.1:{p}/")

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(cut())


# ``RawStreamer``: the load generator's hot path on the same pool


async def _raw_get(streamer: RawStreamer, url: str, method: str = "GET"
                   ) -> tuple[int, bytes]:
    async with streamer.stream(method, url, content=b"q" if method == "POST" else b"",
                               headers={"accept": "text/event-stream"}) as response:
        return response.status_code, b"".join([p async for p in response.aiter_bytes()])


def test_raw_streamer_framings_and_keep_alive() -> None:
    async def go() -> tuple[list[tuple[int, bytes]], int]:
        server, port, conns = await _serve([
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n"
            b"0\r\nx-trailer: 1\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\nuntil close",
        ], close_after_each=False)
        transport = LeanTransport()
        streamer = RawStreamer(transport, connect_timeout_s=2)
        async with server:
            url = f"http://127.0.0.1:{port}/v1/x"
            out = [await _raw_get(streamer, url), await _raw_get(streamer, url, "POST"),
                   await _raw_get(streamer, url)]
        await transport.aclose()
        return out, len(conns)

    out, connections = asyncio.run(go())
    assert out == [(200, b"hello"), (200, b"abcde"), (404, b"until close")]
    assert connections == 1


def test_raw_streamer_retries_a_stale_connection_and_maps_failures() -> None:
    ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    async def stale() -> tuple[tuple[int, bytes], int]:
        server, port, conns = await _serve([ok, ok], close_after_each=True)
        streamer = RawStreamer(LeanTransport())
        async with server:
            url = f"http://127.0.0.1:{port}/"
            await _raw_get(streamer, url)
            await asyncio.sleep(0.05)
            return await _raw_get(streamer, url), len(conns)

    assert asyncio.run(stale()) == ((200, b"ok"), 2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        asyncio.run(_raw_get(RawStreamer(LeanTransport()), f"http://127.0.0.1:{port}/"))

    async def cut() -> None:
        server, p, _ = await _serve([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                     b"3\r\nabc\r\n5\r\nde"], close_after_each=True)
        async with server:
            await _raw_get(RawStreamer(LeanTransport()), f"http://127.0.0.1:{p}/")

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(cut())


def test_chunk_parser_at_every_split() -> None:
    """Chunks parsed from whole reads: any split of the bytes gives the same payload."""
    body = b"3\r\nabc\r\n4;ext=1\r\nd\r\nf\r\n1\r\ng\r\n0\r\nx-t: 1\r\n\r\nNEXT"
    for cut in range(len(body) + 1):
        got, buf, done = _parse_chunks(body[:cut])
        if done:  # the whole body was in the first read
            assert cut >= body.index(b"NEXT") and (got, buf + body[cut:]) == (
                b"abcd\r\nfg", b"NEXT"), cut
            continue
        more, rest, done = _parse_chunks(buf + body[cut:])
        assert (got + more, rest, done) == (b"abcd\r\nfg", b"NEXT", True), cut
    with pytest.raises(ValueError):
        _parse_chunks(b"zz\r\nabc\r\n")
