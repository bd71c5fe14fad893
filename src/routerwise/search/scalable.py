"""The scalable search: Lagrangian pricing, a bundle method and a bounded local search, with a
proven upper bound (docs/architecture.md §4; the exhaustive search stays as the reference).

1. Evaluate the baselines' setups: incumbents and their dual prices.
2. Minimise the Lagrangian bound ``U(α, β)`` over the duals (:mod:`.bundle`); every step solves
   the pricing problem exactly (HiGHS), which proposes a setup: the best one for those duals.
3. Place and evaluate the proposed setups (exact routing, on the executor).
4. Improve the best setup by local search: neighbours (:mod:`.local`) ranked by their own
   Lagrangian bound (:mod:`.bounds`), the most promising evaluated, until none can beat it.
5. Report ``upper_bound = min(U)`` and ``gap = (upper_bound − best) / upper_bound``.

The ``isolated`` baseline (whole dedicated GPUs) is searched the same way over whole-GPU
columns when its combinations are too many to list. Pure apart from the executor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from routerwise.search.baselines import BASELINES, baseline_setups, place, place_variants
from routerwise.search.bounds import complete_prices, lagrangian_bounds
from routerwise.search.bundle import BundleResult, DualPoint, dual_point, minimise_bound
from routerwise.search.columns import (
    Columns,
    build_columns,
    price_columns,
    setup_of,
    top_pricings,
)
from routerwise.search.enumerate import PlacedSetup, count_combinations
from routerwise.search.evaluate import EvalContext, Evaluator, Outcome
from routerwise.search.executors import Executor, make_executor
from routerwise.search.local import neighbours
from routerwise.search.placement import Layout, pool_sizes
from routerwise.search.search import SearchConfig, SearchResult, make_candidate
from routerwise.search.space import SHARE_UNITS, DeploymentOption, ModelOptions, SetupOption
from routerwise.spec.core import FloatArray

Progress = Callable[[int, int], None]
#: Neighbours evaluated per round of local search (the most promising by bound).
LOCAL_WIDTH = 8
#: Rounds of local search at most (each moves to a strictly better setup).
LOCAL_ROUNDS = 200
#: Neighbours evaluated at most per step before the climb stops there.
LOCAL_STEP_LIMIT = 48
#: A move must improve quality by this fraction at least.
MIN_RELATIVE_GAIN = 1e-5
#: Distinct solutions of the pricing problem proposed at the best duals.
TOP_PROPOSALS = 12
#: Setups the local search starts from (the best, then the pricing's proposals).
LOCAL_STARTS = 6


@dataclass(slots=True)
class _Book:
    """Every setup placed so far, its tags and its outcome; evaluates through an executor."""

    executor: Executor
    config: SearchConfig
    progress: Progress | None
    placed: list[PlacedSetup] = field(default_factory=list)
    tags: list[tuple[str, ...]] = field(default_factory=list)
    index: dict[SetupOption, int] = field(default_factory=dict)
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    scheduled: int = 0

    def add(self, ps: PlacedSetup, tags: tuple[str, ...] = ()) -> int:
        i = self.index.get(ps.setup)
        if i is None:
            i = self.index[ps.setup] = len(self.placed)
            self.placed.append(ps)
            self.tags.append(tags)
        elif tags:
            self.tags[i] = tuple(dict.fromkeys(self.tags[i] + tags))
        return i

    def evaluate(self, indices: Iterable[int]) -> None:
        todo = [i for i in dict.fromkeys(indices) if i not in self.outcomes]
        # small batches: a local-search round of a few setups still spreads over the workers
        size = max(1, min(self.config.batch_size // 4, math.ceil(len(todo) / 4)))
        batches = [[(i, self.placed[i].setup) for i in todo[k:k + size]]
                   for k in range(0, len(todo), size)]
        self.scheduled += len(todo)
        for outs in self.executor.run(batches):
            for o in outs:
                self.outcomes[o.index] = o
            if self.progress is not None:
                self.progress(len(self.outcomes), self.scheduled)

    def best(self, among: Callable[[int], bool] = lambda i: True) -> Outcome | None:
        ok = [o for i, o in self.outcomes.items() if o.feasible and among(i)]
        return max(ok, key=lambda o: o.quality, default=None)


def _start(ctx: EvalContext, best: Outcome | None) -> FloatArray:
    """The bundle's first point: the incumbent's duals (prices of models it does not deploy
    completed so they attract no prompt), or zero prices and ``b = 1`` without one."""
    k = len(ctx.models)
    if best is None or not math.isfinite(best.multiplier):
        return np.concatenate((np.zeros(k), [1.0]))
    alpha = complete_prices(ctx.scores, np.array(best.prices, dtype=float))
    return np.concatenate((alpha, [max(best.multiplier, 0.0) * ctx.slo_ms]))


def _bound_search(ctx: EvalContext, cols: Columns, start: FloatArray,
                  pool_gpus: tuple[int, ...], budget_s: float) -> BundleResult:
    def evaluate(p: FloatArray) -> DualPoint:
        return dual_point(ctx.scores, cols, p, ctx.slo_ms, pool_gpus)

    return minimise_bound(evaluate, start, budget_s=budget_s)


def _repaired(cols: Columns, chosen: tuple[int, ...], value: FloatArray,
              options: Sequence[ModelOptions], num_gpus: int, gpus_per_node: Layout
              ) -> PlacedSetup | None:
    """Place the pricing's columns; when first fit cannot, try each model's other shapes on
    the same share units (tp, share and replicas traded), the most valuable first — the
    pricing problem's capacity rows cannot tell them apart, placement can."""
    setup = setup_of(cols, chosen)
    ps = place(options, setup.deployments, num_gpus, gpus_per_node)
    if ps is not None:
        return ps
    worth = {cols.options[c]: float(value[c]) for c in range(len(cols))
             if cols.model[c] in {int(cols.model[x]) for x in chosen}}
    variants: list[list[DeploymentOption | None]] = []
    for o, dep in zip(options, setup.deployments, strict=True):
        if dep is None:
            variants.append([None])
            continue
        same = [d for d in o.options if d.units == dep.units]
        same.sort(key=lambda d: (d != dep, -worth.get(d, 0.0)))
        variants.append(list(same))
    return place_variants(options, variants, num_gpus, gpus_per_node)


