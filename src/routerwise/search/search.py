"""Search the setups of a cluster for the best routed quality (docs/architecture.md §1, stage 3).

1. Enumerate placeable setups (``enumerate``); dominated ones are counted, not solved.
2. Evaluate the baselines' setups first: a strong incumbent and its dual prices.
3. Bound every other non-dominated setup with those duals (``bounds``); evaluate the rest in
   order of decreasing bound, in batches on an executor, pruning whatever cannot beat the
   best found so far. A random sample of retained setups is evaluated as well, so the
   spread of quality across setups (the paper's figure) is measured, not guessed.
4. Choosing is separate: :func:`best_candidate`.

Pure apart from the executor's processes: same inputs and seed, same result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from routerwise.search.baselines import BASELINES, baseline_setups
from routerwise.search.bounds import BOUND_SLACK, lagrangian_bounds
from routerwise.search.enumerate import EnumerationCounts, PlacedSetup, enumerate_setups
from routerwise.search.evaluate import EvalContext, Evaluator, Outcome
from routerwise.search.executors import Batch, make_executor
from routerwise.search.placement import Layout, typed_setup
from routerwise.search.space import GpuTypes, ModelOptions
from routerwise.spec.deployment import Setup

Status = Literal["feasible", "infeasible", "pruned_bound", "sampled_out"]
MethodName = Literal["lagrangian", "exhaustive"]
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A retained, non-dominated setup (or a baseline's) with what the search made of it."""

    index: int
    setup: Setup
    status: Status
    reason: str
    quality: float = math.nan
    fleet_ttft_ms: float = math.nan
    upper_bound: float = math.nan
    fractions: tuple[float, ...] = ()
    prices: tuple[float, ...] = ()
    baselines: tuple[str, ...] = ()  # the baselines this setup stands for
    convexified: bool = False
    multiplier: float = math.nan  # the SLO's multiplier β at the solution
    lowest_ttft_ms: float = math.nan  # lowest fleet mean TTFT any routing reaches (inf: over)


@dataclass(frozen=True, slots=True)
class SearchConfig:
    method: str = "lagrangian"  # or "exhaustive" (the reference, for small problems)
    executor: str = "process"
    workers: int | None = None
    batch_size: int = 48
    spread_sample: int = 200  # random retained setups evaluated for the quality spread
    seed: int = 0
    bound_budget_s: float = 120.0  # wall time the bundle method may spend on the bound
    gap_target: float = 1e-3  # lagrangian: stop improving once this close to the bound
    local_budget_s: float = 150.0  # lagrangian: wall time after which local search stops
    ray_address: str | None = None  # executor "ray": the cluster to join (None: local)


@dataclass(slots=True)
class SearchResult:
    """What a search found. Counts of the enumeration are None when it did not enumerate."""

    candidates: list[Candidate]
    enumerated: int
    retained: int | None
    dominated: int | None
    evaluated: int
    pruned: int | None
    seconds: float
    sampled: int
    over_capacity: int | None = 0  # non-dominated setups with capacity below the rate
    non_dominated: int | None = 0  # = evaluated + pruned + over_capacity
    baselines_evaluated: int = 0  # baseline setups solved (counted apart)
    method: MethodName = "exhaustive"
    upper_bound: float = math.nan  # proven: no placeable setup's quality exceeds it
    dual_iterations: int = 0  # points of the Lagrangian bound evaluated (lagrangian)

    @property
    def gap(self) -> float:
        """(upper bound − best quality found) / upper bound; nan without a feasible setup."""
        best = max((c.quality for c in self.candidates if c.status == "feasible"),
                   default=math.nan)
        return (self.upper_bound - best) / self.upper_bound if self.upper_bound > 0 else math.nan


