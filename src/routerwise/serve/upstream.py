"""Serve stage — the hot path to a backend: one POST, its status, headers and body bytes.

``RawUpstream`` speaks HTTP/1.1 on ``asyncio.Protocol`` connections kept alive in a LIFO
pool (idle ones expire after ``keepalive_s``, before a uvicorn backend's 5 s closes them).
The response is parsed inside ``data_received``: the head once, then chunked or
``Content-Length`` framing; the body's bytes wait in a list until the relay asks for them,
and one ``next()`` hands over everything that arrived (one wake-up per TCP read, not one
per chunk). httpx's request and response models cost more than the bytes: with the raw
ASGI endpoint (``serve.asgi``) this halves the gateway's CPU for a streamed completion on
the 2-core test machine (see ``benchmarks/gateway_overhead.py``). ``HttpxUpstream`` is
the same interface over an ``httpx.AsyncClient``: ``https://`` backends, injected
transports (``httpx.MockTransport`` in tests) and ``lean_transport=False``.

Failures are named (``UpstreamError``): ``UpstreamConnectError`` (refused, unreachable),
``UpstreamClosedError`` (dropped, reset, cut mid-body, malformed) and ``UpstreamTimeoutError``
(connect or read). A request is re-sent only when a reused keep-alive connection turns out
closed before any response byte (the idle-close race); any other failure is the caller's to
retry elsewhere (a re-send could duplicate work the backend had started).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from routerwise.errors import RouterWiseError

#: Longest response head accepted, and body bytes buffered before reading pauses.
MAX_HEAD_BYTES = 64 * 1024
MAX_BUFFERED_BYTES = 1 << 20

Headers = dict[str, str]  # lower-case names


class UpstreamError(RouterWiseError):
    """A request to a backend failed below HTTP (no usable response)."""


class UpstreamConnectError(UpstreamError):
    """The backend could not be reached (refused, unreachable)."""


class UpstreamClosedError(UpstreamError):
    """The connection broke: reset, closed before or during the body, or malformed."""


class UpstreamTimeoutError(UpstreamError):
    """Connecting or reading took longer than allowed (load, not necessarily death)."""


class UpstreamResponse(Protocol):
    """A backend's answer: status and headers read; the body still to come."""

    status: int
    headers: Headers

    @property
    def finished(self) -> bool:
        """The whole body arrived and ``next()`` has handed all of it over."""
        ...

    async def next(self) -> bytes:
        """The body bytes that arrived since the last call (waiting for some); b"" at the
        end of the body."""
        ...

    async def read(self) -> bytes:
        """The rest of the body."""
        ...

    async def aclose(self) -> None:
        """Done with the response (the connection goes back to the pool if it can)."""
        ...


class Upstream(Protocol):
    """One backend's client for completion requests."""

    async def post(self, path: str, body: bytes, headers: Headers) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


# ------------------------------------------------------------------------ raw HTTP/1.1


