"""The length fixed point: re-estimate the chosen setup's curves with the prompts it is routed.

A shape's latency curve is estimated with the workload's whole length pool, but the router
sends each model the prompts it wins: in ``h100-mixed`` Llama-3.1-8B gets prompts twice as
long as the pool's, and a model planned near its capacity then runs past it. After the
search, :func:`settle` takes the chosen setup's routing, draws each deployed model's lengths
in proportion to the share of every prompt it receives (``TokenLengths.weighted``),
re-estimates the curve of each model whose routed mean prompt or output length differs from
the lengths its curve was estimated with by more than ``TOLERANCE`` (the same estimator,
cached like every profile), re-routes the setup on the new curves, and repeats until the
routed lengths move less than ``TOLERANCE`` (at most ``MAX_ROUNDS`` rounds). Only
``estimated`` curves are re-estimated; measured and time-scale-corrected ones keep their
lengths, and the plan's length warning still names them.

Inputs: the plan's inputs, the search's shape curves and context, the chosen candidate, the
workload's per-prompt lengths (the pool, aligned with the workload's prompts) and an
estimating function. Output: :class:`Settled` — the curves and context the plan is built on,
the routing, and per deployed model the lengths its curve stands for; or ``feasible=False``
when the setup misses the SLO with its routed lengths (the caller searches again).
Only the chosen setup is settled, so the search itself costs what it did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from routerwise.errors import InfeasibleError
from routerwise.latency.curve import LatencyCurve
from routerwise.plan.inputs import FALLBACK_INPUT_TOKENS, FALLBACK_OUTPUT_TOKENS, PlanInputs
from routerwise.plan.shapes import ShapeEstimate, ShapeProfiles
from routerwise.profiles.estimator import TokenLengths
from routerwise.search.evaluate import EvalContext
from routerwise.search.resolve import Routed, route_setup
from routerwise.search.search import Candidate, best_candidate
from routerwise.spec.deployment import InstanceShape

#: A curve is re-estimated when its model's routed mean prompt or output length differs from
#: the lengths it was estimated with by more than this (relative); the fixed point stops when
#: no routed mean moves more than this between rounds.
TOLERANCE = 0.05
#: At most this many re-estimation rounds on one setup.
MAX_ROUNDS = 3

#: (shape, lengths, replicas) → the shape's curve per instance of that many replicas behind
#: least-outstanding-requests balancing
Estimate = Callable[[InstanceShape, TokenLengths, int], ShapeEstimate]


@dataclass(frozen=True, slots=True)
class Settled:
    """The chosen setup after the length fixed point."""

    shapes: ShapeProfiles  # the search's, with the re-estimated shapes replaced
    ctx: EvalContext
    routed: Routed
    feasible: bool  # the setup meets the SLO on its re-estimated curves
    #: per deployed model: the lengths its curve was estimated with, and "workload",
    #: "routed" or "measured"
    basis: Mapping[str, tuple[TokenLengths, str]]
    mixes: Mapping[str, TokenLengths]  # per deployed model: the lengths routed to it
    rounds: int
    converged: bool
    #: per deployed model: the replicas its curve was estimated with behind least-
    #: outstanding-requests balancing (1: one instance, scaled as an even split)
    replicas: Mapping[str, int]


def pool_lengths(inputs: PlanInputs) -> dict[str, TokenLengths]:
    """Per model, the workload's lengths aligned with its prompts (the planner's fallbacks
    where the workload has none)."""
    w = inputs.workload
    n, k = w.num_prompts, w.num_models
    inp = w.input_tokens if w.input_tokens is not None else np.full(n, FALLBACK_INPUT_TOKENS)
    out = (w.output_tokens if w.output_tokens is not None
           else np.full((n, k), FALLBACK_OUTPUT_TOKENS))
    return {m: TokenLengths.pool(inp, out[:, j], f"{w.source} ({m})")
            for j, m in enumerate(w.models)}


def routed_mixes(routed: Routed, pool: Mapping[str, TokenLengths]) -> dict[str, TokenLengths]:
    """Per deployed model, the pool's lengths weighted by the share of each prompt it gets."""
    shares = routed.result.shares
    out: dict[str, TokenLengths] = {}
    if shares is None:
        return out
    for j, m in enumerate(routed.models):
        lengths = pool.get(m)
        weights = shares[:, j]
        if lengths is None or len(lengths.input_tokens) != len(weights) or weights.sum() <= 0:
            continue
        out[m] = TokenLengths.weighted(lengths.input_tokens, lengths.output_tokens, weights,
                                       f"the prompts the plan routes to {m}")
    return out


