"""Simulate stage — the highest rate a plan's setup sustains *in simulation* within its SLO.

Inputs: a :class:`~routerwise.simulate.inputs.SimTarget` and the simulation options.
Output: a rate in req/s (the plan's routing — prices, hence per-model fractions — kept), or
None when even the lowest probe fails. A probe at rate λ passes when its run is stable
(``diagnose.unstable``: mean TTFT not growing through the window, at most 1% of the measured
requests unfinished after a short drain) and the fleet mean TTFT meets the plan's SLO. The
rate is bracketed by doubling or halving from the planned rate, then bisected; probes are
shorter runs (at most ``PROBE_DURATION_S``) with the same seed, interference and arrivals.

This is the correction to carry when simulation and plan disagree about capacity: the plan's
curves end at a capacity estimated by the profile estimator, the simulation measures what
the same engine model sustains under the routed traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from routerwise.simulate.diagnose import unstable
from routerwise.simulate.inputs import SimTarget
from routerwise.simulate.run import SimOptions, simulate_target

PROBE_DURATION_S = 600.0
PROBE_DRAIN_S = 120.0  # long enough for a long answer at a stable rate
_STEPS = 6  # bisection steps: the bracket shrinks to 1/64 of its width
_DOUBLINGS = 4
#: The search stops at this multiple of the starting rate (the result is then a lower bound).
MAX_FACTOR = 2**_DOUBLINGS


def _passes(target: SimTarget, options: SimOptions, rate: float) -> bool:
    report = simulate_target(target, replace(options, rate_rps=rate))
    fleet = report.fleet
    slo = target.plan.slo.target_ms
    return (not unstable(report) and fleet.requests > 0
            and fleet.ttft_mean_ms is not None and fleet.ttft_mean_ms <= slo)


def sustainable_rate_rps(target: SimTarget, options: SimOptions,
                         progress: Callable[[int, int], None] | None = None) -> float | None:
    """The highest rate (within 1/64 of the bracket) whose probe passes."""
    probe = replace(options, duration_s=min(options.duration_s, PROBE_DURATION_S),
                    warmup_s=None, replications=1, max_drain_s=PROBE_DRAIN_S)
    start = options.rate_rps or target.planned.rate_rps
    total = _STEPS + _DOUBLINGS + 2
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    lo, hi = 0.0, start
    ok = _passes(target, probe, start)
    tick()
    if ok:
        lo, hi = start, 2 * start
        for _ in range(_DOUBLINGS):
            ok = _passes(target, probe, hi)
            tick()
            if not ok:
                break
            lo, hi = hi, 2 * hi
        else:
            return lo  # sustains 16× the planned rate: report that much
    else:
        for _ in range(_DOUBLINGS + 2):
            trial = hi / 2
            ok = _passes(target, probe, trial)
            tick()
            if ok:
                lo = trial
                break
            hi = trial
        if lo == 0.0:
            return None
    for _ in range(_STEPS):
        mid = (lo + hi) / 2
        if _passes(target, probe, mid):
            lo = mid
        else:
            hi = mid
        tick()
    return lo
