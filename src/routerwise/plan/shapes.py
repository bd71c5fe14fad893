"""Latency curves for every instance shape the search needs: supplied tables first, the
GPU-free estimator (cached on disk) for the rest.

Inputs: the models' architectures, the GPU, the typed instance shapes, token lengths per
model, optional supplied profile tables (``gpu, tp, mps_share`` columns select rows).
Outputs: one monotone curve per shape, the provenance of each, and the points behind every
curve (written beside plan.json as ``profiles.csv``). Measured points marked
``beyond_capacity`` are left out and bound the shape's capacity. A model's measured shapes
also correct its estimated ones: a time scale fitted where the measurement and the estimate
of the same shape overlap (``profiles/correction.py``); corrected curves are ``derived``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from routerwise.errors import InfeasibleError, InputError
from routerwise.latency.curve import LatencyCurve, fit_curve
from routerwise.profiles.aic_steps import KernelDataError
from routerwise.profiles.correction import TimeScale, apply_time_scale, fit_time_scale
from routerwise.profiles.estimator import (
    SWEEP_HIGH_FRACTION,
    TokenLengths,
    estimate_profile_cached,
)
from routerwise.profiles.table import ProfilePoints, ProfileTable, beyond_capacity
from routerwise.spec.catalog import GpuSpec, ModelArch
from routerwise.spec.core import readonly
from routerwise.spec.deployment import InstanceShape

#: Requests per rate and rates per sweep for planner profiles: enough for smooth curves,
#: cheap enough to estimate ~100 shapes in well under a minute on 2 cores.
PLAN_REQUESTS_PER_RATE = 800
#: Requests per rate (over all replicas of a balanced group, at least
#: ``PLAN_REQUESTS_PER_RATE`` per instance) when the length fixed point re-estimates a chosen
#: shape: a handful of shapes, at whose last points a plan usually operates (90% of capacity,
#: queue-dominated), where 800 requests read 10-15% high or low.
SETTLE_REQUESTS_PER_RATE = 4000
PLAN_SWEEP_POINTS = 8

Progress = Callable[[int, int, str], None]

#: A profile point whose mean TTFT exceeds this multiple of the zero-load TTFT is taken to be
#: at saturation: the queue dominates (an M/M/1 queue waits 9 service times at 90% load),
#: the point's mean is set by how long the run lasted, and a plan must not operate there.
#: Such points and every faster rate are dropped, so the curve (and the capacity a plan may
#: use) ends below them.
SATURATION_TTFT_FACTOR = 10.0


@dataclass(frozen=True, slots=True)
class ShapeProfiles:
    curves: Mapping[InstanceShape, LatencyCurve]
    provenance: Mapping[InstanceShape, str]
    estimated: int
    supplied: int
    unusable: Mapping[InstanceShape, str]  # shapes that cannot serve the workload, and why
    #: One instance's saturation throughput (req/s): the first point dropped as saturated,
    #: else the estimator's saturation estimate, else (a supplied table) its last point.
    saturation_rps: Mapping[InstanceShape, float] = field(default_factory=dict)
    #: Per (model, GPU): the time scale fitted from measured shapes and applied to the
    #: model's estimated shapes (their provenance is then ``derived``), and what was done.
    time_scales: Mapping[tuple[str, str], TimeScale] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def check_supplied(table: ProfileTable) -> None:
    """A table supplied to the planner must say which shape each row measured."""
    missing = [c for c in ("tp", "mps_share") if c not in table.frame.columns]
    if missing:
        raise InputError(
            f"{table.source}: profiles given to the planner need columns {missing} (and "
            "optionally gpu) so each row is matched to one instance shape; a table without "
            "them describes one fixed deployment (use it with `routerwise route`)")


def _supplied_points(table: ProfileTable, key: InstanceShape
                     ) -> tuple[ProfilePoints, str] | None:
    """The table's points for one shape (repeated rates averaged) and their provenance."""
    frame = table.frame
    model = key.model
    rows = (frame["model"].astype(str) == model) & (frame["tp"].astype(float) == key.tp)
    rows &= np.isclose(frame["mps_share"].astype(float), key.mps_share)
    if "gpu" in frame.columns:
        rows &= frame["gpu"].astype(str).str.lower() == key.gpu_type.lower()
    sub = frame[rows & ~beyond_capacity(frame)]  # stopped-early rates are past capacity
    if sub["rate_rps"].nunique() < 2:
        return None
    grouped = sub.groupby("rate_rps", sort=True)["ttft_mean_ms"].mean()
    first_rows = sub.drop_duplicates("rate_rps").sort_values("rate_rps").index
    points = ProfilePoints(model, readonly(grouped.index.to_numpy(float)),
                           readonly(grouped.to_numpy(float)), "ttft_mean_ms",
                           tuple(int(i) + 2 for i in first_rows), table.source)
    prov = "measured"
    if "provenance" in sub.columns:
        prov = ",".join(sorted(set(sub["provenance"].astype(str))))
    return points, prov


