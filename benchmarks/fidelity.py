"""Fidelity: does a plan's prediction hold when its cluster is simulated request by request?

For every built-in scenario: the SLO-limited rate is found by planning far above it (the
plan is infeasible and reports ``max_rate_rps``, the highest rate some setup meets the SLO
at), then the scenario is planned at 50%, 75% and 95% of it, and each plan is simulated
(``routerwise.simulate``) with the default interference model and without it. The table
puts the plan's predicted fleet mean TTFT beside the simulated one, and beside two
*steady-state* predictions: each deployed model's share of traffic served by the same engine
model alone (as profiled), for long enough, warm-up excluded — with exactly what the plan's
curve assumed (``steady``: the workload's length pool and an even split over replicas, or,
where the plan's length fixed point re-estimated the curve, the prompts routed to it and its
replicas behind least-outstanding balancing; this checks the curve's interpolation) and with
the lengths of the prompts the router sends each model and its replicas balanced
(``routed``: what the cluster does, MPS co-runners apart). The bar: mean TTFT within 10%,
quality within 0.01.

A second table takes each scenario's 50% plan and simulates its setup and routing at 25%,
50% and 75% of the rate it was planned for (the plan's curves give the prediction there),
and searches the highest rate it sustains within the SLO in simulation
(``--find-max-rate``): where the plan's operating points lie inside what the engine
sustains, prediction and simulation can be compared on equal terms.

Runs whose latency keeps growing (``unstable``) stop serving 60 s after the last arrival.

    .venv/bin/python benchmarks/fidelity.py [--duration-s 600] [--scenarios a,b] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from routerwise.simulate.capacity import sustainable_rate_rps
from routerwise.simulate.diagnose import (
    QUALITY_BAR,
    TTFT_BAR,
    curve_assumptions,
    diagnose,
    routed_lengths,
    steady_state_ttft_ms,
)
from routerwise.simulate.inputs import SimTarget, load_target
from routerwise.simulate.interference import DEFAULT_INTERFERENCE, NoInterference
from routerwise.simulate.run import SimOptions, SimReport, simulate_target

SCENARIOS = ("h100-mixed", "paper-a100-3m", "paper-a100-4m")
LOADS = (0.5, 0.75, 0.95)
BELOW = (0.25, 0.5, 0.75)
DRAIN_S = 60.0


def plan(scenario: str, rate: float, out: Path) -> dict[str, object]:
    """``routerwise plan`` (the CLI, as a user runs it); the plan.json it wrote."""
    cmd = [sys.executable, "-m", "routerwise", "plan", scenario, "--rate-rps", f"{rate:.6g}",
           "--out", str(out), "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode not in (0, 2):
        raise RuntimeError(f"plan {scenario} at {rate}: exit {res.returncode}: {res.stderr}")
    data: dict[str, object] = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    return data


def slo_limited_rate(scenario: str, work: Path) -> float:
    """The highest rate some setup meets the SLO at (planning 20× above the default rate)."""
    spec = plan(scenario, 1000.0, work / f"{scenario}-max")
    infeasible = spec.get("infeasible")
    if not isinstance(infeasible, dict) or infeasible.get("max_rate_rps") is None:
        raise RuntimeError(f"{scenario}: planning at 1000 req/s did not report a max rate")
    return float(infeasible["max_rate_rps"])


def steady_prediction(target: SimTarget, report: SimReport, routed: bool = False
                      ) -> float | None:
    """Fleet mean TTFT if every curve were a steady-state run at its operating point: with
    what the plan's curve assumed, or ``routed`` with the lengths of the prompts the router
    sends each model and its replicas balanced by least outstanding requests."""
    total, weight = 0.0, 0.0
    for m in target.models:
        frac = target.planned.fractions.get(m, 0.0)
        dep = target.setup.deployment(m)
        if frac <= 0 or dep is None:
            continue
        rate = frac * report.predicted.rate_rps / dep.replicas
        if routed:
            (isl, osl), group = routed_lengths(target, m), dep.replicas
        else:
            isl, osl, group = curve_assumptions(target, m)
        value = steady_state_ttft_ms(target.engine_shape(m), isl, osl, rate,
                                     report.options.duration_s, replicas=group)
        if value is None:
            return None
        total += frac * value
        weight += frac
    return total / weight if weight else None


def _pct(value: float | None) -> str:
    """A relative error; from +100% on, the ratio (×31 reads better than +3000%)."""
    if value is None:
        return "     —"
    return f"{value:+6.1%}" if value < 1 else f"{'×' + format(1 + value, '.3g'):>6}"


def _ms(value: float | None) -> str:
    return "      —" if value is None else f"{value:7.4g}"


def _options(duration_s: float, rate: float | None = None, itf: bool = True) -> SimOptions:
    return SimOptions(duration_s, rate_rps=rate, max_drain_s=DRAIN_S,
                      interference=DEFAULT_INTERFERENCE if itf else NoInterference())


def below_row(scenario: str, share: float, target: SimTarget, duration_s: float) -> str:
    rate = share * target.planned.rate_rps
    with_itf = simulate_target(target, _options(duration_s, rate))
    without = simulate_target(target, _options(duration_s, rate, itf=False))
    d_itf, d_none = diagnose(with_itf), diagnose(without)
    flags = ("ok" if d_itf.within_bar else "MISS") + (" unstable" if d_itf.unstable else "")
    return (f"{scenario:<14} {share:>4.0%} {rate:>7.3g} {_ms(with_itf.predicted.ttft_mean_ms)} "
            f"{_ms(without.fleet.ttft_mean_ms)} {_pct(d_none.fleet_ttft_error)} "
            f"{_ms(with_itf.fleet.ttft_mean_ms)} {_pct(d_itf.fleet_ttft_error)} "
            f"{d_itf.quality_error or 0:+8.4f}  {flags}")


def row(scenario: str, load: float, target: SimTarget, duration_s: float) -> str:
    with_itf = simulate_target(target, _options(duration_s))
    without = simulate_target(target, _options(duration_s, itf=False))
    d_itf, d_none = diagnose(with_itf), diagnose(without)
    steady = steady_prediction(target, with_itf)
    routed = steady_prediction(target, with_itf, routed=True)
    pred = target.planned.ttft_mean_ms
    steady_err = None if steady is None or pred is None else steady / pred - 1
    routed_err = None if routed is None or pred is None else routed / pred - 1
    ok = d_itf.within_bar
    flags = ("ok" if ok else "MISS") + (" unstable" if d_itf.unstable else "")
    return (f"{scenario:<14} {load:>4.0%} {target.planned.rate_rps:>7.3g} {_ms(pred)} "
            f"{_ms(steady)} {_pct(steady_err)} {_ms(routed)} {_pct(routed_err)} "
            f"{_ms(without.fleet.ttft_mean_ms)} "
            f"{_pct(d_none.fleet_ttft_error)} {_ms(with_itf.fleet.ttft_mean_ms)} "
            f"{_pct(d_itf.fleet_ttft_error)} {d_itf.quality_error or 0:+8.4f}  {flags}")


HEADER = (f"{'scenario':<14} {'load':>4} {'req/s':>7} {'plan ms':>7} {'steady':>7} "
          f"{'err':>6} {'routed':>7} {'err':>6} {'no-itf':>7} {'err':>6} {'sim ms':>7} "
          f"{'err':>6} {'quality':>8}  verdict")
BELOW_HEADER = (f"{'scenario':<14} {'rate':>4} {'req/s':>7} {'plan ms':>7} {'no-itf':>7} "
                f"{'err':>6} {'sim ms':>7} {'err':>6} {'quality':>8}  verdict")


def sustainable(target: SimTarget, duration_s: float) -> str:
    rate = sustainable_rate_rps(target, _options(min(duration_s, 300.0)))
    planned = target.planned.rate_rps
    got = "none" if rate is None else f"{rate:.3g} req/s ({rate / planned:.0%} of planned)"
    return f"{target.plan.scenario:<14} planned {planned:.3g} req/s; sustains {got}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=None, help="keep the plans here")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="routerwise-fidelity-") as tmp:
        work = args.out or Path(tmp)
        lines, below, sustains = [], [], []
        for scenario in args.scenarios.split(","):
            limit = slo_limited_rate(scenario, work)
            for load in LOADS:
                out = work / f"{scenario}-{round(load * 100)}"
                data = plan(scenario, load * limit, out)
                if not data.get("feasible"):
                    lines.append(f"{scenario:<14} {load:>4.0%} {load * limit:>7.3g} "
                                 "(planning infeasible at this rate)")
                    continue
                line = row(scenario, load, load_target(out), args.duration_s)
                lines.append(line)
                print(line, file=sys.stderr, flush=True)
            half = load_target(work / f"{scenario}-50")
            for share in BELOW:
                line = below_row(scenario, share, half, args.duration_s)
                below.append(line)
                print(line, file=sys.stderr, flush=True)
            sustains.append(sustainable(half, args.duration_s))
            print(sustains[-1], file=sys.stderr, flush=True)
    print(f"Simulated {args.duration_s:g} s per plan (warm-up excluded); load = share of the "
          "SLO-limited rate; err = vs the plan's predicted fleet mean TTFT")
    print("steady: the plan's curves replaced by steady-state runs of the same engine model "
          "with the curves' own assumptions (lengths, balancing; below a whole GPU next to one "
          "busy co-runner); routed: the same with the lengths of the prompts the router sends "
          "each model and its replicas balanced by least outstanding requests; no-itf: "
          "simulated without MPS interference; sim: with "
          f"{DEFAULT_INTERFERENCE.describe()}; quality: simulated − planned (scores)")
    print(f"bar: |TTFT err| ≤ {TTFT_BAR:.0%}, |quality| ≤ {QUALITY_BAR}")
    print(HEADER)
    for line in lines:
        print(line)
    print("\nThe 50% plan's setup and routing at a share of the rate it was planned for "
          "(plan ms: its curves at that rate)")
    print(BELOW_HEADER)
    for line in below:
        print(line)
    print("\nThe 50% plan's highest rate in simulation that is stable with its mean TTFT "
          "within the SLO:")
    for line in sustains:
        print(line)
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
