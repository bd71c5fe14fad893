"""Deployment columns and the pricing problem of the scalable search (docs/architecture.md §4).

A *column* is one deployment option of one model (``replicas × tp@share``). For prices ``α``
(quality per routed fraction, one per model) and an SLO multiplier ``β ≥ 0`` (quality per ms),
a column is worth

    g_c(α, β) = max_{0 ≤ x ≤ cap_c} α_m·x − β·h_c(x)

where ``h_c`` is the convex envelope of the model's fleet-SLO cost on that deployment
(``routing.costs``). The *pricing problem* picks at most one column per model, maximising
``Σ g_c``, subject to the cluster's capacity — a multiple-choice knapsack solved exactly by
HiGHS (``scipy.optimize.milp``). Its constraints are a relaxation of placement — the share
units of the GPUs, and the same count after a *dual-feasible function* ``u_k`` of Fekete and
Schepers (2001) rounds each shard's share (``u_k(s) = s`` when ``(k+1)s`` is an integer, else
``⌊(k+1)s⌋/k``; shards that fit on one GPU have ``Σ u_k ≤ 1``, so ``Σ u_k ≤ #GPUs`` over all
shards of a placeable setup) — so its optimum bounds every placeable setup: the Lagrangian
bound of :mod:`routerwise.search.bundle`.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from routerwise.errors import InfeasibleError, SolverError
from routerwise.search.evaluate import Evaluator
from routerwise.search.space import SHARE_UNITS, DeploymentOption, ModelOptions, SetupOption
from routerwise.spec.core import FloatArray

IntArray = np.ndarray
#: Seconds HiGHS may spend on one pricing problem; past it the MILP's dual bound is used.
MILP_TIME_LIMIT_S = 30.0
#: The dual-feasible functions ``u_k`` whose rounded counts constrain the pricing problem.
DFF_KS = (1, 2, 3, 4)


@dataclass(frozen=True, slots=True)
class Columns:
    """Every deployment option of every model. Costs are kept per instance shape (one
    replica): ``r`` replicas of a shape cost ``h_r(x) = r·h_1(x/r)`` (each takes ``x/r``), so
    a column's worth is ``r·max_{y ≤ 1/r} (α·y − β·h_1(y))`` on the shape's envelope — exact
    for the envelope, which is all the bound needs, and no cost is built per replica count."""

    models: tuple[str, ...]
    options: tuple[DeploymentOption, ...]  # (C,)
    model: IntArray  # (C,) model index of each column
    units: IntArray  # (C,) share units used
    rounded: FloatArray  # (len(DFF_KS), C) Σ over the column's shards of u_k(share)
    pool: IntArray  # (C,) the node pool its GPUs are in
    shape: IntArray  # (C,) the column's instance shape
    reps: IntArray  # (C,) its replicas
    shape_model: IntArray  # (S,) model index of each shape
    vx: FloatArray  # (V,) one replica's envelope vertices (fractions), shape by shape
    vh: FloatArray  # (V,) envelope values (ms · fraction)
    vshape: IntArray  # (V,) shape of each vertex
    last: IntArray  # (S,) last vertex of each shape

    def __len__(self) -> int:
        return len(self.options)


def build_columns(evaluator: Evaluator, options: list[ModelOptions],
                  keep: Callable[[DeploymentOption], bool] | None = None) -> Columns:
    """Columns of every option (``keep`` filters them, e.g. whole GPUs only)."""
    opts = [(i, d) for i, o in enumerate(options) for d in o.options
            if keep is None or keep(d)]
    if not opts:
        raise InfeasibleError("no deployment option of any model fits on the cluster")
    shapes = sorted({(i, d.tp, d.share_units, d.pool) for i, d in opts})
    index = {s: k for k, s in enumerate(shapes)}
    envelopes = [evaluator.cost(options[i].model, DeploymentOption(tp, su, 1, pool))
                 for i, tp, su, pool in shapes]
    lengths = np.array([len(c.xs) for c in envelopes])
    deps = [d for _, d in opts]
    return Columns(
        models=tuple(o.model for o in options), options=tuple(deps),
        model=np.array([i for i, _ in opts]), units=np.array([d.units for d in deps]),
        rounded=np.array([[d.shards * dff(k, d.share_units) for d in deps] for k in DFF_KS]),
        pool=np.array([d.pool for d in deps]),
        shape=np.array([index[(i, d.tp, d.share_units, d.pool)] for i, d in opts]),
        reps=np.array([d.replicas for d in deps]),
        shape_model=np.array([i for i, _, _, _ in shapes]),
        vx=np.concatenate([c.xs for c in envelopes]),
        vh=np.concatenate([c.hs for c in envelopes]),
        vshape=np.repeat(np.arange(len(shapes)), lengths), last=np.cumsum(lengths) - 1)


def capacity_rows(cols: Columns, pools: int) -> FloatArray:
    """(pools·(1 + len(DFF_KS)), C): each column's GPUs of share and rounded shares, in its
    pool's block of rows (each block is bounded by the pool's GPU count)."""
    per = np.vstack((cols.units[None, :] / SHARE_UNITS, cols.rounded))
    out = np.zeros((pools * len(per), len(cols)))
    for p in range(pools):
        mine = cols.pool == p
        out[p * len(per):(p + 1) * len(per), mine] = per[:, mine]
    return out


def dff(k: int, share_units: int) -> float:
    """Fekete–Schepers ``u_k`` of a share of ``share_units`` tenths, as a fraction of a GPU."""
    scaled = (k + 1) * share_units
    if scaled % SHARE_UNITS == 0:
        return share_units / SHARE_UNITS
    return (scaled // SHARE_UNITS) / k


@dataclass(frozen=True, slots=True)
class Prices:
    """Each column's worth at one dual point, and where it is attained."""

    value: FloatArray  # (C,) g_c ≥ 0
    x: FloatArray  # (C,) maximising fraction
    h: FloatArray  # (C,) its SLO cost (ms · fraction)


