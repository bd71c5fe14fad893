"""Serve stage — a lean HTTP/1.1 transport for the backends' ``httpx.AsyncClient``.

The client carries a backend's health checks and model discovery (completions take
``serve.upstream``, leaner still). httpx's default transport (httpcore over anyio) costs
about 3.5 ms of CPU for one streamed completion on the 2-core test machine; this one, on
asyncio streams, about 1 ms. The client stays an ``httpx.AsyncClient`` (timeouts,
headers, ``MockTransport`` in tests); only the wire work is replaced.

Scope: plain ``http://`` to OpenAI-compatible engines (vLLM, SGLang, llama.cpp, the
emulator): keep-alive connections reused up to ``keepalive_expiry_s`` idle, chunked or
``Content-Length`` bodies, ``Connection: close`` honoured. Anything else (``https://``) uses
httpx's own transport. Failures map to httpx's exceptions (``ConnectError``,
``ConnectTimeout``, ``ReadError``, ``ReadTimeout``, ``RemoteProtocolError``), so callers
handle both transports alike. A request is re-sent only when a reused keep-alive connection
turns out closed before any response byte (the server closed it while idle, as httpcore and
urllib3 also assume); any other failure is the gateway's to retry elsewhere (a re-send could
duplicate work the backend had started).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import httpx

T = TypeVar("T")
_READ_LIMIT = 1 << 20  # longest header block or chunk-size line accepted


class _Conn:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = 0.0

    def usable(self, now: float, expiry_s: float) -> bool:
        return (now - self.idle_since < expiry_s and not self.reader.at_eof()
                and not self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()


def _timeouts(request: httpx.Request) -> tuple[float | None, float | None]:
    timeout = request.extensions.get("timeout", {})
    return timeout.get("connect"), timeout.get("read")


async def _within(awaitable: Awaitable[T], timeout_s: float | None) -> T:
    async with asyncio.timeout(timeout_s):  # a timer handle, no task (unlike wait_for)
        return await awaitable


class _Body(httpx.AsyncByteStream):
    """The response body as an ``httpx.AsyncByteStream``; the connection goes back to the
    pool when the body was read to its end (and the server keeps it alive)."""

    def __init__(self, transport: StreamTransport, key: tuple[str, int], conn: _Conn,
                 chunked: bool, length: int | None, keep: bool, read_s: float | None,
                 request: httpx.Request) -> None:
        self._t, self._key, self._conn = transport, key, conn
        self._chunked, self._left, self._keep = chunked, length, keep
        self._read_s, self._request = read_s, request
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        reader = self._conn.reader
        try:
            if self._chunked:
                while size := int((await _within(reader.readline(), self._read_s))
                                  .split(b";", 1)[0].strip() or b"x", 16):
                    data = await _within(reader.readexactly(size + 2), self._read_s)
                    yield data[:-2]
                await _within(reader.readuntil(b"\r\n"), self._read_s)  # no trailers
            elif self._left is not None:
                while self._left > 0:
                    data = await _within(reader.read(min(self._left, 65536)), self._read_s)
                    if not data:
                        raise httpx.RemoteProtocolError("backend closed the connection "
                                                        "mid-body", request=self._request)
                    self._left -= len(data)
                    yield data
            else:  # read to close
                self._keep = False
                while data := await _within(reader.read(65536), self._read_s):
                    yield data
            self._done = True
        except TimeoutError as exc:
            raise httpx.ReadTimeout("backend read timed out", request=self._request) from exc
        except ValueError as exc:  # a malformed chunk size
            raise httpx.RemoteProtocolError(f"bad chunked body: {exc}",
                                            request=self._request) from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}",
                                  request=self._request) from exc

    async def aclose(self) -> None:
        if self._done and self._keep:
            self._t.release(self._key, self._conn)
        else:
            self._conn.close()


class StreamTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` over asyncio streams (see the module docstring)."""

    def __init__(self, keepalive_expiry_s: float, max_idle: int) -> None:
        self.keepalive_expiry_s, self.max_idle = keepalive_expiry_s, max_idle
        self._idle: dict[tuple[str, int], list[_Conn]] = {}

    def release(self, key: tuple[str, int], conn: _Conn) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _connect(self, request: httpx.Request, key: tuple[str, int],
                       connect_s: float | None, fresh: bool = False) -> tuple[_Conn, bool]:
        """A connection and whether it was reused from the idle pool."""
        idle = self._idle.get(key, [])
        now = time.monotonic()
        while idle and not fresh:
            conn = idle.pop()
            if conn.usable(now, self.keepalive_expiry_s):
                return conn, True
            conn.close()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(key[0], key[1], limit=_READ_LIMIT), connect_s)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout("connect timed out", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc
        return _Conn(reader, writer), False

    async def _exchange(self, request: httpx.Request, key: tuple[str, int], message: bytes,
                        connect_s: float | None, read_s: float | None,
                        ) -> tuple[_Conn, int, list[tuple[bytes, bytes]]]:
        """Send; the connection, status and headers. A reused connection that the server
        had closed while idle (EOF or reset before any response byte) is replaced once."""
        conn, reused = await self._connect(request, key, connect_s)
        try:
            return conn, *await _send_and_read_head(conn, message, read_s)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            conn.close()
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
        conn, _ = await self._connect(request, key, connect_s, fresh=True)
        try:
            return conn, *await _send_and_read_head(conn, message, read_s)
        except BaseException:
            conn.close()
            raise

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.host, url.port or 80)
        connect_s, read_s = _timeouts(request)
        body = await request.aread()
        target = url.raw_path.decode("ascii")
        lines = [f"{request.method} {target} HTTP/1.1".encode()]
        lines += [b"%s: %s" % (k, v) for k, v in request.headers.raw]
        message = b"\r\n".join(lines) + b"\r\n\r\n" + body
        try:
            conn, status, headers = await self._exchange(request, key, message, connect_s,
                                                         read_s)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("backend read timed out", request=request) from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc
        except ValueError as exc:
            raise httpx.RemoteProtocolError(f"bad response head: {exc}",
                                            request=request) from exc
        fields = {k.lower(): v for k, v in headers}
        chunked = b"chunked" in fields.get(b"transfer-encoding", b"").lower()
        length = None if chunked or b"content-length" not in fields else \
            int(fields[b"content-length"])
        if request.method == "HEAD" or status in (204, 304):
            length, chunked = 0, False
        keep = fields.get(b"connection", b"").lower() != b"close"
        stream = _Body(self, key, conn, chunked, length, keep, read_s, request)
        return httpx.Response(status, headers=headers, stream=stream,
                              extensions={"http_version": b"HTTP/1.1"}, request=request)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


async def _send_and_read_head(conn: _Conn, message: bytes, read_s: float | None,
                              ) -> tuple[int, list[tuple[bytes, bytes]]]:
    try:
        conn.writer.write(message)
        await conn.writer.drain()
        return _parse_head(await _within(conn.reader.readuntil(b"\r\n\r\n"), read_s))
    except BaseException:
        conn.close()
        raise


def _parse_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    lines = head[:-4].split(b"\r\n")
    version, status, *_ = lines[0].split(b" ", 2)
    if not version.startswith(b"HTTP/1."):
        raise ValueError(f"not HTTP/1.x: {lines[0][:40]!r}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ValueError(f"header line without a colon: {line[:40]!r}")
        headers.append((name.strip(), value.strip()))
    return int(status), headers
