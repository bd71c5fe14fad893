"""Serve stage — the plan's routing rule for one request, with a fallback order.

The first choice is drawn from the plan's rule over the *available* (healthy) models:
``argmax_m (score_m − price_m)``, ties within a few tie temperatures split by
the softmax the plan was solved with (``simulate.router.routing_probabilities``), so the
shares a gateway sends match the plan's fractions. The other available models follow in
decreasing margin: they are the fallbacks when the first choice fails.
"""

from __future__ import annotations

import math
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


#: A best margin this many tie temperatures (plus ln K) above every other one takes all
#: the probability but e^-28 < 1e-12: the draw is the argmax (``_draw``'s own test).
_CLEAR_WIN_TEMPERATURES = 28.0


def rank(scores: FloatArray, prices: FloatArray, tie_temperature: float,
         available: BoolArray | list[bool], rng: np.random.Generator) -> list[int]:
    """Model indices to try in order (empty when none is available)."""
    clear = _clear_order(scores, prices, tie_temperature, available)
    return clear if clear is not None else softmax_rank(scores, prices, tie_temperature,
                                                        available, rng)


def softmax_rank(scores: FloatArray, prices: FloatArray, tie_temperature: float,
                 available: BoolArray | list[bool], rng: np.random.Generator) -> list[int]:
    """``rank`` by the plan's softmax in every case (ties or not)."""
    idx = np.flatnonzero(available)
    if idx.size == 0:
        return []
    margin = scores[idx] - prices[idx]
    probs = routing_probabilities(margin[None, :], np.zeros(idx.size), tie_temperature)[0]
    first = int(idx[_draw(probs, rng)])
    rest = [int(idx[j]) for j in np.argsort(-margin, kind="stable") if idx[j] != first]
    return [first, *rest]


def _clear_order(scores: FloatArray, prices: FloatArray, tie_temperature: float,
                 available: BoolArray | list[bool]) -> list[int] | None:
    """The order without numpy when the first choice is not a tie (the usual case; a few
    µs instead of ~15 on the request path); None when it may be one."""
    margin = {i: float(s) - float(p) for i, (s, p, ok) in
              enumerate(zip(scores, prices, available, strict=True)) if ok}
    if len(margin) < 2:
        return list(margin)
    order = sorted(margin, key=lambda i: -margin[i])  # stable, as np.argsort(kind=stable)
    gap = margin[order[0]] - margin[order[1]]
    need = (tie_temperature * (_CLEAR_WIN_TEMPERATURES + math.log(len(margin)))
            if tie_temperature > 0 else 0.0)
    return order if gap > need else None


def _draw(probs: FloatArray, rng: np.random.Generator) -> int:
    if probs.max() >= 1.0 - 1e-12:  # the usual case: no tie, no random draw
        return int(np.argmax(probs))
    cum = np.cumsum(probs)
    return int(min(np.searchsorted(cum, rng.random() * cum[-1], side="right"), len(probs) - 1))
