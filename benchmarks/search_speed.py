"""SetupOption-search speed on the paper's four-model setting (``paper-a100-4m``, 8× A100-80GB).

Prints the search counts (enumerated, retained, dominated, evaluated, pruned by bound) and
the seconds the search took with profiles already cached, against a reference measured in
the same run: the time to evaluate a fixed sample of non-dominated setups one by one, scaled
to all of them (what the search would cost without bounds). Goal (issue: plan): ≤ 60 s on a
2-core machine with cached profiles.

Run: ``.venv/bin/python benchmarks/search_speed.py [--rate-rps R] [--slo-ms T]``
"""

from __future__ import annotations

import argparse
import time

from routerwise.plan.inputs import plan_inputs
from routerwise.plan.run import make_plan
from routerwise.scenarios.registry import load_scenario_spec
from routerwise.search.enumerate import EnumerationCounts, enumerate_setups
from routerwise.search.evaluate import Evaluator
from routerwise.search.search import SearchConfig
from routerwise.spec.plan import plan_to_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate-rps", type=float, default=None)
    parser.add_argument("--slo-ms", type=float, default=None)
    parser.add_argument("--sample", type=int, default=200)
    args = parser.parse_args()
    spec = load_scenario_spec("paper-a100-4m")
    updates: dict[str, object] = {}
    if args.rate_rps:
        updates["rate_rps"] = args.rate_rps
    if args.slo_ms:
        updates["slo"] = spec.slo.model_copy(update={"target_ms": args.slo_ms})
    spec = spec.model_copy(update=updates)

    start = time.perf_counter()
    make_plan(spec, "paper-a100-4m", None, config=SearchConfig(executor="serial"))
    print(f"profiles and a first plan (cache warm-up): {time.perf_counter() - start:.1f} s")

    run = make_plan(spec, "paper-a100-4m", None, config=SearchConfig(executor="process"))
    s = plan_to_dict(run.built.plan)["search"]
    print(f"paper-a100-4m at {spec.rate_rps:g} req/s, SLO {spec.slo.target_ms:g} ms, "
          f"{spec.cluster.num_gpus}× {spec.cluster.gpu_type}")
    print(f"  enumerated {s['enumerated']:,}  retained {s['retained']:,}  "
          f"dominated {s['dominated']:,}  evaluated {s['evaluated']:,}  "
          f"pruned by bound {s['pruned_by_bound']:,}  over capacity "
          f"{s['over_capacity']:,}  sampled for spread {s['sampled_for_spread']:,}")
    print(f"  search {s['seconds']:.1f} s (goal ≤ 60 s)  quality "
          f"{run.built.plan.quality.predicted:.4f}  spread {s['spread']:.0%}")

    inputs = plan_inputs(spec, "paper-a100-4m", None)
    c = spec.cluster
    counts = EnumerationCounts()
    pool = [p for p in enumerate_setups(inputs.options, c.num_gpus, c.gpus_per_node, counts)
            if not p.dominated]
    evaluator = Evaluator(run.ctx)
    step = max(1, len(pool) // args.sample)
    sample = pool[::step][: args.sample]
    t0 = time.perf_counter()
    for i, p in enumerate(sample):
        evaluator.evaluate(i, p.setup)
    per_setup = (time.perf_counter() - t0) / len(sample)
    exhaustive = per_setup * len(pool)
    print(f"  reference: {per_setup * 1000:.1f} ms per setup serially → evaluating all "
          f"{len(pool):,} non-dominated setups would take {exhaustive:.0f} s; the search took "
          f"{s['seconds'] / exhaustive:.2f}× that")


if __name__ == "__main__":
    main()
