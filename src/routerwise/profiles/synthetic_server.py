"""A synthetic OpenAI-compatible streaming server with a known service law, for checking and
benchmarking the load generator (tests, ``benchmarks/loadgen_speed.py``). Loopback only.

``POST /v1/chat/completions`` (streaming) and ``GET /v1/models``, HTTP/1.1 keep-alive with
chunked server-sent events, plain asyncio (no dependencies, cheap enough for thousands of
requests/s). A request is served by one of ``workers`` workers, first come first served:
the worker is busy ``service_ms`` (its "prefill"), then the first token is sent and the
worker is free; the other ``tokens − 1`` tokens follow ``token_gap_ms`` apart without a
worker. Service starts are computed from arrival times exactly (``start = max(arrival,
worker free)``), so with one worker and Poisson arrivals the time to first token is an
M/D/1 sojourn time: ``D · (1 + ρ / (2 (1 − ρ)))`` on average at load ``ρ = λ D``.
``workers=0`` means no queue (every request starts at once). A role-only chunk is sent as
soon as the request arrives (some servers do), so a client that took it for the first token
would be caught.

Faults for tests (``fault``, applied to every ``fault_every``-th request): ``http500``,
``malformed`` (a data line that is not JSON), ``truncate`` (the stream ends without
``[DONE]``), ``close`` (the connection is cut mid-stream), ``hang`` (no answer at all),
``error-event`` (an ``{"error": …}`` event), ``reject-ignore-eos`` (HTTP 400 when the body
has ``ignore_eos``, like servers without that extension).

Run ``python -m routerwise.profiles.synthetic_server --port 0 …``: it prints
``READY http://127.0.0.1:PORT`` once listening. ``running_server(...)`` does that in a
subprocess and stops it on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

FAULTS = ("none", "http500", "malformed", "truncate", "close", "hang", "error-event",
          "reject-ignore-eos")
READY = "READY "


@dataclass(frozen=True, slots=True)
class ServerConfig:
    service_ms: float = 0.0
    workers: int = 1  # 0: unlimited (no queue)
    tokens: int = 0  # 0: the request's max_tokens
    token_gap_ms: float = 0.0
    fault: str = "none"
    fault_every: int = 1
    model: str = "synthetic"


class _Workers:
    """FCFS service start times of ``n`` identical workers (a heap of free times)."""

    def __init__(self, n: int) -> None:
        self.free = [0.0] * n

    def first_token_at(self, arrival: float, service_s: float) -> float:
        if not self.free:
            return arrival + service_s
        start = max(arrival, heapq.heappop(self.free))
        heapq.heappush(self.free, start + service_s)
        return start + service_s


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(obj: object) -> bytes:
    return _chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


def _delta(model: str, delta: dict[str, str]) -> dict[str, object]:
    return {"id": "x", "object": "chat.completion.chunk", "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


_STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\nserver: routerwise-synthetic\r\n\r\n")
_DONE = _chunk(b"data: [DONE]\n\n")
_END = b"0\r\n\r\n"


def _plain(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"server: routerwise-synthetic\r\n\r\n%s") % (
        status, reason.get(status, "Error").encode(), len(body), body)


class SyntheticServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.workers = _Workers(config.workers)
        self.count = 0
        self.loop = asyncio.get_running_loop()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method, path, headers = _parse_head(head)
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self._route(method, path, body, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _route(self, method: str, path: str, body: bytes,
                     writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must end."""
        if method == "GET" and path.endswith("/models"):
            data = {"object": "list", "data": [{"id": self.config.model, "object": "model"}]}
            writer.write(_plain(200, json.dumps(data).encode()))
        elif method == "POST" and path.endswith("/chat/completions"):
            return await self._chat(body, writer)
        else:
            writer.write(_plain(404, b'{"error":"not found"}'))
        await writer.drain()
        return True

    async def _chat(self, body: bytes, writer: asyncio.StreamWriter) -> bool:
        arrival = self.loop.time()
        c = self.config
        self.count += 1
        fault = c.fault if self.count % c.fault_every == 0 else "none"
        request = json.loads(body)
        if fault == "reject-ignore-eos" and "ignore_eos" in request:
            writer.write(_plain(400, b'{"error":"unknown field ignore_eos"}'))
            await writer.drain()
            return True
        if fault == "http500":
            writer.write(_plain(500, b'{"error":"synthetic failure"}'))
            await writer.drain()
            return True
        if fault == "hang":
            await asyncio.sleep(3600)
            return False
        first = self.workers.first_token_at(arrival, c.service_ms / 1e3)
        writer.write(_STREAM_HEAD + _event(_delta(c.model, {"role": "assistant"})))
        await _sleep_until(self.loop, first)
        return await self._tokens(request, writer, fault, first)

    async def _tokens(self, request: dict[str, object], writer: asyncio.StreamWriter,
                      fault: str, first: float) -> bool:
        c = self.config
        want = request.get("max_tokens")
        n = c.tokens or (want if isinstance(want, int) and want > 0 else 16)
        for k in range(n):
            if k:
                await _sleep_until(self.loop, first + k * c.token_gap_ms / 1e3)
            writer.write(_event(_delta(c.model, {"content": f" t{k}"})))
            if k == 0 and fault != "none":
                return await _broken(writer, fault)
        options = request.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            writer.write(_event({"id": "x", "choices": [], "usage": {
                "prompt_tokens": 8, "completion_tokens": n, "total_tokens": n + 8}}))
        writer.write(_DONE + _END)
        await writer.drain()
        return True