def _beyond_capacity_rps(tables: Iterable[ProfileTable], key: InstanceShape) -> float | None:
    """The lowest rate a supplied table marks beyond capacity for ``key`` (None if none)."""
    rates = []
    for table in tables:
        f = table.frame
        rows = beyond_capacity(f) & (f["model"].astype(str) == key.model)
        rows &= (f["tp"].astype(float) == key.tp) & np.isclose(f["mps_share"].astype(float),
                                                                key.mps_share)
        if "gpu" in f.columns:
            rows &= f["gpu"].astype(str).str.lower() == key.gpu_type.lower()
        rates += [float(r) for r in f.loc[rows, "rate_rps"]]
    return min(rates) if rates else None


def below_saturation(points: ProfilePoints) -> ProfilePoints:
    """``points`` up to (excluding) the first one at saturation (``SATURATION_TTFT_FACTOR``)."""
    values = np.maximum.accumulate(np.asarray(points.values_ms, dtype=np.float64))
    limit = SATURATION_TTFT_FACTOR * max(float(values[0]), 1e-9)
    keep = int(np.searchsorted(values, limit, side="right"))
    if keep >= len(values) or keep < 2:
        return points  # nothing to cut, or too little left for a curve: keep as measured
    return ProfilePoints(points.model, readonly(points.rates_rps[:keep]),
                         readonly(points.values_ms[:keep]), points.stat,
                         points.source_rows[:keep], points.source)


def _saturation(points: ProfilePoints, kept: ProfilePoints, estimated: bool) -> float:
    if len(kept.rates_rps) < len(points.rates_rps):
        return float(points.rates_rps[len(kept.rates_rps)])
    last = float(points.rates_rps[-1])
    return last / SWEEP_HIGH_FRACTION if estimated else last


#: Why a shape has no estimate when aiconfigurator lacks kernel data for the architecture.
NO_KERNEL_DATA = "the estimator has no kernel data for this architecture"


@dataclass(frozen=True, slots=True)
class _Estimated:
    """An estimated shape's stable points and the lowest rate it marked beyond capacity."""

    points: ProfilePoints
    beyond_rps: float | None


def _estimated_points(archs: Mapping[str, ModelArch], gpu: GpuSpec, key: InstanceShape,
                      lengths: Mapping[str, TokenLengths], cache_dir: Path | None,
                      replicas: int = 1, num_requests: int = PLAN_REQUESTS_PER_RATE
                      ) -> _Estimated:
    """The estimator's stable points for ``key`` (cached); ``InfeasibleError`` when it cannot
    serve the workload or has no kernel data for the model (e.g. 3 KV heads: only measured
    profiles can describe such a model)."""
    model = key.model
    try:
        table = estimate_profile_cached(
            archs[model], gpu, key.tp, key.mps_share, None, lengths[model],
            num_requests=num_requests, sweep_points=PLAN_SWEEP_POINTS,
            cache_dir=cache_dir, replicas=replicas,
        )
    except KernelDataError as exc:
        raise InfeasibleError(f"{NO_KERNEL_DATA} ({exc.missing})") from exc
    except (RuntimeError, ValueError) as exc:
        if not type(exc).__module__.startswith("aiconfigurator_core"):
            raise
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InfeasibleError(f"{NO_KERNEL_DATA} ({first})") from exc
    frame = table.frame
    stable = frame.loc[~beyond_capacity(frame), "rate_rps"]
    if stable.nunique() < 2:
        raise InfeasibleError(
            f"the estimator found {stable.nunique()} stable rate(s) below its capacity: the "
            "queue grows from the lowest rates (e.g. its KV cache holds few of the workload's "
            "requests)")
    points = table.points(archs[model].id)
    beyond = frame.loc[beyond_capacity(frame), "rate_rps"]
    return _Estimated(ProfilePoints(model, points.rates_rps, points.values_ms, points.stat,
                                    points.source_rows, points.source),
                      float(beyond.min()) if len(beyond) else None)


def _estimated_saturation(est: _Estimated, kept: ProfilePoints, scale: float = 1.0) -> float:
    """An estimated shape's capacity (req/s): the first point cut as saturated, else its
    sustained capacity (the last point / ``SWEEP_HIGH_FRACTION``), and never above the
    first rate the estimator found unstable; rates divided by a time scale ``scale``."""
    sat = _saturation(est.points, kept, True)
    if est.beyond_rps is not None:
        sat = min(sat, est.beyond_rps / scale)
    return sat


@dataclass(frozen=True, slots=True)
class ShapeEstimate:
    """One shape's estimated curve and capacity (req/s per instance)."""

    curve: LatencyCurve
    saturation_rps: float


