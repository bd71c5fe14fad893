"""Gateway test fixtures: a small real plan with its predictor (built once per session) and
emulated backends, all on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

from tests.serve.planfixture import MODELS, ServeFixture, build_serve_fixture
from tests.serve.servers import ServerThread, emulator_app


@pytest.fixture(scope="session")
def serve_fixture(tmp_path_factory: pytest.TempPathFactory, profile_cache: Path) -> ServeFixture:
    return build_serve_fixture(tmp_path_factory.mktemp("serve-plan"))


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, str]]:
    """One emulated backend per plan model: {model: base URL}."""
    servers = {m: ServerThread(emulator_app(m)).start() for m in MODELS}
    try:
        yield {m: s.url for m, s in servers.items()}
    finally:
        for s in servers.values():
            s.stop()