def _priced(book: _Book, cols: Columns, bundle: BundleResult, options: Sequence[ModelOptions],
            num_gpus: int, gpus_per_node: Layout, tags: tuple[str, ...]) -> list[int]:
    """Place the setups the pricing problem proposed (best dual points first)."""
    out: list[int] = []
    seen: set[tuple[int, ...]] = set()
    for point in sorted(bundle.points, key=lambda q: q.value):
        chosen = point.pricing.chosen
        if not chosen or chosen in seen:
            continue
        seen.add(chosen)
        ps = _repaired(cols, chosen, point.values, options, num_gpus, gpus_per_node)
        if ps is not None:
            out.append(book.add(ps, tags))
    return out


@dataclass(frozen=True, slots=True)
class _Duals:
    alpha: FloatArray
    beta: float


def _duals_of(outcome: Outcome | None, fallback: _Duals) -> _Duals:
    if outcome is None or not outcome.feasible:
        return fallback
    return _Duals(np.array(outcome.prices, dtype=float), outcome.multiplier)


def _ranked_neighbours(ctx: EvalContext, evaluator: Evaluator, book: _Book, at: int,
                       duals: _Duals, floor: float, options: Sequence[ModelOptions],
                       allowed: Sequence[frozenset[DeploymentOption]], num_gpus: int
                       ) -> list[SetupOption]:
    """Unseen neighbours of setup ``at`` whose bound beats ``floor``, by decreasing bound."""
    nbrs = [n for n in neighbours(book.placed[at].setup, options, allowed,
                                  num_gpus * SHARE_UNITS) if n not in book.index]
    if not nbrs:
        return []
    bounds = _bounds(ctx, evaluator, nbrs, duals)
    order = np.argsort(-bounds, kind="stable")
    return [nbrs[int(j)] for j in order if bounds[j] > floor + 1e-9]


def _bounds(ctx: EvalContext, evaluator: Evaluator, setups: list[SetupOption], duals: _Duals
            ) -> FloatArray:
    """Each setup's own Lagrangian bound at ``duals`` (on the scaled envelopes: valid)."""
    for n in setups:
        for m, d in zip(n.models, n.deployments, strict=True):
            if d is not None:
                evaluator.envelope(m, d)
    return lagrangian_bounds(setups, evaluator.envelopes, ctx.scores, duals.alpha, duals.beta,
                             ctx.slo_ms)


