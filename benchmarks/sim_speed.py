"""Speed: simulate one hour of the ``paper-a100-4m`` plan at its planned rate (bar: ≤ 60 s).

Plans the scenario (``routerwise plan``, cached profiles make this fast after the first
run) unless ``--plan DIR`` is given, then simulates ``--duration-s`` (default 3600) of
Poisson arrivals at the plan's rate, with and without the interference model (coupled
co-runners advance step by step, so interference costs extra steps). Prints wall time,
engine steps, requests, simulated seconds per wall second, and the ratio to the 60 s bar.

    .venv/bin/python benchmarks/sim_speed.py [--plan DIR] [--duration-s 3600]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from routerwise.simulate.inputs import load_target
from routerwise.simulate.interference import DEFAULT_INTERFERENCE, NoInterference
from routerwise.simulate.run import SimOptions, simulate_target

BAR_S = 60.0
SCENARIO = "paper-a100-4m"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plan", type=Path, default=None)
    parser.add_argument("--duration-s", type=float, default=3600.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="routerwise-sim-speed-") as tmp:
        plan_dir = args.plan
        if plan_dir is None:
            plan_dir = Path(tmp) / "plan"
            subprocess.run([sys.executable, "-m", "routerwise", "plan", SCENARIO, "--out",
                            str(plan_dir)], check=True, capture_output=True)
        started = time.perf_counter()
        target = load_target(plan_dir)
        load_s = time.perf_counter() - started
        print(f"{target.plan.scenario}: {target.setup.describe()} at "
              f"{target.planned.rate_rps:g} req/s; {args.duration_s:g} s simulated "
              f"(plan read in {load_s:.1f} s)")
        print(f"{'interference':<40} {'wall s':>7} {'steps':>10} {'requests':>9} "
              f"{'sim s/s':>8} {'÷ bar':>6}")
        for itf in (DEFAULT_INTERFERENCE, NoInterference()):
            rep = simulate_target(target, SimOptions(args.duration_s, interference=itf))
            run = rep.runs[0]
            requests = round(run.offered_rps * args.duration_s)
            print(f"{itf.describe():<40} {rep.wall_s:>7.1f} {run.steps:>10,} {requests:>9,} "
                  f"{args.duration_s / rep.wall_s:>8.0f} {rep.wall_s / BAR_S:>6.2f}")
    print(f"bar: one hour in ≤ {BAR_S:g} s (÷ bar ≤ 1 passes)")


if __name__ == "__main__":
    main()