def estimate_shape(arch: ModelArch, gpu: GpuSpec, key: InstanceShape, lengths: TokenLengths,
                   cache_dir: Path | None, replicas: int = 1) -> ShapeEstimate:
    """``key``'s curve estimated with ``lengths`` (cached like every planner profile), per
    instance of ``replicas`` behind least-outstanding-requests balancing, with longer runs
    than the search's (``SETTLE_REQUESTS_PER_RATE``); ``InfeasibleError`` when the shape
    cannot serve them."""
    per_instance = max(PLAN_REQUESTS_PER_RATE, -(-SETTLE_REQUESTS_PER_RATE // replicas))
    est = _estimated_points({key.model: arch}, gpu, key, {key.model: lengths}, cache_dir,
                            replicas, per_instance)
    kept = below_saturation(est.points)
    return ShapeEstimate(fit_curve(kept), _estimated_saturation(est, kept))


@dataclass(frozen=True, slots=True)
class _Correction:
    """Estimated curves of models that also have measured shapes, corrected in place."""

    curves: dict[InstanceShape, LatencyCurve]
    provenance: dict[InstanceShape, str]
    saturation: dict[InstanceShape, float]


def _correct(archs: Mapping[str, ModelArch], gpu: GpuSpec, lengths: Mapping[str, TokenLengths],
             cache_dir: Path | None, measured: Mapping[InstanceShape, ProfilePoints],
             estimated: Mapping[InstanceShape, _Estimated], out: _Correction,
             ) -> tuple[dict[tuple[str, str], TimeScale], tuple[str, ...]]:
    """Fit a time scale per model from its measured shapes; apply it to its estimated ones
    (``profiles/correction.py``). Returns the factors and the notes for the plan."""
    scales: dict[tuple[str, str], TimeScale] = {}
    notes: list[str] = []
    for model in sorted({k.model for k in measured}):
        targets = sorted(k for k in estimated if k.model == model)
        if not targets:
            continue
        sources = sorted(k for k in measured if k.model == model)
        pairs = []
        for key in sources:
            try:
                pairs.append((below_saturation(measured[key]),
                              _estimated_points(archs, gpu, key, lengths, cache_dir).points))
            except InfeasibleError:
                continue
        scale = fit_time_scale(pairs)
        names = ", ".join(k.describe() for k in sources)
        if scale is None:
            notes.append(f"{model}: measured {names} not comparable with its estimate; the "
                         f"estimates of its other shapes are uncorrected")
            continue
        scales[(model, gpu.name)] = scale
        for key in targets:
            points = apply_time_scale(estimated[key].points, scale.factor)
            kept = below_saturation(points)
            out.curves[key] = fit_curve(kept)
            out.provenance[key] = "derived"
            out.saturation[key] = _estimated_saturation(
                _Estimated(points, estimated[key].beyond_rps), kept, scale.factor)
        notes.append(
            f"{model} on {gpu.name}: {len(targets)} estimated curve(s) corrected by the time "
            f"scale {scale.describe()} from measured {names}: TTFT × f at rate / f "
            "(provenance derived; one factor for prefill and decode)")
    return scales, tuple(notes)


def shape_profiles(
    archs: Mapping[str, ModelArch], gpu: GpuSpec, shapes: Iterable[InstanceShape],
    lengths: Mapping[str, TokenLengths], *, supplied: Iterable[ProfileTable] = (),
    cache_dir: Path | None = None, progress: Progress | None = None, correct: bool = True,
) -> ShapeProfiles:
    """A curve per shape: from a supplied table when it has the shape, else estimated; with
    ``correct``, a model's measured shapes fit a time scale applied to its estimated ones."""
    wanted = sorted(set(shapes))
    tables = list(supplied)
    for table in tables:
        check_supplied(table)
    curves: dict[InstanceShape, LatencyCurve] = {}
    provenance: dict[InstanceShape, str] = {}
    estimated = 0
    unusable: dict[InstanceShape, str] = {}
    saturation: dict[InstanceShape, float] = {}
    measured: dict[InstanceShape, ProfilePoints] = {}
    raw: dict[InstanceShape, _Estimated] = {}
    for i, key in enumerate(wanted):
        model = key.model
        match = next((m for t in tables if (m := _supplied_points(t, key))), None)
        if match is not None:
            points, provenance[key] = match
            if "measured" in provenance[key].split(","):
                measured[key] = points
        else:
            try:
                raw[key] = _estimated_points(archs, gpu, key, lengths, cache_dir)
            except InfeasibleError as exc:  # e.g. its KV cache cannot hold the longest request
                unusable[key] = str(exc)
                continue
            points = raw[key].points
            provenance[key] = "estimated"
            estimated += 1
        kept = below_saturation(points)
        curves[key] = fit_curve(kept)
        saturation[key] = (_estimated_saturation(raw[key], kept) if key in raw
                           else _saturation(points, kept, False))
        if match is not None and (beyond := _beyond_capacity_rps(tables, key)) is not None:
            saturation[key] = min(saturation[key], beyond)
        if progress is not None:
            progress(i + 1, len(wanted), f"{model} {key.describe()}")
    scales: dict[tuple[str, str], TimeScale] = {}
    notes: tuple[str, ...] = ()
    if correct and measured:
        scales, notes = _correct(archs, gpu, lengths, cache_dir, measured, raw,
                                 _Correction(curves, provenance, saturation))
    return ShapeProfiles(curves=curves, provenance=provenance, estimated=estimated,
                         supplied=len(wanted) - estimated - len(unusable), unusable=unusable,
                         saturation_rps=saturation, time_scales=scales, notes=notes)