async def _broken(writer: asyncio.StreamWriter, fault: str) -> bool:
    if fault == "close":
        await writer.drain()
        writer.transport.abort()
        return False
    if fault == "malformed":
        writer.write(_chunk(b"data: {not json\n\n") + _DONE + _END)
    elif fault == "error-event":
        writer.write(_event({"error": {"message": "synthetic error event"}}) + _DONE + _END)
    else:  # truncate: a proper end of the HTTP body, but no [DONE]
        writer.write(_END)
    await writer.drain()
    return True


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    delay = when - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return method, path, headers


async def serve(config: ServerConfig, port: int = 0) -> None:
    server = SyntheticServer(config)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", port, backlog=4096)
    bound = listener.sockets[0].getsockname()[1]
    print(f"{READY}http://127.0.0.1:{bound}", flush=True)
    async with listener:
        await listener.serve_forever()


def _args(argv: Sequence[str] | None) -> tuple[ServerConfig, int]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    for f in fields(ServerConfig):
        kind = {"float": float, "int": int}.get(str(f.type), str)
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default)
    ns = p.parse_args(argv)
    if ns.fault not in FAULTS:
        p.error(f"--fault must be one of {FAULTS}")
    config = ServerConfig(**{f.name: getattr(ns, f.name) for f in fields(ServerConfig)})
    return config, ns.port


def main(argv: Sequence[str] | None = None) -> None:
    config, port = _args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, port))


@contextlib.contextmanager
def running_server(config: ServerConfig = ServerConfig(), *, start_timeout_s: float = 20.0
                   ) -> Iterator[str]:
    """Start the server in a subprocess; yield its base URL; stop it on exit."""
    argv = [sys.executable, "-m", "routerwise.profiles.synthetic_server", "--port", "0"]
    for f in fields(ServerConfig):
        argv += ["--" + f.name.replace("_", "-"), str(getattr(config, f.name))]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        yield _wait_ready(proc, start_timeout_s)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_ready(proc: subprocess.Popen[str], timeout_s: float) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sel.select(timeout=0.1):
            line = proc.stdout.readline()
            if line.startswith(READY):
                return line[len(READY):].strip()
            if not line:
                break
    raise RuntimeError(f"synthetic server did not start (exit code {proc.poll()})")


if __name__ == "__main__":
    main()