def price_columns(cols: Columns, alpha: FloatArray, beta: float) -> Prices:
    """``g_c(α, β)`` for every column: ``r`` times the best point of its shape's envelope
    with ``y ≤ 1/r`` — a vertex (the running maximum over vertices, ``y = 0`` included) or
    the envelope at ``y = 1/r`` itself."""
    val = alpha[cols.shape_model[cols.vshape]] * cols.vx - beta * cols.vh
    big = 2.0 * float(np.abs(val).max()) + 1.0  # shape offsets: one running max per shape
    adj = val + cols.vshape * big
    running = np.maximum.accumulate(adj)
    where = np.maximum.accumulate(np.where(adj >= running, np.arange(len(adj)), 0))
    limit = 1.0 / cols.reps
    key = cols.vshape * 2.0 + cols.vx  # sorted: shapes in order, vertices by x within
    j = np.searchsorted(key, cols.shape * 2.0 + limit, side="right") - 1
    vertex_value = running[j] - cols.shape * big
    y, h = cols.vx[where[j]], cols.vh[where[j]]
    inner = j < cols.last[cols.shape]  # 1/r falls inside the envelope: its point there
    nxt = np.minimum(j + 1, len(cols.vx) - 1)
    t = (limit - cols.vx[j]) / np.where(inner, cols.vx[nxt] - cols.vx[j], 1.0)
    h_at = cols.vh[j] + t * (cols.vh[nxt] - cols.vh[j])
    edge_value = np.where(inner, alpha[cols.model] * limit - beta * h_at, -np.inf)
    use_edge = edge_value > vertex_value
    r = cols.reps.astype(float)
    return Prices(value=r * np.maximum(vertex_value, edge_value),
                  x=r * np.where(use_edge, limit, y), h=r * np.where(use_edge, h_at, h))


@dataclass(frozen=True, slots=True)
class Pricing:
    """The pricing problem's answer: chosen columns, value and a valid bound on its optimum."""

    chosen: tuple[int, ...]  # column indices (at most one per model)
    value: float  # Σ g over the chosen columns
    bound: float  # ≥ the optimum (= value when HiGHS proved optimality)


def _useful(cols: Columns, value: FloatArray) -> IntArray:
    """Columns worth keeping: positive value and not dominated by a column of the same model
    that is worth at least as much while using no more of any resource row."""
    use = capacity_rows(cols, int(cols.pool.max()) + 1)  # (rows, C)
    keep: list[IntArray] = []
    for m in range(len(cols.models)):
        idx = np.flatnonzero((cols.model == m) & (value > 1e-12))
        if len(idx):
            keep.append(idx[_pareto(use[:, idx], value[idx])])
    return np.sort(np.concatenate(keep)) if keep else np.array([], dtype=np.intp)


