"""Search speed at scale: models × GPUs → seconds, setups evaluated, gap, peak memory.

Each row plans K models of the built-in ``fleet-16m-64g`` scenario (its 5 open base models
first, 7B to 70B, then their fine-tunes; LLMRouter-derived workload) on G H100 GPUs in nodes
of 8, at 5 req/s per GPU and its 30 ms mean-TTFT SLO, with latency profiles already cached
(the first run estimates them: minutes). The scalable ``lagrangian`` search runs in a fresh
process per row (peak RSS of it and its pool workers); the ``exhaustive`` reference runs
beside it where it finishes within ``--exhaustive-limit-s``; the qualities are compared.
Goals (issue: a search that scales): 6×8 ≤ 30 s; 16×64 ≤ 5 min with gap ≤ 1%; ≤ 2 GB.

Run: ``.venv/bin/python benchmarks/search_speed.py [--rows 4x8,6x8,...] [--workers N]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

ROWS = "4x8,6x8,8x16,4x64,16x64"
SCENARIO = "fleet-16m-64g"
RATE_PER_GPU = 5.0


def _spec(models: int, gpus: int):  # type: ignore[no-untyped-def]
    """The scenario's first ``models`` models, base models first (7B to 70B), on ``gpus``."""
    from routerwise.scenarios.registry import SCENARIOS, load_scenario_spec

    spec = load_scenario_spec(SCENARIO)
    tuned = {t.name for t in SCENARIOS[SCENARIO].fine_tunes}
    ordered = sorted(spec.models, key=lambda m: m.name in tuned)  # stable: bases first
    keep, drop = ordered[:models], ordered[models:]
    cluster = spec.cluster.model_copy(update={"num_gpus": gpus, "gpus_per_node": 8})
    workload = spec.workload.model_copy(update={"ignore_models": tuple(
        m.name for m in drop)})
    return spec.model_copy(update={"models": tuple(keep), "cluster": cluster, "workload": workload,
                                   "rate_rps": RATE_PER_GPU * gpus})


def _row(models: int, gpus: int, method: str, workers: int) -> dict[str, object]:
    """One search in this process (the child side of ``--one``)."""
    from routerwise.plan.run import make_plan
    from routerwise.search.search import SearchConfig

    spec = _spec(models, gpus)
    start = time.perf_counter()
    run = make_plan(spec, SCENARIO, None,
                    config=SearchConfig(method=method, workers=workers, spread_sample=0))
    plan = run.built.plan
    rss = [resource.getrusage(who).ru_maxrss for who in
           (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return {"seconds": plan.search.seconds, "total_s": time.perf_counter() - start,
            "evaluated": plan.search.evaluated, "gap": plan.search.gap,
            "dual_points": plan.search.dual_iterations,
            "quality": plan.quality.predicted, "bound": plan.search.upper_bound,
            "feasible": plan.feasible, "peak_mb": max(rss) / 1024}


def _child(models: int, gpus: int, method: str, workers: int, limit_s: float
           ) -> dict[str, object] | None:
    cmd = [sys.executable, __file__, "--one", f"{models}x{gpus}", "--method", method,
           "--workers", str(workers)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s, check=True)
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{models}x{gpus} {method} failed:\n{exc.stderr[-2000:]}") from exc
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _fmt(r: dict[str, object] | None, limit_s: float) -> str:
    if r is None:
        return f"> {limit_s:.0f} s (stopped)"
    return f"{r['seconds']:.1f} s, Q {r['quality']:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default=ROWS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--exhaustive-limit-s", type=float, default=300.0)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="lagrangian", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        k, g = (int(x) for x in args.one.split("x"))
        print(json.dumps(_row(k, g, args.method, args.workers)))
        return
    print(f"{SCENARIO} subsets on H100 (8 per node), {RATE_PER_GPU:g} req/s per GPU, "
          f"{args.workers} workers, profiles cached; lagrangian vs exhaustive")
    print(f"{'models×GPUs':>11} {'search s':>9} {'evaluated':>9} {'duals':>5} {'gap':>7} "
          f"{'peak MB':>8} {'quality':>8}  exhaustive")
    for row in args.rows.split(","):
        k, g = (int(x) for x in row.split("x"))
        _child(k, g, "lagrangian", args.workers, 3600)  # warm the profile cache
        lag = _child(k, g, "lagrangian", args.workers, 3600)
        assert lag is not None
        ref = _child(k, g, "exhaustive", args.workers, args.exhaustive_limit_s)
        same = ("" if ref is None or lag["quality"] is None or ref["quality"] is None else
                f"  |ΔQ| {abs(float(lag['quality']) - float(ref['quality'])):.1e}")  # type: ignore[arg-type]
        gap = "—" if lag["gap"] is None else f"{float(lag['gap']):.2%}"  # type: ignore[arg-type]
        print(f"{row:>11} {lag['seconds']:>9.1f} {lag['evaluated']:>9} "
              f"{lag['dual_points']:>5} {gap:>7} "
              f"{lag['peak_mb']:>8.0f} {lag['quality'] or float('nan'):>8.4f}  "
              f"{_fmt(ref, args.exhaustive_limit_s)}{same}", flush=True)


if __name__ == "__main__":
    main()
