"""Serialise a :class:`RoutingResult`: the ``route --json`` payload (DESIGN.md §6) and the
per-prompt assignment table (``prompt_id, model, share``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from routerwise.routing.problem import RoutingProblem, RoutingResult

#: Shares below this are dropped from assignment tables (the softmax tail of far-from-tied
#: prompts); each prompt's remaining shares are renormalised to sum to 1.
MIN_SHARE = 1e-9


def _num(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def route_payload(problem: RoutingProblem, result: RoutingResult,
                  warnings: list[str] | None = None,
                  provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document of ``routerwise route --json``."""
    models = problem.models
    payload: dict[str, Any] = {
        "feasible": result.feasible,
        "quality": _num(result.quality),
        "fractions": {m: _num(float(result.fractions[k])) for k, m in enumerate(models)},
        "prices": {m: _num(float(result.prices[k])) for k, m in enumerate(models)},
        "predicted": {
            "ttft_mean_ms": _num(result.fleet_ttft_ms),
            "per_model": {
                m: {"rate_rps": _num(float(result.rates_rps[k])),
                    "ttft_mean_ms": _num(float(result.latency_ms[k]))}
                for k, m in enumerate(models)
            },
        },
        "solve_seconds": result.solve_seconds,
        "solver": result.solver,
        "slo": {"metric": "ttft", "stat": "mean", "target_ms": problem.slo_ms,
                "scope": problem.scope},
        "rate_rps": problem.total_rps,
        "num_prompts": problem.num_prompts,
        "convexified": result.convexified,
        # scores and latency points as given; quality and latency predictions derive from them
        "provenance": {"quality": "derived", "latency": "derived", **(provenance or {})},
    }
    if result.quality_upper_bound is not None:
        payload["quality_upper_bound"] = result.quality_upper_bound
    if result.solver == "dual":
        payload["tie_temperature"] = result.tie_temperature
        payload["multiplier_per_ms"] = result.multiplier
    if not result.feasible:
        payload["message"] = result.message
        payload["reachable"] = dict(result.reachable)
    if warnings:
        payload["warnings"] = warnings
    return payload


def assignments_frame(prompt_ids: tuple[str, ...], models: tuple[str, ...],
                      shares: np.ndarray) -> pd.DataFrame:
    """Long table of non-zero shares: one row per (prompt, model) with share > 0."""
    kept = np.where(shares >= MIN_SHARE, shares, 0.0)
    kept = kept / kept.sum(axis=1, keepdims=True)
    rows, cols = np.nonzero(kept)
    return pd.DataFrame({
        "prompt_id": np.asarray(prompt_ids, dtype=object)[rows],
        "model": np.asarray(models, dtype=object)[cols],
        "share": kept[rows, cols],
    })