class _Conn(asyncio.Protocol):
    """One keep-alive connection; ``exchange`` is the response being received on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.closed = False
        self.idle_since = 0.0
        self._drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.exchange is None:  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        self.exchange.feed(data)

    def eof_received(self) -> bool | None:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.exchange is not None:
            self.exchange.lost(exc)
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    async def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)
        if self._drained is not None:
            await self._drained
        if self.closed:
            raise ConnectionResetError("backend closed the connection while it was sent to")

    def usable(self, now: float, keepalive_s: float) -> bool:
        return (not self.closed and self.transport is not None
                and not self.transport.is_closing() and now - self.idle_since < keepalive_s)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Exchange:
    """One response parsed as it arrives (head, then chunked / length / until-close body).

    Body bytes wait in ``_out`` until ``next()`` takes them all at once."""

    __slots__ = ("_active", "_buf", "_error", "_left", "_loop", "_mode", "_out", "_paused",
                 "_pool", "_queued", "_read_s", "_timer", "_waiter", "conn", "done",
                 "got_bytes", "head", "headers", "keep", "status")

    def __init__(self, conn: _Conn, pool: RawUpstream) -> None:
        self.conn, self._pool, self._read_s = conn, pool, pool.read_s
        # the read timeout: one watchdog per exchange, not a timer per wait (see _expire)
        self._loop = loop = asyncio.get_running_loop()
        self._active = loop.time()
        self._timer = loop.call_at(self._active + self._read_s, self._expire)
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._queued = 0  # bytes in _out
        self._mode = "head"  # head | chunked | length | close | trailer | done
        # chunked: the current chunk's size + 2 (its CRLF), -1 between chunks; length: the
        # body bytes still to come
        self._left = 0
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.status, self.keep = 0, True
        self.headers: Headers = {}
        self.done = self.got_bytes = False
        self.head: asyncio.Future[None] = loop.create_future()

    # -- fed by the protocol ------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.got_bytes = True
        self._active = self._loop.time()
        try:
            if self._mode == "head":
                self._feed_head(data)
            elif self._mode == "length":
                self._feed_length(data)
            elif self._mode == "close":
                self._out.append(data)
                self._queued += len(data)
            elif self._mode == "done":
                raise ValueError("bytes after the end of the body")
            else:
                self._feed_chunked(data)
        except ValueError as exc:
            self._fail(UpstreamClosedError(f"malformed response from the backend: {exc}"))
            self.conn.close()
            return
        self._wake()

    def lost(self, exc: Exception | None) -> None:
        if self._mode == "close":
            self._finish()
        elif not self.done:
            why = f": {type(exc).__name__}: {exc}" if exc else ""
            where = "before its response" if self._mode == "head" else "mid-body"
            self._fail(UpstreamClosedError(f"backend closed the connection {where}{why}"))
        self._wake()

    def _expire(self) -> None:
        """No byte for ``read_s``: the exchange fails; else look again when it could."""
        if self.done or self._error is not None:
            return
        due = self._active + self._read_s
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._expire)
            return
        self._fail(UpstreamTimeoutError(f"backend sent nothing for {self._read_s:g} s"))
        self.conn.close()
        self._wake()

    def _fail(self, error: Exception) -> None:
        self._error = error
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: a failed head is reported by post()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (
                self._out or self.done or self._error is not None):
            waiter.set_result(None)
        if not self._paused and self._queued > MAX_BUFFERED_BYTES:
            self._paused = True  # the client reads slower than the backend writes
            assert self.conn.transport is not None
            self.conn.transport.pause_reading()

    def _feed_head(self, data: bytes) -> None:
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEAD_BYTES:
                raise ValueError(f"response head longer than {MAX_HEAD_BYTES} bytes")
            return
        head, rest = bytes(self._buf[:end]), bytes(self._buf[end + 4:])
        self._buf.clear()
        self.status, self.headers = _parse_head(head)
        self._frame()
        self.head.set_result(None)
        if rest:
            self.feed(rest)

    def _frame(self) -> None:
        """The body's framing from the head."""
        h = self.headers
        self.keep = h.get("connection", "").lower() != "close"
        if self.status in (204, 304) or 100 <= self.status < 200:
            self._finish()
        elif "chunked" in h.get("transfer-encoding", "").lower():
            self._mode, self._left = "chunked", -1
        elif "content-length" in h:
            self._mode, self._left = "length", int(h["content-length"])
            if self._left == 0:
                self._finish()
        else:
            self._mode, self.keep = "close", False

    def _feed_length(self, data: bytes) -> None:
        if len(data) > self._left:
            raise ValueError("more body bytes than its Content-Length")
        self._out.append(data)
        self._queued += len(data)
        self._left -= len(data)
        if self._left == 0:
            self._finish()

    def _feed_chunked(self, data: bytes) -> None:
        """Chunks parsed from ``data`` in place (the usual case: whole chunks per read);
        a partial one waits in ``_buf``."""
        buf = self._buf
        if buf:
            buf += data
            if self._left > 0 and len(buf) < self._left:
                return  # a long chunk still arriving: no copy until it is whole
            data = bytes(buf)
            buf.clear()
        pos = self._parse_chunks(data)
        if pos < len(data):
            buf += memoryview(data)[pos:]

    def _parse_chunks(self, data: bytes) -> int:
        """Parse from the start of ``data``; where the unparsed rest begins."""
        pos, n = 0, len(data)
        while pos < n:
            if self._left < 0:  # a chunk-size line, or after the last chunk a trailer line
                end = data.find(b"\r\n", pos)
                if end < 0:
                    if n - pos > 1024:
                        raise ValueError("chunk-size or trailer line too long")
                    return pos
                line, pos = data[pos:end], end + 2
                if self._mode == "trailer":
                    if not line:  # the empty line that ends the body
                        self._finish()
                        if pos < n:
                            raise ValueError("bytes after the end of the body")
                    continue
                size = int(line.split(b";", 1)[0].strip() or b"x", 16)
                if size == 0:
                    self._mode = "trailer"
                    continue
                self._left = size + 2
            if n - pos < self._left:
                return pos
            stop = pos + self._left - 2
            if data[stop:stop + 2] != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
            self._out.append(data[pos:stop])
            self._queued += stop - pos
            pos, self._left = stop + 2, -1
        return pos

    def _finish(self) -> None:
        self._mode, self.done = "done", True

    # -- read by the relay --------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.done and not self._out

    async def next(self) -> bytes:
        while not self._out:
            if self._error is not None:
                raise self._error
            if self.done:
                return b""
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        out = self._out
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._queued = 0
        if self._paused:
            self._paused = False
            assert self.conn.transport is not None
            self.conn.transport.resume_reading()
        return data

    async def read(self) -> bytes:
        parts = []
        while data := await self.next():
            parts.append(data)
        return b"".join(parts)

    def abandon(self) -> None:
        """Given up before the head: the connection is closed, not reused."""
        self._timer.cancel()
        self.conn.close()

    async def aclose(self) -> None:
        self._timer.cancel()
        conn = self.conn
        conn.exchange = None
        if self.done and self.keep and not conn.closed:
            self._pool.release(conn)
        else:
            conn.close()


