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

``RawStreamer`` is the load generator's hot path on the same pool: ``stream(method, url,
content=, headers=)`` like ``httpx.AsyncClient.stream`` but without httpx's per-request
machinery (URL merging, header models, cookies, auth and redirect flows, decoders), with the
request head cached per URL and chunked bodies parsed from whole reads (one ``await`` per
TCP read, not three per chunk). Its response has ``status_code``, ``headers`` and
``aiter_bytes()``; errors are the same httpx exception types.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

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
        timeout = request.extensions.get("timeout", {}).get("connect")
        try:
            return await self.connect(origin, timeout)
        except (httpx.ConnectTimeout, httpx.ConnectError) as exc:
            exc.request = request
            raise

    async def connect(self, origin: tuple[str, str, int], timeout: float | None) -> _Conn:
        """A pooled connection to ``origin`` (LIFO), else a new one within ``timeout`` s."""
        idle = self._pool.idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.reader.at_eof():
                return conn
            conn.writer.close()
        scheme, host, port = origin
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=ssl.create_default_context() if scheme == "https" else None,
                    limit=2**20)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
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


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL split once: its pool origin and the request line's target and host header."""

    origin: tuple[str, str, int]
    path: str
    host: str

    @classmethod
    def parse(cls, url: str) -> _Target:
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls((scheme, parts.hostname or "", port), path, parts.netloc)


class RawResponse:
    """A streamed response: status, headers (lower-case names) and the body's bytes."""

    def __init__(self, conn: _Conn, status_code: int, headers: dict[bytes, bytes],
                 method: str) -> None:
        self.conn = conn
        self.status_code = status_code
        self.headers = headers
        self.keep_alive = headers.get(b"connection", b"").lower() != b"close"
        self.complete = False
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            self.framing, self.length = "chunked", 0
        elif b"content-length" in headers:
            self.framing, self.length = "length", int(headers[b"content-length"])
        elif method == "HEAD" or status_code in (204, 304):
            self.framing, self.length = "length", 0
        else:
            self.framing, self.length = "close", 0

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunked framing removed)."""
        pieces = (self._chunked() if self.framing == "chunked" else
                  self._sized() if self.framing == "length" else self._until_close())
        try:
            async for piece in pieces:
                yield piece
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body") from exc
        except (ConnectionError, OSError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc

    async def _chunked(self) -> AsyncIterator[bytes]:
        reader, buf = self.conn.reader, b""
        while True:
            out, buf, done = _parse_chunks(buf)
            if out:
                yield out
            if done:
                self.complete = True
                return
            data = await reader.read(_READ)
            if not data:
                raise asyncio.IncompleteReadError(buf, None)
            buf += data

    async def _sized(self) -> AsyncIterator[bytes]:
        left = self.length
        while left > 0:
            data = await self.conn.reader.read(min(left, _READ))
            if not data:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(data)
            yield data
        self.complete = True

    async def _until_close(self) -> AsyncIterator[bytes]:
        while data := await self.conn.reader.read(_READ):
            yield data
        self.keep_alive = False
        self.complete = True


def _parse_chunks(buf: bytes) -> tuple[bytes, bytes, bool]:
    """The payload of the complete chunks at the start of ``buf``, the rest, and whether
    the last chunk (and the trailers' end) was seen. ``ValueError`` on a bad size line."""
    out: list[bytes] = []
    pos = 0
    while (eol := buf.find(b"\r\n", pos)) >= 0:
        size = int(buf[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # no trailers: the CRLF right after the size
            if end < 0:
                break
            return b"".join(out), buf[end + 4:], True
        start = eol + 2
        if len(buf) < start + size + 2:
            break
        out.append(buf[start:start + size])
        pos = start + size + 2
    return b"".join(out), buf[pos:], False


class RawStreamer:
    """HTTP/1.1 streaming requests on a ``LeanTransport``'s pool (see the module docstring);
    ``connect_timeout_s`` bounds a new connection, the caller bounds the whole request."""

    def __init__(self, transport: LeanTransport, connect_timeout_s: float | None = None
                 ) -> None:
        self.transport = transport
        self.connect_timeout_s = connect_timeout_s
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...]],
                          tuple[_Target, bytes]] = {}

    def _head(self, method: str, url: str, headers: Mapping[str, str]
              ) -> tuple[_Target, bytes]:
        key = (method, url, tuple(headers.items()))
        cached = self._heads.get(key)
        if cached is None:
            target = _Target.parse(url)
            lines = [f"{method} {target.path} HTTP/1.1", f"host: {target.host}",
                     *(f"{k}: {v}" for k, v in headers.items()
                       if k.lower() not in ("host", "content-length", "transfer-encoding"))]
            cached = self._heads[key] = (target, ("\r\n".join(lines) + "\r\n").encode("latin-1"))
        return cached

    @asynccontextmanager
    async def stream(self, method: str, url: str, *, content: bytes = b"",
                     headers: Mapping[str, str] | None = None) -> AsyncIterator[RawResponse]:
        target, head = self._head(method, url, headers or {})
        message = b"%scontent-length: %d\r\n\r\n%s" % (head, len(content), content)
        response = await self._send(target, method, message)
        try:
            yield response
        finally:
            if response.complete and response.keep_alive:
                self.transport.release(target.origin, response.conn)
            else:
                response.conn.writer.close()

    async def _send(self, target: _Target, method: str, message: bytes) -> RawResponse:
        for _ in range(2):
            conn = await self.transport.connect(target.origin, self.connect_timeout_s)
            try:
                conn.writer.write(message)
                await conn.writer.drain()
                status, headers = await _read_head(conn.reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                conn.writer.close()
                if conn.reused:
                    continue  # the server had closed the pooled connection: once more
                raise httpx.RemoteProtocolError(
                    "server closed the connection without a response") from exc
            except asyncio.LimitOverrunError as exc:
                conn.writer.close()
                raise httpx.RemoteProtocolError("response head too long") from exc
            except BaseException:
                conn.writer.close()
                raise
            return RawResponse(conn, status, {k.lower(): v for k, v in headers}, method)
        raise httpx.RemoteProtocolError("server closed the connection without a response")
