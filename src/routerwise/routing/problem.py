"""The routing problem for a fixed setup and its result (DESIGN.md §2, stage 2).

maximise  Q(w) = 1/N Σ_i Σ_m score[i,m] · w[i,m]
s.t.      fleet scope:     Σ_m (λ_m/Λ) · ℓ_m(λ_m) ≤ τ      (the paper's fleet-mean SLO)
          per-model scope: ℓ_m(λ_m) ≤ τ for every model with λ_m > 0
          λ_m ≤ capacity_m (highest profiled rate),   λ_m = Λ/N Σ_i w[i,m]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from routerwise.errors import InputError
from routerwise.latency.curve import LatencyCurve
from routerwise.spec.core import FloatArray

SloScope = Literal["fleet", "per-model"]
SLO_SCOPES: tuple[SloScope, ...] = ("fleet", "per-model")
#: Relative slack when checking an SLO or a capacity (floating-point, not modelling, slack).
FEASIBILITY_RTOL = 1e-7


@dataclass(frozen=True, slots=True)
class RoutingProblem:
    """Scores (N × K, read-only), one curve per model, total rate (req/s) and SLO (ms)."""

    models: tuple[str, ...]
    scores: FloatArray
    curves: tuple[LatencyCurve, ...]
    total_rps: float
    slo_ms: float
    scope: SloScope = "fleet"

    def __post_init__(self) -> None:
        k = len(self.models)
        if self.scores.ndim != 2 or self.scores.shape[1] != k:
            raise InputError(f"scores shape {self.scores.shape} does not match {k} models")
        if len(self.curves) != k:
            raise InputError(f"{len(self.curves)} latency curves for {k} models")
        if not (np.isfinite(self.total_rps) and self.total_rps > 0):
            raise InputError(f"rate_rps={self.total_rps!r} must be a positive number")
        if not (np.isfinite(self.slo_ms) and self.slo_ms > 0):
            raise InputError(f"slo_ms={self.slo_ms!r} must be a positive number")
        if self.scope not in SLO_SCOPES:
            raise InputError(f"slo scope {self.scope!r}; expected one of {SLO_SCOPES}")

    @property
    def num_prompts(self) -> int:
        return int(self.scores.shape[0])

    def latencies_ms(self, fractions: FloatArray) -> FloatArray:
        """Each model's latency at its load on the real (interpolated) curve."""
        rates = np.asarray(fractions) * self.total_rps
        out = np.empty(len(self.models))
        for m, curve in enumerate(self.curves):
            # a load within float noise of capacity counts as at capacity
            r = min(rates[m], curve.capacity_rps_) if rates[m] <= curve.capacity_rps_ * (
                1 + FEASIBILITY_RTOL) else rates[m]
            out[m] = float(curve(r))
        return out

    def fleet_ttft_ms(self, fractions: FloatArray) -> float:
        """``Σ_m x_m ℓ_m(Λ x_m)``: the request-weighted mean latency; models with no load add 0."""
        lat = self.latencies_ms(fractions)
        x = np.asarray(fractions)
        return float(np.sum(np.where(x > 0, x * lat, 0.0)))

    def meets_slo(self, fractions: FloatArray) -> bool:
        x = np.asarray(fractions)
        lat = self.latencies_ms(x)
        if self.scope == "fleet":
            return bool(self.fleet_ttft_ms(x) <= self.slo_ms * (1 + FEASIBILITY_RTOL))
        used = x > 1e-12
        return bool(np.all(lat[used] <= self.slo_ms * (1 + FEASIBILITY_RTOL)))


@dataclass(frozen=True, slots=True)
class RoutingResult:
    """A routing: prices α (score units), per-prompt shares (N × K), loads and predictions."""

    feasible: bool
    solver: str
    models: tuple[str, ...]
    quality: float
    fractions: FloatArray  # (K,) share of requests per model
    prices: FloatArray  # (K,) α_m; a prompt goes to argmax score − α
    shares: FloatArray | None  # (N, K) routing w; None when infeasible
    rates_rps: FloatArray  # (K,)
    latency_ms: FloatArray  # (K,) each model's latency at its load
    fleet_ttft_ms: float
    solve_seconds: float
    convexified: bool = False
    quality_upper_bound: float | None = None
    multiplier: float = 0.0  # β, the SLO's Lagrange multiplier (1/ms)
    tie_temperature: float = 0.0
    iterations: int = 0
    message: str = ""
    reachable: Mapping[str, float | None] = field(default_factory=dict)

    def per_model(self) -> dict[str, dict[str, float]]:
        return {
            m: {"rate_rps": float(self.rates_rps[k]), "ttft_mean_ms": float(self.latency_ms[k])}
            for k, m in enumerate(self.models)
        }
