"""Serve stage — the completion endpoints' side of ASGI, without a framework in between.

``Reply`` answers one request through the server's ``send``: every answer carries the
request's ``x-request-id``; JSON answers have a ``Content-Length``; a stream is a start and
body messages that the server frames as chunks. ``read_body`` reads a request body up to a
limit. Starlette's ``Request`` and ``StreamingResponse`` cost more CPU than the gateway's
own work on a streamed completion (a task group per response, per-chunk wrappers), so the
hot path speaks ASGI directly; the other endpoints keep FastAPI.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]


class ClientGoneError(Exception):
    """The client disconnected before its request was read: nobody to answer."""


class BodyTooLargeError(Exception):
    """The request body exceeds the gateway's limit."""


def header_fields(scope: Scope, names: Sequence[bytes]) -> list[bytes | None]:
    """The values of ``names`` (lower-case) among the request's headers (None: absent)."""
    found: list[bytes | None] = [None] * len(names)
    for key, value in scope["headers"]:
        if key in names:
            found[names.index(key)] = value
    return found


async def read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The whole request body; ``BodyTooLargeError`` past ``limit`` (checked against a
    declared length before reading), ``ClientGoneError`` when the client left."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGoneError
    body = message.get("body", b"")
    more = message.get("more_body", False)
    if not more:
        if len(body) > limit:
            raise BodyTooLargeError
        return bytes(body)
    buf = bytearray(body)
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError
        buf += message.get("body", b"")
        more = message.get("more_body", False)
        if len(buf) > limit:
            raise BodyTooLargeError
    return bytes(buf)


def _encode(headers: dict[str, str]) -> RawHeaders:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class Reply:
    """One request's answer (see the module docstring)."""

    __slots__ = ("_send", "request_id", "started")

    def __init__(self, send: Send, request_id: str) -> None:
        self._send, self.request_id = send, request_id
        self.started = False

    async def start(self, status: int, headers: dict[str, str], content_type: bytes,
                    length: int | None = None) -> None:
        raw = [(b"content-type", content_type),
               (b"x-request-id", self.request_id.encode("latin-1")), *_encode(headers)]
        if length is not None:
            raw.append((b"content-length", b"%d" % length))
        self.started = True
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def body(self, data: bytes, more: bool) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def full(self, status: int, content: bytes, headers: dict[str, str],
                   content_type: bytes = b"application/json") -> None:
        await self.start(status, headers, content_type, len(content))
        await self.body(content, False)

    async def json(self, status: int, content: Any, headers: dict[str, str] | None = None,
                   ) -> None:
        await self.full(status, json.dumps(content).encode(), headers or {})
