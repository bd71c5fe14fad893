"""The online price controller: the pure step (bounded, dead band, anti-windup) and the
gateway's control loop against a simulated plant — a fast model and a slower better one
whose real latency is 10% above the curves, with the arrival rate stepping up by 30%."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import numpy as np
import pytest

from routerwise.latency.curve import LatencyCurve, fit_curve
from routerwise.profiles.table import ProfilePoints
from routerwise.routing.problem import RoutingProblem
from routerwise.serve import controller as ctl
from routerwise.serve.config import BackendSpec, ControllerConfig, GatewayConfig
from routerwise.serve.gateway import Gateway, build_gateway
from routerwise.serve.pricing import PriceModel
from routerwise.serve.routing import PriceSnapshot
from routerwise.simulate.router import routing_probabilities
from routerwise.spec.core import readonly
from tests.serve.planfixture import MODELS, ServeFixture

CFG = ControllerConfig()
#: the real engines are this much slower than the plan's estimated curves
SLOWDOWN = 1.1


def window(rate: float, ttft_ms: float, n: int = 100, duration_s: float = 5.0) -> ctl.Window:
    return ctl.Window(duration_s, round(rate * duration_s), ttft_ms * n, n)


def test_step_tightens_when_slow_and_relaxes_when_fast() -> None:
    s0 = ctl.initial_state(10.0)
    slow = ctl.step(s0, window(10, 120), 100, CFG)
    assert slow.tighten > 0 and ctl.solver_slo_ms(slow, 100) < 100
    fast = ctl.step(s0, window(10, 50), 100, CFG)
    assert fast.tighten < 0 and ctl.solver_slo_ms(fast, 100) > 100


def test_step_is_bounded_and_ignores_noise_and_thin_windows() -> None:
    s = ctl.initial_state(10.0)
    for _ in range(100):
        s = ctl.step(s, window(10, 1000), 100, CFG)
    assert s.tighten == CFG.max_tighten
    for _ in range(100):
        s = ctl.step(s, window(10, 1), 100, CFG)
    assert s.tighten == -CFG.max_relax
    calm = ctl.step(ctl.initial_state(10.0), window(10, 99), 100, CFG)
    assert calm.tighten == 0.0  # inside the dead band below the SLO
    assert ctl.step(ctl.initial_state(10.0), window(10, 101), 100, CFG).tighten > 0
    thin = ctl.step(ctl.initial_state(10.0), window(10, 500, n=3), 100, CFG)
    assert thin.tighten == 0.0 and thin.ttft_mean_ms is None  # too few samples
    assert ctl.hold_tighten(slow := ctl.step(calm, window(10, 200), 100, CFG), calm) \
        .tighten == 0.0 and slow.tighten > 0


def test_rate_is_smoothed_toward_the_measured_rate() -> None:
    s = ctl.initial_state(10.0)
    for _ in range(10):
        s = ctl.step(s, window(13, 90), 100, CFG)
    assert s.rate_rps == pytest.approx(13, rel=0.01)


def _plant_ttft_ms(gw: Gateway, rate_rps: float, slowdown: float) -> float:
    """The fleet mean TTFT the plan's curves (× slowdown) give under the current prices."""
    assert gw.price_model is not None
    problem = gw.price_model.problem
    x = routing_probabilities(problem.scores, gw.prices.prices, gw.tie_temperature).mean(0)
    lat = [float(c(min(rate_rps * xm, c.capacity_rps_))) for c, xm in zip(problem.curves, x,
                                                                          strict=True)]
    return float(np.dot(x, lat)) * slowdown


def _simulate(gw: Gateway, rates: list[float], slowdown: float, control: bool) -> list[float]:
    out = []
    interval = gw.cfg.controller.interval_s
    for rate in rates:
        ttft = _plant_ttft_ms(gw, rate, slowdown)
        out.append(ttft)
        gw.window.started = time.monotonic() - interval
        gw.window.requests = round(rate * interval)
        gw.window.ttft_count = round(rate * interval)
        gw.window.ttft_sum_ms = ttft * gw.window.ttft_count
        if control:
            asyncio.run(gw.control_step())
    return out


def _synthetic_model() -> PriceModel:
    """A fast model and a slower, better one (M/M/1-shaped curves): the quality-optimal
    routing is far slower than the fastest, so prices matter."""
    rng = np.random.default_rng(1)
    good = rng.uniform(0.5, 1.0, 2000)
    scores = np.column_stack([good - rng.uniform(0.0, 0.25, 2000), good])

    def curve(model: str, base_ms: float, cap_rps: float) -> LatencyCurve:
        rates = np.linspace(0.5, 0.95 * cap_rps, 12)
        return fit_curve(ProfilePoints(model, rates, base_ms / (1 - rates / cap_rps), "mean",
                                       tuple(range(12)), "synthetic"))

    curves = (curve(MODELS[0], 20.0, 60.0), curve(MODELS[1], 60.0, 40.0))
    return PriceModel(RoutingProblem(MODELS, readonly(scores), curves, BASE_RPS, SLO_MS))


BASE_RPS, SLO_MS = 30.0, 70.0


def test_controller_meets_the_slo_within_60_s_of_a_30pct_rate_step(
        serve_fixture: ServeFixture) -> None:
    cfg = GatewayConfig(plan_path=serve_fixture.plan_dir,
                        backends=tuple(BackendSpec(m, "http://x.invalid") for m in MODELS))
    model = _synthetic_model()
    start = model.solve(BASE_RPS, SLO_MS)
    assert start.feasible
    runs = {}
    step_at = 6  # 30 s at 5 s per step, then +30% for 120 s
    rates = [BASE_RPS] * step_at + [1.3 * BASE_RPS] * 24
    for control in (False, True):
        gw = build_gateway(cfg, price_model=model)
        gw.plan = replace(gw.plan, slo=replace(gw.plan.slo, target_ms=SLO_MS),
                          rate_rps=BASE_RPS)
        gw.state = ctl.initial_state(BASE_RPS)
        gw.prices = PriceSnapshot(start.prices, start.multiplier, SLO_MS, BASE_RPS, "plan")
        runs[control] = _simulate(gw, rates, SLOWDOWN, control)
    after = runs[True][step_at + 12:]  # from 60 s after the step on
    print("SLO", SLO_MS, "\nstatic    ", np.round(runs[False], 1), "\ncontrolled",
          np.round(runs[True], 1))
    assert max(runs[False][step_at:]) > SLO_MS * 1.05  # the plan's prices alone miss it
    assert max(after) <= SLO_MS * 1.01
    assert min(after) > SLO_MS * 0.9  # not over-tightened: quality is kept
