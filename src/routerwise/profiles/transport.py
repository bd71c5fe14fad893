"""A lean HTTP/1.1 transport for httpx, so the load generator is not the bottleneck.

httpx's default transport (httpcore's connection pool over anyio) costs ~1.4 ms of CPU per
streamed request on this project's 2-core machines, and its pool scans every connection on
every event (quadratic in the requests in flight). ``LeanTransport`` is an
``httpx.AsyncBaseTransport`` on plain asyncio streams: keep-alive connections in a LIFO
pool per origin, chunked / content-length / until-close bodies, ``https`` through asyncio's
TLS. httpx above it is unchanged (request building, headers, decoding), and a test can
inject any other transport (``httpx.MockTransport``) instead.

Limits, by design: no HTTP/2, no proxies, no ``Expect: 100-continue``; the connect timeout
is honoured here and the whole request's limit by the caller (``asyncio.timeout`` around
it), not per read. Failures map to httpx's exception types (``ConnectError``,
``ConnectTimeout``, ``RemoteProtocolError``, ``ReadError``) so callers see the same errors
as with the default transport. A request on a pooled connection that the server had
closed meanwhile is retried once on a fresh connection (nothing was received yet).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

_READ = 65536


@dataclass(eq=False)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    reused: bool = False


@dataclass
class _Pool:
    idle: dict[tuple[str, str, int], list[_Conn]] = field(default_factory=dict)
    max_idle: int = 256


class _StaleConnectionError(Exception):
    """A pooled connection turned out closed before any response byte."""


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, url.host, port


def _head(request: httpx.Request, body: bytes) -> bytes:
    target = request.url.raw_path.decode("ascii")
    lines = [f"{request.method} {target} HTTP/1.1"]
    headers = request.headers
    for key, value in headers.multi_items():
        if key.lower() not in ("content-length", "transfer-encoding"):
            lines.append(f"{key}: {value}")
    if body or request.method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        key, sep, value = line.partition(b":")
        if sep:
            headers.append((key.strip(), value.strip()))
    return int(parts[1]), headers


class _Body(httpx.AsyncByteStream):
    """The response body; the connection goes back to the pool once read to its end."""

    def __init__(self, transport: LeanTransport, origin: tuple[str, str, int], conn: _Conn,
                 framing: str, length: int, keep_alive: bool) -> None:
        self.transport, self.origin, self.conn = transport, origin, conn
        self.framing, self.length, self.keep_alive = framing, length, keep_alive
        self.complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._pieces():
                yield piece
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body") from exc
        except (ConnectionError, OSError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc

    async def _pieces(self) -> AsyncIterator[bytes]:
        reader = self.conn.reader
        if self.framing == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    break
                yield await reader.readexactly(size)
                await reader.readexactly(2)
        elif self.framing == "length":
            left = self.length
            while left > 0:
                data = await reader.read(min(left, _READ))
                if not data:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(data)
                yield data
        else:
            while data := await reader.read(_READ):
                yield data
            self.keep_alive = False
        self.complete = True

    async def aclose(self) -> None:
        if self.complete and self.keep_alive:
            self.transport.release(self.origin, self.conn)
        else:
            self.conn.writer.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams with a keep-alive pool (see the module docstring)."""

    def __init__(self, max_idle: int = 256) -> None:
        self._pool = _Pool(max_idle=max_idle)

    def release(self, origin: tuple[str, str, int], conn: _Conn) -> None:
        idle = self._pool.idle.setdefault(origin, [])
        if len(idle) < self._pool.max_idle and not conn.reader.at_eof():
            conn.reused = True
            idle.append(conn)
        else:
            conn.writer.close()

    async def _connect(self, request: httpx.Request, origin: tuple[str, str, int]) -> _Conn:
        idle = self._pool.idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.reader.at_eof():
                return conn
            conn.writer.close()
        scheme, host, port = origin
        timeout = request.extensions.get("timeout", {}).get("connect")
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=ssl.create_default_context() if scheme == "https" else None,
                    limit=2**20)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out",
                                       request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        return _Conn(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        origin = _origin(request.url)
        for attempt in range(2):
            conn = await self._connect(request, origin)
            try:
                return await self._exchange(request, origin, conn, body)
            except _StaleConnectionError:
                if attempt:
                    break
        raise httpx.RemoteProtocolError("server closed the connection without a response",
                                        request=request)

    async def _exchange(self, request: httpx.Request, origin: tuple[str, str, int],
                        conn: _Conn, body: bytes) -> httpx.Response:
        try:
            conn.writer.write(_head(request, body) + body)
            await conn.writer.drain()
            status, headers = await _read_head(conn.reader)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            conn.writer.close()
            if conn.reused:
                raise _StaleConnectionError from exc
            raise httpx.RemoteProtocolError(
                "server closed the connection without a response", request=request) from exc
        except asyncio.LimitOverrunError as exc:
            conn.writer.close()
            raise httpx.RemoteProtocolError("response head too long", request=request) from exc
        except BaseException:
            conn.writer.close()
            raise
        return self._response(request, origin, conn, status, headers)

    def _response(self, request: httpx.Request, origin: tuple[str, str, int], conn: _Conn,
                  status: int, headers: list[tuple[bytes, bytes]]) -> httpx.Response:
        lookup = {k.lower(): v for k, v in headers}
        keep_alive = lookup.get(b"connection", b"").lower() != b"close"
        if b"chunked" in lookup.get(b"transfer-encoding", b"").lower():
            framing, length = "chunked", 0
        elif b"content-length" in lookup:
            framing, length = "length", int(lookup[b"content-length"])
        elif request.method == "HEAD" or status in (204, 304):
            framing, length = "length", 0
        else:
            framing, length = "close", 0
        stream = _Body(self, origin, conn, framing, length, keep_alive)
        return httpx.Response(status, headers=headers, stream=stream, request=request,
                              extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        for conns in self._pool.idle.values():
            for conn in conns:
                conn.writer.close()
        self._pool.idle.clear()
