"""Latency curves for every instance shape the search needs: supplied tables first, the
GPU-free estimator (cached on disk) for the rest.

Inputs: the models' architectures, the GPU, the typed instance shapes, token lengths per
model, optional supplied profile tables (``gpu, tp, mps_share`` columns select rows).
Outputs: one monotone curve per shape, the provenance of each, and the points behind every
curve (written beside plan.json as ``profiles.csv``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from routerwise.errors import InfeasibleError, InputError
from routerwise.latency.curve import LatencyCurve, fit_curve
from routerwise.profiles.estimator import (
    SWEEP_HIGH_FRACTION,
    TokenLengths,
    estimate_profile_cached,
)
from routerwise.profiles.table import ProfilePoints, ProfileTable
from routerwise.spec.catalog import GpuSpec, ModelArch
from routerwise.spec.core import readonly
from routerwise.spec.deployment import InstanceShape

#: Requests per rate and rates per sweep for planner profiles: enough for smooth curves,
#: cheap enough to estimate ~100 shapes in well under a minute on 2 cores.
PLAN_REQUESTS_PER_RATE = 800
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
    sub = frame[rows]
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


def shape_profiles(
    archs: Mapping[str, ModelArch], gpu: GpuSpec, shapes: Iterable[InstanceShape],
    lengths: Mapping[str, TokenLengths], *, supplied: Iterable[ProfileTable] = (),
    cache_dir: Path | None = None, progress: Progress | None = None,
) -> ShapeProfiles:
    """A curve per shape: from a supplied table when it has the shape, else estimated."""
    wanted = sorted(set(shapes))
    tables = list(supplied)
    for table in tables:
        check_supplied(table)
    curves: dict[InstanceShape, LatencyCurve] = {}
    provenance: dict[InstanceShape, str] = {}
    estimated = 0
    unusable: dict[InstanceShape, str] = {}
    saturation: dict[InstanceShape, float] = {}
    for i, key in enumerate(wanted):
        model, tp, share = key.model, key.tp, key.mps_share
        match = next((m for t in tables if (m := _supplied_points(t, key))), None)
        if match is not None:
            points, provenance[key] = match
        else:
            try:
                table = estimate_profile_cached(
                    archs[model], gpu, tp, share, None, lengths[model],
                    num_requests=PLAN_REQUESTS_PER_RATE, sweep_points=PLAN_SWEEP_POINTS,
                    cache_dir=cache_dir,
                )
            except InfeasibleError as exc:  # e.g. its KV cache cannot hold the longest request
                unusable[key] = str(exc)
                continue
            points = table.points(archs[model].id)
            points = ProfilePoints(model, points.rates_rps, points.values_ms, points.stat,
                                   points.source_rows, points.source)
            provenance[key] = "estimated"
            estimated += 1
        kept = below_saturation(points)
        curves[key] = fit_curve(kept)
        saturation[key] = _saturation(points, kept, provenance[key] == "estimated")
        if progress is not None:
            progress(i + 1, len(wanted), f"{model} {key.describe()}")
    return ShapeProfiles(curves=curves, provenance=provenance, estimated=estimated,
                         supplied=len(wanted) - estimated - len(unusable), unusable=unusable,
                         saturation_rps=saturation)
