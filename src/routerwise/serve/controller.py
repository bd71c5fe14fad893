"""Serve stage — the online price controller: a pure, bounded, damped integral controller.

The plan's prices are right for the plan's rate and latency curves. Online, the arrival rate
drifts and the real curves differ from the estimated ones. Each control step (every
``interval_s``) sees one window of traffic — routed requests and the TTFT of those streamed
— and keeps two smoothed estimates (EWMA): the arrival rate (feed-forward: the routing is
re-solved at the measured rate) and the fleet mean TTFT (feedback). The feedback is an
integral term ``u`` on the relative TTFT error ``ttft/τ − 1`` (a shortfall inside a dead
band is ignored; an excess never is)
and a smoothed bias ``b = log(measured / predicted)`` (the plan's curves' error for the
routing in force) move the SLO the solver is given, ``τ_eff = τ·e^−(u + b)``: too slow →
a tighter target → a larger multiplier β → higher prices on the loaded models. ``u`` is bounded
(``−max_relax ≤ u ≤ max_tighten``) and does not grow while the tighter target is
unreachable (anti-windup); the shell moves the prices only part of the way to each new
solution (``price_damping``).

Functional core: :func:`step` is a pure function of the state, one window and the config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from routerwise.serve.config import ControllerConfig


@dataclass(frozen=True, slots=True)
class Window:
    """What one control interval saw."""

    duration_s: float
    requests: int  # routed requests that arrived
    ttft_sum_ms: float  # over the streamed ones whose first token came in the window
    ttft_count: int
    predicted_ms: float | None = None  # the plan's curves' fleet TTFT for this window's
    # routing at its measured rate (None: unknown)


@dataclass(frozen=True, slots=True)
class ControllerState:
    rate_rps: float  # smoothed arrival rate of routed requests
    ttft_mean_ms: float | None  # smoothed fleet mean TTFT (None: no samples yet)
    tighten: float  # u: the solver's SLO is τ·e^−(u + bias)
    steps: int = 0
    bias: float = 0.0  # smoothed log(measured / predicted) TTFT: the curves' error


def initial_state(plan_rate_rps: float) -> ControllerState:
    return ControllerState(rate_rps=plan_rate_rps, ttft_mean_ms=None, tighten=0.0)


def _ewma(old: float | None, new: float, weight: float) -> float:
    return new if old is None else (1 - weight) * old + weight * new


def step(state: ControllerState, window: Window, slo_ms: float,
         cfg: ControllerConfig) -> ControllerState:
    """The state after one window (rate, TTFT and the curves' bias smoothed, the integral
    term updated on what the bias does not explain)."""
    rate = state.rate_rps
    if window.duration_s > 0:
        rate = _ewma(rate, window.requests / window.duration_s, cfg.smoothing)
    if window.ttft_count < cfg.min_samples:
        return ControllerState(rate, state.ttft_mean_ms, state.tighten, state.steps + 1,
                               state.bias)
    measured = window.ttft_sum_ms / window.ttft_count
    ttft = _ewma(state.ttft_mean_ms, measured, cfg.smoothing)
    bias = state.bias
    if window.predicted_ms is not None and window.predicted_ms > 0 and measured > 0:
        bias = _clip(_ewma(bias, math.log(measured / window.predicted_ms), cfg.smoothing),
                     cfg)
    tighten = state.tighten
    error = ttft / slo_ms - 1.0
    if error > 0 or error < -cfg.deadband:  # over the SLO: always act
        tighten = _clip(tighten + cfg.gain * error, cfg)
    return ControllerState(rate, ttft, tighten, state.steps + 1, bias)


def _clip(value: float, cfg: ControllerConfig) -> float:
    return min(max(value, -cfg.max_relax), cfg.max_tighten)


def solver_slo_ms(state: ControllerState, slo_ms: float) -> float:
    """τ_eff, the SLO the routing is re-solved for (bounded like each term)."""
    total = min(max(state.tighten + state.bias, -_RELAX_CAP), _TIGHTEN_CAP)
    return slo_ms * math.exp(-total)


#: Bounds of the two terms together (each is bounded by the config's too).
_TIGHTEN_CAP, _RELAX_CAP = 1.5, 0.5


def hold_tighten(new: ControllerState, old: ControllerState) -> ControllerState:
    """Anti-windup: the new state with ``u`` no tighter than before (the target was
    unreachable)."""
    return replace(new, tighten=min(new.tighten, max(old.tighten, 0.0)))


def damp(old: float, new: float, weight: float) -> float:
    """Move ``weight`` of the way from ``old`` to ``new``."""
    return old + weight * (new - old)