class RawUpstream:
    """``Upstream`` for an ``http://host:port`` backend (see the module docstring)."""

    def __init__(self, base_url: str, connect_s: float, read_s: float, keepalive_s: float,
                 max_idle: int) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "", parts.port or 80
        self._host_header = parts.netloc.encode("latin-1")
        self._prefix = parts.path.rstrip("/").encode("ascii")  # a base URL's path
        self.connect_s, self.read_s = connect_s, read_s
        self.keepalive_s, self.max_idle = keepalive_s, max_idle
        self._idle: list[_Conn] = []

    def release(self, conn: _Conn) -> None:
        if len(self._idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    async def _connect(self, fresh: bool) -> tuple[_Conn, bool]:
        """A connection and whether it came from the idle pool."""
        now = time.monotonic()
        while self._idle and not fresh:
            conn = self._idle.pop()
            if conn.usable(now, self.keepalive_s):
                return conn, True
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_s):
                _, conn = await loop.create_connection(_Conn, self.host, self.port)
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"connecting to {self.host}:{self.port} timed out") from exc
        except OSError as exc:
            raise UpstreamConnectError(f"{type(exc).__name__}: {exc}") from exc
        return conn, False

    def _message(self, path: str, body: bytes, headers: Headers) -> bytes:
        lines = [b"POST %s%s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n"
                 % (self._prefix, path.encode("ascii"), self._host_header, len(body))]
        lines += [b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1"))
                  for k, v in headers.items()]
        lines += [b"\r\n", body]
        return b"".join(lines)

    async def _try(self, conn: _Conn, message: bytes) -> _Exchange:
        ex = _Exchange(conn, self)
        conn.exchange = ex
        try:
            await conn.write(message)
            await ex.head
        except OSError as exc:
            ex.abandon()
            raise UpstreamClosedError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            ex.abandon()
            raise
        return ex

    async def post(self, path: str, body: bytes, headers: Headers) -> UpstreamResponse:
        message = self._message(path, body, headers)
        conn, reused = await self._connect(fresh=False)
        try:
            ex = await self._try(conn, message)
        except UpstreamClosedError:
            stale = reused and (conn.exchange is None or not conn.exchange.got_bytes)
            if not stale:
                raise
            conn, _ = await self._connect(fresh=True)  # the idle-close race: once more
            ex = await self._try(conn, message)
        return ex

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


def _parse_head(head: bytes) -> tuple[int, Headers]:
    """Status and lower-case headers of a response head (without its blank line)."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    if not version.startswith(b"HTTP/1."):
        raise ValueError(f"not HTTP/1.x: {lines[0][:40]!r}")
    headers: Headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ValueError(f"header line without a colon: {line[:40]!r}")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return int(rest[:3]), headers


# ------------------------------------------------------------------------------ httpx


class _HttpxResponse:
    """``UpstreamResponse`` over a streamed ``httpx.Response``."""

    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp
        self.status = resp.status_code
        self.headers: Headers = {k.lower(): v for k, v in resp.headers.items()}
        self._chunks: AsyncIterator[bytes] = resp.aiter_raw()
        self._done = False  # known only once next() found the end

    @property
    def finished(self) -> bool:
        return self._done

    async def next(self) -> bytes:
        with _mapped():
            try:
                return await anext(self._chunks)
            except StopAsyncIteration:
                self._done = True
                return b""

    async def read(self) -> bytes:
        parts = []
        while data := await self.next():
            parts.append(data)
        return b"".join(parts)

    async def aclose(self) -> None:
        await self._resp.aclose()


@contextmanager
def _mapped() -> Iterator[None]:
    """httpx's transport errors as ``UpstreamError``s."""
    try:
        yield
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise UpstreamTimeoutError(f"{type(exc).__name__}: {exc}") from exc
    except httpx.ConnectError as exc:
        raise UpstreamConnectError(f"{type(exc).__name__}: {exc}") from exc
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise UpstreamClosedError(f"{type(exc).__name__}: {exc}") from exc
    except httpx.TransportError as exc:
        raise UpstreamError(f"{type(exc).__name__}: {exc}") from exc


class HttpxUpstream:
    """``Upstream`` over an ``httpx.AsyncClient`` (see the module docstring)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(self, path: str, body: bytes, headers: Headers) -> UpstreamResponse:
        request = self._client.build_request("POST", path, content=body, headers=headers)
        with _mapped():
            resp = await self._client.send(request, stream=True)
        return _HttpxResponse(resp)

    async def aclose(self) -> None:
        return None  # the client is the pool's to close