def shift(a: TokenLengths, b: TokenLengths) -> float:
    """Largest relative difference of the mean input and mean output lengths."""
    (ai, ao), (bi, bo) = a.means(), b.means()
    return max(abs(ai / bi - 1.0), abs(ao / bo - 1.0))


def _basis(shapes: ShapeProfiles, chosen: Candidate, lengths: Mapping[str, TokenLengths]
           ) -> dict[str, tuple[TokenLengths, str]]:
    out = {}
    for d in chosen.setup.deployments:
        kind = shapes.provenance.get(d.shape, "estimated")
        out[d.model] = (lengths[d.model], "measured" if "measured" in kind.split(",")
                        else "workload")
    return out


def settle(shapes: ShapeProfiles, ctx: EvalContext, chosen: Candidate,
           lengths: Mapping[str, TokenLengths], pool: Mapping[str, TokenLengths],
           estimate: Estimate, *, routed_basis: frozenset[str] = frozenset(),
           tolerance: float = TOLERANCE, max_rounds: int = MAX_ROUNDS) -> Settled:
    """Re-estimate and re-route ``chosen`` until its routed lengths hold still.

    ``lengths``: what each model's curves were estimated with (``routed_basis`` names the
    models whose ``lengths`` are already a routed mix, from an earlier search); ``pool``: the
    workload's lengths, aligned with its prompts.
    """
    basis = _basis(shapes, chosen, lengths)
    for m in routed_basis & basis.keys():
        if basis[m][1] == "workload":
            basis[m] = (basis[m][0], "routed")
    balanced = dict.fromkeys(basis, 1)
    curves: dict[InstanceShape, LatencyCurve] = dict(shapes.curves)
    saturation = dict(shapes.saturation_rps)
    routed = route_setup(ctx, chosen.setup, chosen)
    feasible = routed.result.feasible and routed.result.shares is not None
    rounds, converged = 0, True
    mixes = routed_mixes(routed, pool) if feasible else {}
    while feasible:
        stale = [d for d in chosen.setup.deployments
                 if d.model in mixes and basis[d.model][1] != "measured"
                 and shapes.provenance.get(d.shape) == "estimated"
                 and (shift(mixes[d.model], basis[d.model][0]) > tolerance
                      or balanced[d.model] != d.replicas)]
        if not stale:
            break
        if rounds == max_rounds:
            converged = False
            break
        rounds += 1
        try:
            for d in stale:
                est = estimate(d.shape, mixes[d.model], d.replicas)
                curves[d.shape], saturation[d.shape] = est.curve, est.saturation_rps
                basis[d.model] = (mixes[d.model], "routed")
                balanced[d.model] = d.replicas
        except InfeasibleError:  # the shape cannot serve what it is routed
            feasible = False
            break
        ctx = replace(ctx, shape_curves=curves)
        routed = route_setup(ctx, chosen.setup, chosen)
        feasible = routed.result.feasible and routed.result.shares is not None
        if feasible:
            mixes = routed_mixes(routed, pool)
    settled = replace(shapes, curves=curves, saturation_rps=saturation)
    return Settled(settled, ctx, routed, feasible, basis, mixes, rounds, converged, balanced)


def mean_lengths(lengths: TokenLengths) -> tuple[float, float]:
    """(mean input, mean output) tokens, rounded for the plan file."""
    i, o = lengths.means()
    return round(i, 1), round(o, 1)


