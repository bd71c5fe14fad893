"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for load tests and the overhead
benchmark (like wrk): a few µs of CPU a request where httpx spends about a millisecond, so
on two shared cores the load generator is not what is measured. It reads chunked and
Content-Length bodies and nothing fancier (no TLS, no redirects, no compression)."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

#: A chunk that carries a token: a non-empty ``content`` (chat) or ``text`` (completions).
TOKEN_RE = re.compile(rb'"(?:content|text)":\s*"(?!")')

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    ttft_ms: float | None  # request sent → first body chunk carrying a token (None: none)


class RawClient:
    """Keep-alive connections per host:port; one request per connection at a time."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[Conn]] = {}

    async def _conn(self, host: str, port: int, fresh: bool) -> tuple[Conn, bool]:
        """A connection and whether it was reused from the idle pool."""
        idle = self._idle.setdefault((host, port), [])
        while idle and not fresh:
            reader, writer = idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return (reader, writer), True
            writer.close()
        return await asyncio.open_connection(host, port), False

    async def _head(self, host: str, port: int, request: bytes) -> tuple[Conn, list[str]]:
        """Send; the response's head lines. A reused connection the server had just closed
        (its keep-alive ran out) is replaced by a new one, once."""
        (reader, writer), reused = await self._conn(host, port, fresh=False)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.close()
            if not reused:
                raise
            (reader, writer), _ = await self._conn(host, port, fresh=True)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
        return (reader, writer), head.decode("latin-1").split("\r\n")

    async def post(self, url: str, path: str, body: bytes,
                   headers: dict[str, str] | None = None) -> RawResponse:
        """POST a JSON body to ``url`` (``http://host:port``) and read the whole answer.

        Raises ``OSError`` or ``asyncio.IncompleteReadError`` when the connection fails."""
        host, port = url.removeprefix("http://").split(":")
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode()
        request = (b"POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                   b"%sContent-Length: %d\r\n\r\n%s" % (path.encode(), host.encode(),
                                                      port.encode(), extra, len(body), body))
        start = time.perf_counter()
        (reader, writer), head = await self._head(host, int(port), request)
        try:
            status = int(head[0].split(" ", 2)[1])
            fields = {k.lower(): v.strip()
                      for k, _, v in (h.partition(":") for h in head[1:] if h)}
            ttft = None
            if fields.get("transfer-encoding") == "chunked":
                parts = []
                while size := int((await reader.readline()).strip(), 16):
                    data = (await reader.readexactly(size + 2))[:-2]
                    if ttft is None and TOKEN_RE.search(data):
                        ttft = (time.perf_counter() - start) * 1e3
                    parts.append(data)
                await reader.readuntil(b"\r\n")
                content = b"".join(parts)
            else:
                content = await reader.readexactly(int(fields.get("content-length", "0")))
        except BaseException:
            writer.close()
            raise
        if fields.get("connection") == "close":
            writer.close()
        else:
            self._idle[(host, int(port))].append((reader, writer))
        return RawResponse(status, fields, content, ttft)

    def close(self) -> None:
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
        self._idle.clear()