def make_candidate(ps: PlacedSetup, gpu_type: GpuTypes, index: int, out: Outcome | None,
                   bound: float, ceiling_hit: bool, baselines: tuple[str, ...] = ()
                   ) -> Candidate:
    setup = typed_setup(ps.setup, ps.instances, gpu_type)
    if out is None:
        if bound == -math.inf:
            return Candidate(index, setup, "infeasible", "rate exceeds its capacity",
                             upper_bound=bound, baselines=baselines, lowest_ttft_ms=math.inf)
        why = (f"upper bound {bound:.4f} cannot beat the best found" if not ceiling_hit
               else "not evaluated: the best plan already routes every prompt to its best model")
        return Candidate(index, setup, "pruned_bound", why, upper_bound=bound,
                         baselines=baselines)
    return Candidate(index, setup, "feasible" if out.feasible else "infeasible",
                     out.reason, quality=out.quality, fleet_ttft_ms=out.fleet_ttft_ms,
                     upper_bound=bound, fractions=out.fractions, prices=out.prices,
                     baselines=baselines, convexified=out.convexified,
                     multiplier=out.multiplier, lowest_ttft_ms=out.lowest_ttft_ms)


def search_setups(
    ctx: EvalContext, options: list[ModelOptions], num_gpus: int, gpus_per_node: Layout,
    config: SearchConfig = SearchConfig(), progress: Progress | None = None,
    enumeration_progress: Callable[[int], None] | None = None,
) -> SearchResult:
    """Enumerate, bound and evaluate setups; every candidate keeps its status and reason."""
    start = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    counts = EnumerationCounts()
    pool, reservoir = _collect(options, num_gpus, gpus_per_node, counts, config.spread_sample,
                               rng, enumeration_progress)
    base = baseline_setups(options, num_gpus, gpus_per_node)
    seeds: list[tuple[PlacedSetup, tuple[str, ...]]] = [
        (ps, (name,)) for name in BASELINES for ps in base[name]]
    everything = [ps for ps, _ in seeds] + pool + [ps for ps in reservoir if ps.dominated]
    tags = [b for _, b in seeds] + [()] * (len(everything) - len(seeds))
    n_seed, n_pool = len(seeds), len(pool)
    outcomes: dict[int, Outcome] = {}
    executor = make_executor(config.executor, ctx, config.workers, config.ray_address)
    done = 0
    total = 0  # setups scheduled so far: the bar's total grows as the search decides

    def run(indices: Sequence[int]) -> None:
        nonlocal done, total
        total += len(indices)
        batches: list[Batch] = [
            [(i, everything[i].setup) for i in indices[k:k + config.batch_size]]
            for k in range(0, len(indices), config.batch_size)]
        for outs in executor.run(batches):
            for o in outs:
                outcomes[o.index] = o
            done += len(outs)
            if progress is not None:
                progress(done, total)

    try:
        sample_idx = [n_seed + n_pool + i for i in range(len(everything) - n_seed - n_pool)]
        sample_idx += [n_seed + int(i) for i in rng.choice(
            n_pool, size=min(n_pool, config.spread_sample // 2), replace=False)] if n_pool else []
        run(list(range(n_seed)) + sample_idx)
        rest = [i for i in range(n_seed, n_seed + n_pool) if i not in outcomes]
        bounds, ceiling_hit = _branch_and_bound(ctx, everything, outcomes, rest, run,
                                                config.batch_size * 4)
    finally:
        executor.close()
    candidates = [
        make_candidate(ps, ctx.gpu_type, i, outcomes.get(i), float(bounds[i]), ceiling_hit, tags[i])
        for i, ps in enumerate(everything)]
    evaluated = sum(1 for i in outcomes if n_seed <= i < n_seed + n_pool)
    best = _best(outcomes)
    pruned_bounds = [float(bounds[i]) for i in range(n_seed, n_seed + n_pool)
                     if i not in outcomes]
    # every non-dominated setup was solved or bounded below the best (+ the bound's slack);
    # a dominated one is never better than its non-dominated upgrade
    upper = (max([best, *pruned_bounds]) if best > -math.inf and not ceiling_hit
             else best if ceiling_hit else math.nan)
    over_capacity = sum(1 for i in range(n_seed, n_seed + n_pool)
                        if i not in outcomes and bounds[i] == -math.inf)
    return SearchResult(
        candidates=candidates, enumerated=counts.enumerated, retained=counts.retained,
        dominated=counts.dominated, evaluated=evaluated,
        pruned=n_pool - evaluated - over_capacity,
        seconds=time.perf_counter() - start, sampled=len(everything) - n_seed - n_pool,
        over_capacity=over_capacity, non_dominated=n_pool, baselines_evaluated=n_seed,
        method="exhaustive", upper_bound=upper,
    )


def _branch_and_bound(ctx: EvalContext, everything: list[PlacedSetup],
                      outcomes: dict[int, Outcome], rest: list[int],
                      run: Callable[[Sequence[int]], None], chunk_size: int
                      ) -> tuple[np.ndarray, bool]:
    """Evaluate ``rest`` in order of decreasing bound until nothing left can beat the best.

    Returns every setup's bound (``inf`` where none was computed) and whether the search
    stopped because the best plan routes every prompt to its best model (the ceiling).
    """
    bounds = np.full(len(everything), math.inf)
    bounds, rest = _bound(ctx, everything, outcomes, rest, bounds)
    ceiling = float(ctx.scores.max(axis=1).mean())  # every prompt on its best model
    bounded_at = _best(outcomes)
    while rest:
        best = _best(outcomes)
        if best >= ceiling - 1e-9:
            return bounds, True  # nothing beats routing every prompt to its best model
        if best > bounded_at + 1e-4:  # a better incumbent: tighter bounds from its duals
            bounds, rest = _bound(ctx, everything, outcomes, rest, bounds)
            bounded_at = best
        # pruned: setups that cannot beat the best found by more than the bound's slack
        # (1e-6 in quality, which covers the chord approximation of the costs)
        rest = [i for i in rest if bounds[i] - BOUND_SLACK > best + 1e-9]
        chunk = rest[:chunk_size]
        rest = rest[len(chunk):]
        if chunk:
            run(chunk)
    return bounds, False


def _collect(options: list[ModelOptions], num_gpus: int, gpus_per_node: Layout,
             counts: EnumerationCounts, sample: int, rng: np.random.Generator,
             tick: Callable[[int], None] | None = None
             ) -> tuple[list[PlacedSetup], list[PlacedSetup]]:
    """Non-dominated setups, and a uniform reservoir sample of all retained ones."""
    pool: list[PlacedSetup] = []
    reservoir: list[PlacedSetup] = []
    for ps in enumerate_setups(options, num_gpus, gpus_per_node, counts, tick):
        if not ps.dominated:
            pool.append(ps)
        if len(reservoir) < sample:
            reservoir.append(ps)
        else:
            j = int(rng.integers(0, counts.retained))
            if j < sample:
                reservoir[j] = ps
    return pool, reservoir


def _best(outcomes: dict[int, Outcome]) -> float:
    return max((o.quality for o in outcomes.values() if o.feasible), default=-math.inf)


def _bound(ctx: EvalContext, everything: list[PlacedSetup], outcomes: dict[int, Outcome],
           rest: list[int], bounds: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Bounds of ``rest`` from the duals of the best few setups found; ``rest`` sorted by bound."""
    feasible = sorted((o for o in outcomes.values() if o.feasible), key=lambda o: -o.quality)
    if not feasible or not rest:
        return bounds, rest
    evaluator = Evaluator(ctx)
    setups = [everything[i].setup for i in rest]
    for s in setups:
        for m, d in zip(s.models, s.deployments, strict=True):
            if d is not None:
                evaluator.cost(m, d)
    ub = bounds[rest].copy()
    for o in feasible[:3]:
        ub = np.minimum(ub, lagrangian_bounds(setups, evaluator.costs, ctx.scores,
                                              np.array(o.prices), o.multiplier, ctx.slo_ms))
    bounds[rest] = ub
    order = np.argsort(-ub, kind="stable")
    return bounds, [rest[int(j)] for j in order]


def best_candidate(candidates: Sequence[Candidate]) -> Candidate | None:
    """The feasible candidate with the highest quality (ties: fewer GPU share units)."""
    feasible = [c for c in candidates if c.status == "feasible"]
    if not feasible:
        return None
    return max(feasible, key=lambda c: (round(c.quality, 12), -_gpu_share(c.setup)))


def _gpu_share(setup: Setup) -> float:
    return sum(d.gpu_share for d in setup.deployments)