def describe(settled: Settled) -> str | None:
    """A provenance note saying which curves the fixed point re-estimated (None: none)."""
    moved = sorted(m for m, (_, kind) in settled.basis.items() if kind == "routed")
    if not moved:
        return None
    parts = []
    for m in moved:
        i, o = mean_lengths(settled.basis[m][0])
        r = settled.replicas.get(m, 1)
        group = f", {r} replicas balanced by least outstanding requests" if r > 1 else ""
        parts.append(f"{m} ({i:.0f} in / {o:.0f} out tokens{group})")
    tail = "" if settled.converged else (f"; routed lengths still moved more than "
                                         f"{TOLERANCE:.0%} after {MAX_ROUNDS} rounds")
    return (f"length fixed point ({settled.rounds} round(s)): the curves of "
            f"{', '.join(parts)} were re-estimated with the prompts this plan routes to them "
            f"(provenance estimated){tail}")


@dataclass(frozen=True, slots=True)
class LengthReport:
    """What the plan records about the lengths behind its deployed models' curves."""

    basis: Mapping[str, tuple[TokenLengths, str]]
    mixes: Mapping[str, TokenLengths]
    rounds: int
    searches: int
    note: str | None
    replicas: Mapping[str, int]


def lengths_report(settled: Settled, searches: int) -> LengthReport:
    note = describe(settled)
    if note is not None and searches:
        note += (f"; the first choice missed the SLO with its routed lengths, so the setups "
                 f"were searched again ({searches}×) with them")
    return LengthReport(settled.basis, settled.mixes, settled.rounds, searches, note,
                        settled.replicas)


def unsettled_warning(missed: Settled) -> str:
    """Why a plan could not be settled on its routed lengths, and what that means."""
    moved = sorted(m for m, (_, kind) in missed.basis.items() if kind == "routed") \
        or sorted(missed.mixes)
    parts = []
    for m in moved:
        if m in missed.mixes:
            i, o = mean_lengths(missed.mixes[m])
            parts.append(f"{m} ({i:.0f} in / {o:.0f} out tokens)")
    return ("the chosen setup misses the SLO once the curves of "
            f"{', '.join(parts) or ', '.join(moved)} are re-estimated with the prompts this "
            "plan routes to them, and no setup searched with those lengths meets it: the "
            "predicted TTFT is optimistic at this rate (plan a lower rate, or check it with "
            "`routerwise simulate --find-max-rate`)")


@dataclass(frozen=True, slots=True)
class SettledPlan:
    """The plan's setup after the fixed point, and each baseline's setup settled alike (so
    the plan is compared with its baselines on equal terms)."""

    chosen: Candidate
    settled: Settled
    report: LengthReport
    baselines: Mapping[str, Settled]
    #: the baseline whose settled setup beat the search's choice and became the plan's
    promoted: str | None = None


def settle_baselines(shapes: ShapeProfiles, ctx: EvalContext, candidates: Sequence[Candidate],
                     names: Sequence[str], chosen: Candidate, chosen_settled: Settled,
                     lengths: Mapping[str, TokenLengths], pool: Mapping[str, TokenLengths],
                     estimate: Estimate, routed_basis: frozenset[str]) -> dict[str, Settled]:
    """Each baseline's best setup settled like the plan's (the plan's own when it is one)."""
    out: dict[str, Settled] = {}
    for name in names:
        best = best_candidate([c for c in candidates if name in c.baselines])
        if best is None:
            continue
        out[name] = chosen_settled if best.setup == chosen.setup else settle(
            shapes, ctx, best, lengths, pool, estimate, routed_basis=routed_basis)
    return out


def best_settled(chosen: Candidate, settled: Settled, baselines: Mapping[str, Settled],
                 candidates: Sequence[Candidate]) -> tuple[Candidate, Settled, str | None]:
    """The search's choice, or a baseline's setup when, settled, it predicts a higher
    quality within the SLO (the search ranked setups on the workload's lengths)."""
    best: tuple[Candidate, Settled, str | None] = (chosen, settled, None)
    for name, s in sorted(baselines.items()):
        if s.feasible and s.routed.result.quality > best[1].routed.result.quality + 1e-9:
            cand = best_candidate([c for c in candidates if name in c.baselines])
            assert cand is not None
            best = (cand, s, name)
    return best
