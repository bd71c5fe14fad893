"""The plan contract's pieces: typed deployments, saturation cuts, per-model caps, and the
infeasible message's promise (planning at the reported rate succeeds, 5% above it fails)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from routerwise.errors import InputError
from routerwise.latency.curve import capped_at_latency, fit_curve
from routerwise.plan.inputs import resolve_spec
from routerwise.plan.run import make_plan
from routerwise.plan.shapes import below_saturation
from routerwise.profiles.table import ProfilePoints
from routerwise.search.resolve import round_down
from routerwise.search.search import SearchConfig
from routerwise.spec.core import readonly
from routerwise.spec.deployment import Deployment, Instance, InstanceShape, setup_from_instances


def points(values: list[float]) -> ProfilePoints:
    rates = np.linspace(0.05, 0.4, len(values))
    return ProfilePoints("m", readonly(rates), readonly(values), "ttft_mean_ms", (), "<t>")


def test_points_past_saturation_are_dropped() -> None:
    """Regression: paper-a100-4m routed 0.40 req/s to llama-2-13b at a 27.9 s mean TTFT, a
    profile point whose queue dominates (the estimator's curve went 414 → 27,933 ms)."""
    llama_13b = [414.3, 414.3, 414.3, 414.3, 562.2, 2224.0, 6317.2, 27932.6]
    cut = below_saturation(points(llama_13b))
    assert cut.values_ms.max() < 10 * 414.3
    assert len(cut.rates_rps) == 6
    assert fit_curve(cut)(0.39) == math.inf  # past the last kept point: infeasible
    healthy = [53.6, 60.0, 67.0, 75.4, 83.4, 89.8]
    assert len(below_saturation(points(healthy)).rates_rps) == len(healthy)


def test_per_model_cap_shortens_the_curve() -> None:
    curve = fit_curve(points([10.0, 12.0, 20.0, 60.0]))
    capped = capped_at_latency(curve, 40.0)
    assert capped is not None
    assert capped.values_[-1] == pytest.approx(40.0)
    assert capped.capacity_rps_ < curve.capacity_rps_
    assert capped_at_latency(curve, 5.0) is None


def test_typed_deployments_use_fractions_and_validate() -> None:
    shape = InstanceShape("m", "H100-SXM", 4, 0.6000000001)
    assert shape.mps_share == 0.6 and shape.describe() == "tp4@60%"
    assert Deployment.of(shape, 2).describe() == "2×tp4@60%"
    with pytest.raises(InputError, match="mps_share"):
        InstanceShape("m", "H100-SXM", 1, 1.5)
    with pytest.raises(InputError, match="tp=3"):
        InstanceShape("m", "H100-SXM", 3, 0.5)
    with pytest.raises(InputError, match="distinct GPUs"):
        Instance("m", "H100-SXM", 2, 0.5, (1, 1))
    setup = setup_from_instances([Instance("m", "H100-SXM", 1, 0.5, (0,)),
                                  Instance("m", "H100-SXM", 1, 0.5, (1,))])
    assert setup.deployments == (Deployment("m", "H100-SXM", 1, 0.5, 2),)
    assert setup.gpu_loads() == {0: 0.5, 1: 0.5}


def test_round_down_never_rounds_up() -> None:
    assert round_down(26.69) == 26.6
    assert round_down(0.40301) == 0.403
    assert round_down(1234.5) == 1230


@pytest.mark.slow  # three plans of paper-a100-3m (~1 minute with a warm cache)
def test_infeasible_rate_is_true(profile_cache: Path) -> None:
    """Regression: `plan paper-a100-3m --rate-rps 50` said the highest rate any setup serves
    is 26.6 req/s while 40 req/s planned fine. (With steady-state profiles, which no longer
    overstate what an instance sustains, the true highest rate is 36.0 req/s; it was 49.7
    with burst-measured capacities.)"""
    config = SearchConfig(executor="process", workers=2)
    spec, source, _ = resolve_spec("paper-a100-3m", None, 50.0, None)
    plan = make_plan(spec, source, None, config=config, cache_dir=profile_cache).built.plan
    assert not plan.feasible and plan.infeasible is not None
    rate = plan.infeasible.max_rate_rps
    assert rate is not None and 30 < rate < 50
    assert f"{rate:.3g} req/s" in plan.infeasible.message
    for factor, feasible in ((1.0, True), (1.05, False)):
        spec, source, _ = resolve_spec("paper-a100-3m", None, rate * factor, None)
        again = make_plan(spec, source, None, config=config, cache_dir=profile_cache)
        assert again.built.plan.feasible is feasible, factor
