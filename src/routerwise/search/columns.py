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
from collections.abc import Callable
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
    """Every deployment option of every model, with its cost envelope flattened."""

    models: tuple[str, ...]
    options: tuple[DeploymentOption, ...]  # (C,)
    model: IntArray  # (C,) model index of each column
    units: IntArray  # (C,) share units used
    rounded: FloatArray  # (len(DFF_KS), C) Σ over the column's shards of u_k(share)
    vx: FloatArray  # (V,) envelope vertices (fractions), column by column
    vh: FloatArray  # (V,) envelope values (ms · fraction)
    vcol: IntArray  # (V,) column of each vertex
    starts: IntArray  # (C,) first vertex of each column

    def __len__(self) -> int:
        return len(self.options)


def build_columns(evaluator: Evaluator, options: list[ModelOptions],
                  keep: Callable[[DeploymentOption], bool] | None = None) -> Columns:
    """Columns of every option (``keep`` filters them, e.g. whole GPUs only)."""
    opts: list[DeploymentOption] = []
    model: list[int] = []
    xs: list[FloatArray] = []
    hs: list[FloatArray] = []
    for i, o in enumerate(options):
        for d in o.options:
            if keep is not None and not keep(d):
                continue
            cost = evaluator.cost(o.model, d)
            opts.append(d)
            model.append(i)
            xs.append(cost.xs)
            hs.append(cost.hs)
    if not opts:
        raise InfeasibleError("no deployment option of any model fits on the cluster")
    lengths = np.array([len(x) for x in xs])
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    return Columns(
        models=tuple(o.model for o in options), options=tuple(opts),
        model=np.array(model), units=np.array([d.units for d in opts]),
        rounded=np.array([[d.shards * dff(k, d.share_units) for d in opts] for k in DFF_KS]),
        vx=np.concatenate(xs), vh=np.concatenate(hs),
        vcol=np.repeat(np.arange(len(opts)), lengths), starts=starts)


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
    """``g_c(α, β)`` for every column: the best envelope vertex (x = 0 is one)."""
    val = alpha[cols.model[cols.vcol]] * cols.vx - beta * cols.vh
    best = np.maximum.reduceat(val, cols.starts)
    hit = np.flatnonzero(val >= best[cols.vcol])
    _, first = np.unique(cols.vcol[hit], return_index=True)
    at = hit[first]
    return Prices(value=best, x=cols.vx[at], h=cols.vh[at])


@dataclass(frozen=True, slots=True)
class Pricing:
    """The pricing problem's answer: chosen columns, value and a valid bound on its optimum."""

    chosen: tuple[int, ...]  # column indices (at most one per model)
    value: float  # Σ g over the chosen columns
    bound: float  # ≥ the optimum (= value when HiGHS proved optimality)


def _useful(cols: Columns, value: FloatArray) -> IntArray:
    """Columns worth keeping: positive value and not dominated by a column of the same model
    that is worth as much while using no more of any resource row."""
    use = np.vstack((cols.units[None, :], cols.rounded))  # (rows, C)
    keep: list[int] = []
    for m in range(len(cols.models)):
        idx = np.flatnonzero((cols.model == m) & (value > 1e-12))
        order = idx[np.lexsort((cols.units[idx], -value[idx]))]
        front: list[np.ndarray] = []
        for c in order:
            if any(bool(np.all(f <= use[:, c] + 1e-12)) for f in front):
                continue
            front.append(use[:, c])
            keep.append(int(c))
    return np.array(sorted(keep), dtype=np.intp)


def solve_pricing(cols: Columns, value: FloatArray, num_gpus: int) -> Pricing:
    """Maximise Σ g_c over at most one column per model within the cluster's capacity."""
    return _solve(cols, value, num_gpus, _useful(cols, value), ())


def top_pricings(cols: Columns, value: FloatArray, num_gpus: int, count: int
                 ) -> list[Pricing]:
    """The ``count`` best distinct solutions of the pricing problem (no-good cuts) over the
    columns not dominated in value and capacity (placement repairs shapes later)."""
    use = _useful(cols, value)
    out: list[Pricing] = []
    for _ in range(count):
        found = _solve(cols, value, num_gpus, use, tuple(p.chosen for p in out))
        if not found.chosen or found.chosen in {p.chosen for p in out}:
            break
        out.append(found)
    return out


def _solve(cols: Columns, value: FloatArray, num_gpus: int, use: IntArray,
           exclude: tuple[tuple[int, ...], ...]) -> Pricing:
    from scipy.optimize import Bounds, LinearConstraint, milp  # heavy: imported on use
    from scipy.sparse import csr_matrix, vstack

    if len(use) == 0:
        return Pricing((), 0.0, 0.0)
    k, r = len(cols.models), len(DFF_KS)
    one_per_model = csr_matrix((np.ones(len(use)), (cols.model[use], np.arange(len(use)))),
                               shape=(k, len(use)))
    capacity = np.vstack((cols.units[None, use] / SHARE_UNITS, cols.rounded[:, use]))
    rows = [one_per_model, csr_matrix(capacity)]
    upper = [np.ones(k), np.full(r + 1, float(num_gpus))]
    position = {int(c): j for j, c in enumerate(use)}
    for chosen in exclude:  # Σ_{c∈S} y_c − Σ_{c∉S} y_c ≤ |S| − 1
        cut = -np.ones(len(use))
        cut[[position[c] for c in chosen]] = 1.0
        rows.append(csr_matrix(cut[None, :]))
        upper.append(np.array([len(chosen) - 1.0]))
    res = milp(-value[use], integrality=np.ones(len(use), dtype=np.int64), bounds=Bounds(0, 1),
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
