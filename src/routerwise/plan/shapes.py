"""Latency curves for every instance shape the search needs: supplied tables first, the
GPU-free estimator (cached on disk) for the rest.

Inputs: the models' architectures, the GPU, the shapes ``(model, tp, share units)``, token
lengths per model, optional supplied profile tables (``gpu, tp, mps_share`` columns select
rows). Outputs: one monotone curve per shape and the provenance of each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routerwise.errors import InfeasibleError
from routerwise.latency.curve import LatencyCurve, fit_curve
from routerwise.profiles.estimator import TokenLengths, estimate_profile_cached
from routerwise.profiles.table import ProfilePoints, ProfileTable
from routerwise.search.curves import ShapeKey
from routerwise.search.space import SHARE_UNITS
from routerwise.spec.catalog import GpuSpec, ModelArch
from routerwise.spec.core import readonly

#: Requests per rate and rates per sweep for planner profiles: enough for smooth curves,
#: cheap enough to estimate ~100 shapes in well under a minute on 2 cores.
PLAN_REQUESTS_PER_RATE = 800
PLAN_SWEEP_POINTS = 8

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class ShapeProfiles:
    curves: Mapping[ShapeKey, LatencyCurve]
    provenance: Mapping[ShapeKey, str]
    estimated: int
    supplied: int
    unusable: Mapping[ShapeKey, str]  # shapes that cannot serve the workload, and why


def _supplied_points(table: ProfileTable, gpu: GpuSpec, key: ShapeKey) -> ProfilePoints | None:
    frame = table.frame
    model, tp, units = key
    rows = frame["model"].astype(str) == model
    if "tp" in frame.columns:
        rows &= frame["tp"].astype(float) == tp
    if "mps_share" in frame.columns:
        rows &= np.isclose(frame["mps_share"].astype(float), units / SHARE_UNITS)
    if "gpu" in frame.columns:
        rows &= frame["gpu"].astype(str).str.lower() == gpu.name.lower()
    sub = frame[rows]
    if len(sub) < 2:
        return None
    sub = sub.sort_values("rate_rps")
    return ProfilePoints(model, readonly(sub["rate_rps"].to_numpy(float)),
                         readonly(sub["ttft_mean_ms"].to_numpy(float)), "ttft_mean_ms",
                         tuple(int(i) + 2 for i in sub.index), table.source)


def shape_profiles(
    archs: Mapping[str, ModelArch], gpu: GpuSpec, shapes: Iterable[ShapeKey],
    lengths: Mapping[str, TokenLengths], *, supplied: Iterable[ProfileTable] = (),
    cache_dir: Path | None = None, progress: Progress | None = None,
) -> ShapeProfiles:
    """A curve per shape: from a supplied table when it has the shape, else estimated."""
    wanted = sorted(set(shapes))
    tables = list(supplied)
    curves: dict[ShapeKey, LatencyCurve] = {}
    provenance: dict[ShapeKey, str] = {}
    estimated = 0
    unusable: dict[ShapeKey, str] = {}
    for i, key in enumerate(wanted):
        model, tp, units = key
        points = next((p for t in tables if (p := _supplied_points(t, gpu, key))), None)
        if points is not None:
            source = next((t for t in tables if _supplied_points(t, gpu, key)), None)
            prov = "measured"
            if source is not None and "provenance" in source.frame.columns:
                prov = str(source.frame["provenance"].iloc[0])
            provenance[key] = prov
        else:
            try:
                table = estimate_profile_cached(
                    archs[model], gpu, tp, units / SHARE_UNITS, None, lengths[model],
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
        curves[key] = fit_curve(points)
        if progress is not None:
            progress(i + 1, len(wanted), f"{model} tp{tp} {units * 10}%")
    return ShapeProfiles(curves=curves, provenance=provenance, estimated=estimated,
                         supplied=len(wanted) - estimated - len(unusable), unusable=unusable)