@dataclass(slots=True)
class _Climb:
    """Hill climbing within one phase: the book, its placement and which setups compete."""

    ctx: EvalContext
    evaluator: Evaluator
    book: _Book
    options: Sequence[ModelOptions]
    allowed: Sequence[frozenset[DeploymentOption]]
    num_gpus: int
    gpus_per_node: Layout
    tags: tuple[str, ...]
    among: Callable[[int], bool]
    fallback: _Duals
    bound: float  # proven: nothing in this phase beats it
    gap_target: float  # stop once the best is this close (relative) to the bound
    deadline: float  # perf_counter() after which no new step starts

    def done(self) -> bool:
        """Within the gap target of the proven bound, or out of time."""
        return (self.floor() >= self.bound - max(1e-9, self.gap_target * abs(self.bound))
                or time.perf_counter() > self.deadline)

    def gain(self, at: int) -> float:
        """The least improvement worth a move from ``at`` (relative, so no endless crawl)."""
        return max(1e-9, MIN_RELATIVE_GAIN * abs(self.quality(at)))

    def quality(self, i: int) -> float:
        o = self.book.outcomes.get(i)
        return o.quality if o is not None and o.feasible else -math.inf

    def floor(self) -> float:
        best = self.book.best(self.among)
        return -math.inf if best is None else best.quality

    def step(self, at: int) -> int | None:
        """A better neighbour of ``at`` (evaluated a batch at a time, best bound first)."""
        duals = _duals_of(self.book.outcomes.get(at), self.fallback)
        ranked = _ranked_neighbours(self.ctx, self.evaluator, self.book, at, duals,
                                    self.floor(), self.options, self.allowed, self.num_gpus)
        batch: list[int] = []
        tried = 0
        for k, n in enumerate(ranked):
            ps = place(self.options, n.deployments, self.num_gpus, self.gpus_per_node)
            if ps is not None:
                batch.append(self.book.add(ps, self.tags))
            if len(batch) >= LOCAL_WIDTH or (k == len(ranked) - 1 and batch):
                self.book.evaluate(batch)
                tried += len(batch)
                top = max(batch, key=self.quality)
                if self.quality(top) > self.quality(at) + self.gain(at):
                    return top
                batch = []
                if tried >= LOCAL_STEP_LIMIT or self.done():
                    return None
        return None

    def climb(self, at: int) -> None:
        for _ in range(LOCAL_ROUNDS):
            if self.done():
                return
            nxt = self.step(at)
            if nxt is None:
                return
            at = nxt


def _starts(book: _Book, candidates: Sequence[int], among: Callable[[int], bool]) -> list[int]:
    """Where to climb from: the best setup of the phase, then the pricing's proposals by
    quality (infeasible ones last), at most ``LOCAL_STARTS``."""
    best = book.best(among)
    pool = ([best.index] if best is not None else []) + list(candidates)

    def key(i: int) -> float:
        o = book.outcomes.get(i)
        return o.quality if o is not None and o.feasible else -math.inf

    ordered = sorted(dict.fromkeys(pool), key=key, reverse=True)
    return ordered[:LOCAL_STARTS]


@dataclass(frozen=True, slots=True)
class _Phase:
    """One search over a set of columns (all of them, or whole GPUs for ``isolated``)."""

    keep: Callable[[DeploymentOption], bool] | None
    tags: tuple[str, ...]


def _run_phase(ctx: EvalContext, evaluator: Evaluator, book: _Book, phase: _Phase,
               options: Sequence[ModelOptions], num_gpus: int, gpus_per_node: Layout,
               config: SearchConfig) -> BundleResult:
    keep = phase.keep
    cols = build_columns(evaluator, list(options), keep)
    allowed = [frozenset(d for d in o.options if keep is None or keep(d)) for o in options]

    def among(i: int) -> bool:  # the setups this phase competes with
        return keep is None or bool(set(phase.tags) & set(book.tags[i]))

    budget_s = config.bound_budget_s if keep is None else config.bound_budget_s / 4
    deadline = time.perf_counter() + (config.local_budget_s if keep is None
                                      else config.local_budget_s / 4)
    pool_gpus = pool_sizes(gpus_per_node, num_gpus)
    bundle = _bound_search(ctx, cols, _start(ctx, book.best(among)), pool_gpus, budget_s)
    priced = _priced(book, cols, bundle, options, num_gpus, gpus_per_node, phase.tags)
    book.evaluate(priced)
    k = len(ctx.models)
    fallback = _Duals(bundle.best.p[:k].copy(), float(bundle.best.p[k]) / ctx.slo_ms)
    bound = min(bundle.best.value, float(ctx.scores.max(axis=1).mean()))
    climb = _Climb(ctx, evaluator, book, options, allowed, num_gpus, gpus_per_node, phase.tags,
                   among, fallback, bound, config.gap_target, deadline)
    if not climb.done():
        priced += _proposals(ctx, evaluator, book, cols, fallback, options, num_gpus,
                             gpus_per_node, phase.tags, among)
    for at in _starts(book, priced, among):
        climb.climb(at)
    return bundle


