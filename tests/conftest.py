"""Tests that plan share one on-disk profile cache per session (estimation is the slow part)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def profile_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("profile-cache")
    old = os.environ.get("ROUTERWISE_CACHE_DIR")
    os.environ["ROUTERWISE_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("ROUTERWISE_CACHE_DIR", None)
    else:
        os.environ["ROUTERWISE_CACHE_DIR"] = old
