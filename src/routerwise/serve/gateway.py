"""Serve stage — the gateway's state: the plan's routed models, prices, scorers, backends,
metrics and the control loop (an imperative shell around ``routing`` and ``controller``).

Built by :func:`build_gateway` (reads the plan and the predictor; no network); started and
stopped by the app's lifespan (health checks and the controller run as tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from routerwise.errors import InputError
from routerwise.routing.dual import Hint
from routerwise.serve import controller as ctl
from routerwise.serve.backends import BackendPool
from routerwise.serve.config import GatewayConfig
from routerwise.serve.metrics import GatewayMetrics, create_metrics
from routerwise.serve.pricing import PriceModel, load_price_model
from routerwise.serve.routing import PriceSnapshot, rank
from routerwise.serve.scoring import Scorer, Scores, load_scorers
from routerwise.spec.core import FloatArray, readonly
from routerwise.spec.plan import Plan, load_plan

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where a routed request goes first and where next, and why."""

    order: tuple[str, ...]  # plan model names, first choice first
    scores: Scores


class _Window:
    """Accumulates one control interval (event loop only)."""

    __slots__ = ("requests", "started", "ttft_count", "ttft_sum_ms")

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.requests, self.ttft_count, self.ttft_sum_ms = 0, 0, 0.0

    def close(self) -> ctl.Window:
        now = time.monotonic()
        out = ctl.Window(now - self.started, self.requests, self.ttft_sum_ms, self.ttft_count)
        self.started, self.requests, self.ttft_count, self.ttft_sum_ms = now, 0, 0, 0.0
        return out


