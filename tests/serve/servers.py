"""Bounded 127.0.0.1 servers for gateway tests: uvicorn in a thread, always shut down."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from routerwise.simulate.emulator import EmulatedEngine, EmulatorInfo, create_app
from tests.simulate.steps import FixedSteps

START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """A uvicorn server in a daemon thread on a free port."""

    def __init__(self, app: Any, port: int | None = None, **config: Any) -> None:
        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", **config))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            assert self.thread.is_alive(), "server thread died"
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 20.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=timeout_s)
        assert not self.thread.is_alive(), "server did not stop"


@contextmanager
def running(app: Any, **config: Any) -> Iterator[ServerThread]:
    server = ServerThread(app, **config).start()
    try:
        yield server
    finally:
        server.stop()


def emulator_app(model: str, decode_ms: float = 5.0, prefill_ms: float = 10.0) -> Any:
    """A fast emulated backend serving ``model`` (fixed step times, no aiconfigurator)."""
    engine = EmulatedEngine(1 << 20, FixedSteps(decode=decode_ms, mixed=prefill_ms),
                            default_output_tokens=4)
    info = EmulatorInfo(model, model, "H100-SXM", 1, 1.0, engine.kv_capacity_tokens)
    return create_app(engine, info)
