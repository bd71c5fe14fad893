"""Serve stage — the plan's routing rule for one request, with a fallback order.

The first choice is drawn from the plan's rule over the *available* (healthy) models:
``argmax_m (score_m − price_m)``, ties within a few tie temperatures split by
the softmax the plan was solved with (``simulate.router.routing_probabilities``), so the
shares a gateway sends match the plan's fractions. The other available models follow in
decreasing margin: they are the fallbacks when the first choice fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routerwise.simulate.router import routing_probabilities
from routerwise.spec.core import FloatArray

BoolArray = np.ndarray


@dataclass(frozen=True, slots=True)
class PriceSnapshot:
    """The prices in force (score units, routed models' order) and how they were set."""

    prices: FloatArray
    multiplier_per_ms: float  # β of the routing that set them (0: unknown)
    slo_target_ms: float  # the SLO the solver was given (τ_eff; the plan's τ at start)
    rate_rps: float  # the rate the solver was given
    source: str  # "plan" or "controller"


def rank(scores: FloatArray, prices: FloatArray, tie_temperature: float,
         available: BoolArray, rng: np.random.Generator) -> list[int]:
    """Model indices to try in order (empty when none is available)."""
    idx = np.flatnonzero(available)
    if idx.size == 0:
        return []
    margin = scores[idx] - prices[idx]
    probs = routing_probabilities(margin[None, :], np.zeros(idx.size), tie_temperature)[0]
    first = int(idx[_draw(probs, rng)])
    rest = [int(idx[j]) for j in np.argsort(-margin, kind="stable") if idx[j] != first]
    return [first, *rest]


def _draw(probs: FloatArray, rng: np.random.Generator) -> int:
    if probs.max() >= 1.0 - 1e-12:  # the usual case: no tie, no random draw
        return int(np.argmax(probs))
    cum = np.cumsum(probs)
    return int(min(np.searchsorted(cum, rng.random() * cum[-1], side="right"), len(probs) - 1))