class Gateway:
    """Everything a request handler needs."""

    def __init__(self, cfg: GatewayConfig, plan: Plan, models: tuple[str, ...],
                 scorers: tuple[Scorer, ...], price_model: PriceModel | None,
                 transports: Mapping[str, httpx.AsyncBaseTransport] | None = None) -> None:
        self.cfg, self.plan, self.models = cfg, plan, models
        self.index = {m: i for i, m in enumerate(models)}
        self.scorers, self.price_model = scorers, price_model
        self.metrics: GatewayMetrics = create_metrics()
        self.pool = BackendPool(cfg, self.metrics, transports)
        self.rng = np.random.default_rng(cfg.seed)
        self.tie_temperature = plan.routing.tie_temperature
        self.prices = PriceSnapshot(_plan_prices(plan, models),
                                    plan.routing.multiplier_per_ms or 0.0,
                                    plan.slo.target_ms, plan.rate_rps, "plan")
        self.state = ctl.initial_state(plan.rate_rps)
        self.window = _Window()
        self.in_flight = 0
        self._hint: Hint | None = None
        self._task: asyncio.Task[None] | None = None
        self._publish_prices()
        self.metrics.slo_target.set(plan.slo.target_ms)

    # -- routing -----------------------------------------------------------------------
    async def score(self, text: str, task: str | None) -> Scores:
        for scorer in self.scorers:
            found = (await asyncio.to_thread(scorer.score, text, task) if scorer.heavy
                     else scorer.score(text, task))
            if found is not None:
                return found
        raise AssertionError("the prior scorer always answers")

    def decide(self, scores: Scores) -> RouteDecision:
        # healthy ones: a saturated first choice falls to the next-best (or 429) later
        available = [self.pool.by_model[m].healthy for m in self.models]
        order = rank(scores.values, self.prices.prices, self.tie_temperature, available,
                     self.rng)
        self.window.requests += 1
        self.metrics.score_source.labels(scores.source).inc()
        return RouteDecision(tuple(self.models[i] for i in order), scores)

    def record_ttft(self, ttft_ms: float) -> None:
        self.window.ttft_count += 1
        self.window.ttft_sum_ms += ttft_ms

    # -- control -----------------------------------------------------------------------
    def _publish_prices(self) -> None:
        snap = self.prices
        for m, p in zip(self.models, snap.prices, strict=True):
            self.metrics.price.labels(m).set(float(p))
        self.metrics.multiplier.set(snap.multiplier_per_ms)
        self.metrics.solver_slo.set(snap.slo_target_ms)

    def _publish_state(self) -> None:
        st = self.state
        self.metrics.measured_rate.set(st.rate_rps)
        if st.ttft_mean_ms is not None:
            self.metrics.measured_ttft.set(st.ttft_mean_ms)
            self.metrics.slo_slack.set(self.plan.slo.target_ms - st.ttft_mean_ms)

    def _moved(self, rate: float, slo: float) -> bool:
        rtol = self.cfg.controller.resolve_rtol
        snap = self.prices
        return (abs(rate / snap.rate_rps - 1) > rtol
                or abs(slo / snap.slo_target_ms - 1) > rtol)

    async def control_step(self) -> None:
        """One controller step: smooth the window, re-solve if the target moved, damp."""
        cfg = self.cfg.controller
        old = self.state
        window = self.window.close()
        if self.price_model is not None and window.duration_s > 0:
            predicted = self.price_model.predicted_ttft_ms(
                self.prices.prices, self.tie_temperature, window.requests / window.duration_s)
            window = replace(window, predicted_ms=predicted)
        new = ctl.step(old, window, self.plan.slo.target_ms, cfg)
        self.state = new
        self._publish_state()
        if self.price_model is None or not self._moved(new.rate_rps, tau := ctl.solver_slo_ms(
                new, self.plan.slo.target_ms)):
            return
        result = await asyncio.to_thread(self.price_model.solve, new.rate_rps, tau, self._hint)
        if not result.feasible:
            self.state = ctl.hold_tighten(new, old)
            log.warning("controller: no routing meets %.1f ms at %.1f req/s; prices kept",
                        tau, new.rate_rps)
            return
        self._hint = Hint(alpha=result.prices, beta=result.multiplier)
        prices = np.array([ctl.damp(float(a), float(b), cfg.price_damping)
                           for a, b in zip(self.prices.prices, result.prices, strict=True)])
        self.prices = PriceSnapshot(readonly(prices), result.multiplier, tau, new.rate_rps,
                                    "controller")
        self._publish_prices()
        log.info("controller: rate %.1f req/s, measured TTFT %s ms, solver SLO %.1f ms, "
                 "β %.3g/ms, prices %s", new.rate_rps,
                 "n/a" if new.ttft_mean_ms is None else f"{new.ttft_mean_ms:.1f}", tau,
                 result.multiplier, dict(zip(self.models, np.round(prices, 5), strict=True)))

    async def _control_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.controller.interval_s)
            try:
                await self.control_step()
            except Exception:  # a failed step must not stop routing
                log.exception("controller step failed; prices kept")

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        await self.pool.start()
        for m, b in self.pool.by_model.items():
            self.metrics.healthy.labels(m).set(1.0 if b.healthy else 0.0)
        if self.cfg.controller.enabled and self.price_model is not None:
            self._task = asyncio.get_running_loop().create_task(self._control_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pool.stop()


def _plan_prices(plan: Plan, models: tuple[str, ...]) -> FloatArray:
    missing = [m for m in models if plan.routing.prices.get(m) is None]
    if missing:
        raise InputError(f"the plan has no routing price for deployed model(s) {missing}")
    return readonly(np.array([float(plan.routing.prices[m]) for m in models]))  # type: ignore[arg-type]


def routed_models(plan: Plan, cfg: GatewayConfig) -> tuple[str, ...]:
    """The plan's deployed models; each must have a backend."""
    if not plan.feasible:
        raise InputError(f"{cfg.plan_path}: the plan is infeasible: nothing to route to")
    models = tuple(d.model for d in plan.deployments)
    given = {b.model for b in cfg.backends}
    missing = [m for m in models if m not in given]
    if missing:
        raise InputError(f"no --backend for the plan's deployed model(s) {missing}; "
                         f"give --backend MODEL=URL for each of {list(models)}")
    extra = sorted(given - set(models))
    if extra:
        log.warning("backends %s are not in the plan: reachable by name only, never routed",
                    extra)
    return models


def build_gateway(cfg: GatewayConfig,
                  transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
                  price_model: PriceModel | None = None) -> Gateway:
    """Read the plan and the predictor and build the gateway (no network yet)."""
    plan = load_plan(cfg.plan_path)
    models = routed_models(plan, cfg)
    if price_model is None:
        try:
            price_model = load_price_model(cfg.plan_path, models)
        except InputError as exc:
            log.warning("the plan's routing problem could not be rebuilt (%s): no online "
                        "control, and the prior is flat", exc)
    prior = price_model.prior if price_model is not None else readonly(np.zeros(len(models)))
    scorers = load_scorers(cfg.predictor_dir, models, prior)
    return Gateway(cfg, plan, models, scorers, price_model, transports)
