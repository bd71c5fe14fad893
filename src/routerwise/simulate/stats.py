"""Simulate stage — statistics of simulated requests: latency, SLO attainment, quality, and
confidence intervals.

Inputs: per request its arrival (s), routed model, prompt, TTFT / TPOT / E2E (ms; NaN when
not finished) and the window that counts (warm-up excluded). Outputs: ``Metrics`` (means
and percentiles in ms, attainment and quality as fractions) for the fleet or one model, and
95% confidence intervals — over independent replications (different seeds) when there are
two or more, else by batch means (the measured window cut into ``BATCHES`` equal periods).

``slo_attainment`` is the fraction of measured requests whose own TTFT is within the SLO
target (a request that never got its first token counts as a miss); the plan's SLO itself
is on the fleet *mean* TTFT (``slo_met``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from routerwise.spec.core import FloatArray

BATCHES = 10
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Metrics:
    """Latency (ms), attainment and quality of one set of requests (None: no data)."""

    requests: int
    completed: int
    ttft_mean_ms: float | None
    ttft_p50_ms: float | None
    ttft_p90_ms: float | None
    ttft_p99_ms: float | None
    tpot_mean_ms: float | None
    e2e_mean_ms: float | None
    slo_attainment: float | None
    quality: float | None
    quality_truth: float | None


#: Metrics a confidence interval is reported for.
CI_FIELDS = ("ttft_mean_ms", "ttft_p90_ms", "ttft_p99_ms", "tpot_mean_ms", "e2e_mean_ms",
             "slo_attainment", "quality", "quality_truth")


@dataclass(frozen=True, slots=True)
class RequestData:
    """Per-request arrays of one run (length n)."""

    arrival_s: FloatArray
    ttft_ms: FloatArray
    tpot_ms: FloatArray
    e2e_ms: FloatArray
    score: FloatArray  # the routed model's score on the prompt
    truth: FloatArray | None  # the routed model's outcome label, when known


def _mean(values: FloatArray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.mean(finite)) if len(finite) else None


def _pct(values: FloatArray, q: float) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if len(finite) else None


def metrics(data: RequestData, mask: BoolArray, slo_ms: float) -> Metrics:
    """Metrics of the requests selected by ``mask``."""
    ttft = data.ttft_ms[mask]
    n = int(mask.sum())
    return Metrics(
        requests=n,
        completed=int(np.isfinite(data.e2e_ms[mask]).sum()),
        ttft_mean_ms=_mean(ttft),
        ttft_p50_ms=_pct(ttft, 50),
        ttft_p90_ms=_pct(ttft, 90),
        ttft_p99_ms=_pct(ttft, 99),
        tpot_mean_ms=_mean(data.tpot_ms[mask]),
        e2e_mean_ms=_mean(data.e2e_ms[mask]),
        slo_attainment=float(np.mean(np.nan_to_num(ttft, nan=np.inf) <= slo_ms)) if n else None,
        quality=float(np.mean(data.score[mask])) if n else None,
        quality_truth=float(np.mean(data.truth[mask])) if n and data.truth is not None else None,
    )


def _avg(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known and len(known) == len(values) else None


def average(runs: Sequence[Metrics]) -> Metrics:
    """The mean of each metric over runs (counts summed); None where any run has none."""
    return Metrics(
        requests=sum(r.requests for r in runs),
        completed=sum(r.completed for r in runs),
        ttft_mean_ms=_avg([r.ttft_mean_ms for r in runs]),
        ttft_p50_ms=_avg([r.ttft_p50_ms for r in runs]),
        ttft_p90_ms=_avg([r.ttft_p90_ms for r in runs]),
        ttft_p99_ms=_avg([r.ttft_p99_ms for r in runs]),
        tpot_mean_ms=_avg([r.tpot_mean_ms for r in runs]),
        e2e_mean_ms=_avg([r.e2e_mean_ms for r in runs]),
        slo_attainment=_avg([r.slo_attainment for r in runs]),
        quality=_avg([r.quality for r in runs]),
        quality_truth=_avg([r.quality_truth for r in runs]),
    )


def _t_quantile(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def interval(samples: Sequence[float | None]) -> tuple[float, float] | None:
    """95% Student-t interval of the mean of independent samples (None with < 2)."""
    xs = [float(s) for s in samples if s is not None and math.isfinite(s)]
    if len(xs) < 2 or len(xs) < len(samples):
        return None
    mean, sd = float(np.mean(xs)), float(np.std(xs, ddof=1))
    half = _t_quantile(len(xs) - 1) * sd / math.sqrt(len(xs))
    return (mean - half, mean + half)


def intervals(runs: Sequence[Metrics]) -> dict[str, tuple[float, float] | None]:
    """A 95% interval for every ``CI_FIELDS`` metric from independent runs or batches."""
    return {name: interval([getattr(r, name) for r in runs]) for name in CI_FIELDS}


def batch_masks(arrival_s: FloatArray, start_s: float, end_s: float,
                batches: int = BATCHES) -> list[BoolArray]:
    """Masks of ``batches`` equal periods of ``[start_s, end_s)`` by arrival time."""
    edges = np.linspace(start_s, end_s, batches + 1)
    return [(arrival_s >= lo) & (arrival_s < hi) for lo, hi in itertools.pairwise(edges)]


def relative_error(simulated: float | None, predicted: float | None) -> float | None:
    """(simulated − predicted) / predicted; None when either is missing."""
    if simulated is None or predicted is None or predicted == 0:
        return None
    return (simulated - predicted) / predicted
