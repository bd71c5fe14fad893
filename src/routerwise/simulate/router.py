"""Simulate stage — the gateway's routing rule, exactly as a plan states it.

Inputs: the workload's scores over the deployed models (N × K), one price per deployed model
and the tie temperature (score units). Output: per prompt, the probability of each model —
``argmax_m (score[i, m] − price_m)``, exact ties (within a few temperatures) split by the
softmax at ``tie_temperature`` — and a sampler that draws the model of each request from it.
Which *replica* of the model serves a request is decided later, at arrival, by the cluster
(least outstanding requests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from routerwise.errors import InputError
from routerwise.spec.core import FloatArray, readonly

IntArray = NDArray[np.int64]


def routing_probabilities(scores: FloatArray, prices: FloatArray,
                          tie_temperature: float) -> FloatArray:
    """P(model | prompt): the argmax of score − price, ties split by a softmax (N × K)."""
    if scores.ndim != 2 or scores.shape[1] != len(prices):
        raise InputError(f"routing: scores {scores.shape} do not match {len(prices)} prices")
    z = np.asarray(scores, dtype=np.float64) - np.asarray(prices, dtype=np.float64)[None, :]
    z -= z.max(axis=1, keepdims=True)
    # at temperature 0: the pure argmax, exact ties split evenly
    p = np.exp(z / tie_temperature) if tie_temperature > 0 else (z == 0.0).astype(np.float64)
    return readonly(p / p.sum(axis=1, keepdims=True))


@dataclass(frozen=True, slots=True)
class RoutingRule:
    """The per-prompt model distribution of a plan's routing (over its deployed models)."""

    models: tuple[str, ...]
    probabilities: FloatArray  # (N, K), rows sum to 1

    def fractions(self) -> FloatArray:
        """Expected share of requests per model when prompts are drawn uniformly."""
        return readonly(self.probabilities.mean(axis=0))

    def choose(self, prompts: IntArray, rng: np.random.Generator) -> IntArray:
        """The model index of each request (prompt indices given)."""
        cum = np.cumsum(self.probabilities[prompts], axis=1)
        u = rng.random(len(prompts)) * cum[:, -1]
        picked: IntArray = np.minimum((cum < u[:, None]).sum(axis=1), len(self.models) - 1)
        return picked.astype(np.int64)


def routing_rule(models: tuple[str, ...], scores: FloatArray, prices: dict[str, float | None],
                 tie_temperature: float, where: str) -> RoutingRule:
    """The rule over ``models`` (the deployed ones) with their prices from ``prices``."""
    missing = [m for m in models if prices.get(m) is None]
    if missing:
        raise InputError(f"{where}: no routing price for deployed model(s) {missing}")
    alpha = np.array([float(p) for m in models if (p := prices.get(m)) is not None])
    return RoutingRule(models, routing_probabilities(scores, alpha, tie_temperature))