def _proposals(ctx: EvalContext, evaluator: Evaluator, book: _Book, cols: Columns,
               duals: _Duals, options: Sequence[ModelOptions], num_gpus: int,
               gpus_per_node: Layout, tags: tuple[str, ...], among: Callable[[int], bool]
               ) -> list[int]:
    """The pricing problem's best distinct solutions at the best duals, placed, and evaluated
    in order of their own bound while that bound can beat the best found."""
    value = price_columns(cols, duals.alpha, duals.beta).value
    found = top_pricings(cols, value, pool_sizes(gpus_per_node, num_gpus), TOP_PROPOSALS)
    placed = [ps for p in found if (ps := _repaired(cols, p.chosen, value, options, num_gpus,
                                                    gpus_per_node)) is not None]
    fresh = [ps for ps in placed if ps.setup not in book.index]
    if not fresh:
        return []
    bounds = _bounds(ctx, evaluator, [ps.setup for ps in fresh], duals)
    out: list[int] = []
    for j in np.argsort(-bounds, kind="stable"):
        best = book.best(among)
        if best is not None and bounds[j] <= best.quality + 1e-9:
            break
        out.append(book.add(fresh[int(j)], tags))
        if len(out) % LOCAL_WIDTH == 0:
            book.evaluate(out[-LOCAL_WIDTH:])
    book.evaluate(out)
    return out


def _whole(d: DeploymentOption) -> bool:
    return d.share_units == SHARE_UNITS


def _seed_baselines(book: _Book, options: list[ModelOptions], num_gpus: int,
                    gpus_per_node: Layout) -> bool:
    """Add the baselines' setups; False when ``isolated`` was too big to list (searched)."""
    base = baseline_setups(options, num_gpus, gpus_per_node, isolated_limit=2000)
    for name in BASELINES:
        for ps in base.get(name, []):
            book.add(ps, (name,))
    return "isolated" in base


def scalable_search(ctx: EvalContext, options: list[ModelOptions], num_gpus: int,
                    gpus_per_node: Layout, config: SearchConfig = SearchConfig(),
                    progress: Progress | None = None) -> SearchResult:
    """Search without enumerating; the result carries a proven upper bound."""
    start = time.perf_counter()
    evaluator = Evaluator(ctx)
    executor = make_executor(config.executor, ctx, config.workers, config.ray_address)
    book = _Book(executor, config, progress)
    try:
        listed = _seed_baselines(book, options, num_gpus, gpus_per_node)
        n_seed = len(book.placed)
        book.evaluate(range(n_seed))
        if not listed:
            _run_phase(ctx, evaluator, book, _Phase(_whole, ("isolated",)), options, num_gpus,
                       gpus_per_node, config)
        bundle = _run_phase(ctx, evaluator, book, _Phase(None, ()), options, num_gpus,
                            gpus_per_node, config)
    finally:
        book.executor.close()
    return _result(ctx, book, bundle, options, n_seed, time.perf_counter() - start)


def _result(ctx: EvalContext, book: _Book, bundle: BundleResult,
            options: list[ModelOptions], n_seed: int, seconds: float) -> SearchResult:
    candidates = [make_candidate(ps, ctx.gpu_type, i, book.outcomes.get(i), math.nan, False,
                                 book.tags[i]) for i, ps in enumerate(book.placed)]
    ceiling = float(ctx.scores.max(axis=1).mean())
    best = book.best()
    upper = min(bundle.best.value, ceiling)
    if best is not None:
        upper = max(upper, best.quality)  # numerical slack: a bound below a found setup
    return SearchResult(
        candidates=candidates, enumerated=count_combinations(options), retained=None,
        dominated=None, evaluated=len(book.outcomes) - n_seed, pruned=None,
        seconds=seconds, sampled=0, over_capacity=None, non_dominated=None,
        baselines_evaluated=n_seed, method="lagrangian", upper_bound=upper,
        dual_iterations=len(bundle.points))