def _pareto(use: FloatArray, value: FloatArray) -> IntArray:
    """Positions not dominated: no column earlier in order of decreasing value (then fewer
    units) uses no more of every resource."""
    order = np.lexsort((use[0], -value))
    u = use[:, order]
    covers = np.all(u[:, :, None] <= u[:, None, :] + 1e-12, axis=0)  # [j, i]: j ≤ i everywhere
    dominated = np.triu(covers, k=1).any(axis=0)
    out: IntArray = order[~dominated]
    return out


def solve_pricing(cols: Columns, value: FloatArray, pool_gpus: tuple[int, ...]) -> Pricing:
    """Maximise Σ g_c over at most one column per model within each pool's capacity."""
    return _solve(cols, value, pool_gpus, _useful(cols, value), ())


def top_pricings(cols: Columns, value: FloatArray, pool_gpus: tuple[int, ...], count: int
                 ) -> list[Pricing]:
    """The ``count`` best distinct solutions of the pricing problem (no-good cuts) over the
    columns not dominated in value and capacity (placement repairs shapes later)."""
    use = _useful(cols, value)
    out: list[Pricing] = []
    for _ in range(count):
        found = _solve(cols, value, pool_gpus, use, tuple(p.chosen for p in out))
        if not found.chosen or found.chosen in {p.chosen for p in out}:
            break
        out.append(found)
    return out


def _solve(cols: Columns, value: FloatArray, pool_gpus: tuple[int, ...], use: IntArray,
           exclude: tuple[tuple[int, ...], ...]) -> Pricing:
    from scipy.optimize import Bounds, LinearConstraint, milp  # heavy: imported on use
    from scipy.sparse import csr_matrix, vstack

    if len(use) == 0:
        return Pricing((), 0.0, 0.0)
    k, r = len(cols.models), len(DFF_KS)
    one_per_model = csr_matrix((np.ones(len(use)), (cols.model[use], np.arange(len(use)))),
                               shape=(k, len(use)))
    capacity = capacity_rows(cols, len(pool_gpus))[:, use]
    rows = [one_per_model, csr_matrix(capacity)]
    upper = [np.ones(k), np.repeat(np.asarray(pool_gpus, dtype=float), r + 1)]
    position = {int(c): j for j, c in enumerate(use)}
    for chosen in exclude:  # Σ_{c∈S} y_c − Σ_{c∉S} y_c ≤ |S| − 1
        cut = -np.ones(len(use))
        cut[[position[c] for c in chosen]] = 1.0
        rows.append(csr_matrix(cut[None, :]))
        upper.append(np.array([len(chosen) - 1.0]))
    with _quiet_stdout():
        res = milp(-value[use], integrality=np.ones(len(use), dtype=np.int64),
                   bounds=Bounds(0, 1),
                   constraints=LinearConstraint(vstack(rows).tocsr(), -np.inf,
                                                np.concatenate(upper)),
                   options={"time_limit": MILP_TIME_LIMIT_S, "mip_rel_gap": 1e-9})
    if res.x is None:
        if exclude:
            return Pricing((), 0.0, 0.0)  # every solution is excluded
        raise SolverError(f"HiGHS found no solution of the pricing problem: {res.message}")
    chosen_now = tuple(int(use[j]) for j in np.flatnonzero(res.x > 0.5))
    total = float(value[list(chosen_now)].sum())
    return Pricing(chosen_now, total, _proven_bound(res, total))


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS (C++) sometimes writes debug lines to file descriptor 1 even with ``disp`` off;
    they would corrupt ``plan --json`` on stdout. Route fd 1 to /dev/null meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def _proven_bound(res: object, total: float) -> float:
    """HiGHS's dual bound on the optimum (the solution's value when it proved optimality)."""
    dual = getattr(res, "mip_dual_bound", None)
    if dual is not None and math.isfinite(float(dual)):
        return max(total, -float(dual))
    return total if getattr(res, "status", 1) == 0 else math.inf


def setup_of(cols: Columns, chosen: tuple[int, ...]) -> SetupOption:
    """The setup option that deploys the chosen columns (others not deployed)."""
    deps: list[DeploymentOption | None] = [None] * len(cols.models)
    for c in chosen:
        deps[int(cols.model[c])] = cols.options[c]
    return SetupOption(cols.models, tuple(deps))
