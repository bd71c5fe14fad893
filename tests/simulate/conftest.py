"""Plans for simulator tests: small, real (estimated profiles), built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli, CliResult, cli  # noqa: F401 (re-exported fixture)
from tests.simulate.builders import Placed, PlanSpec, write_plan

__all__ = ["Cli", "CliResult"]


@pytest.fixture(scope="session")
def shared_plan(tmp_path_factory: pytest.TempPathFactory, profile_cache: Path) -> Path:
    """``a`` and ``b`` co-located under MPS on GPU 0 (50% each); an ``isolated`` baseline with
    each on a whole GPU of its own."""
    spec = PlanSpec(
        instances=(Placed("a", 1, 0.5, (0,)), Placed("b", 1, 0.5, (0,))),
        prices={"a": 0.0, "b": 0.02}, rate_rps=6.0,
        baselines={"isolated": (Placed("a", 1, 1.0, (0,)), Placed("b", 1, 1.0, (1,)))},
    )
    return write_plan(tmp_path_factory.mktemp("shared-plan"), spec, profile_cache)


@pytest.fixture(scope="session")
def replica_plan(tmp_path_factory: pytest.TempPathFactory, profile_cache: Path) -> Path:
    """``a`` as two replicas on GPUs 0 and 1 (whole GPUs), ``b`` alone on GPU 2."""
    spec = PlanSpec(
        instances=(Placed("a", 1, 1.0, (0,)), Placed("a", 1, 1.0, (1,)),
                   Placed("b", 1, 1.0, (2,))),
        prices={"a": 0.0, "b": 0.0}, rate_rps=10.0, num_gpus=3,
    )
    return write_plan(tmp_path_factory.mktemp("replica-plan"), spec, profile_cache)
