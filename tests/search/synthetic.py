"""Synthetic, monotone shape curves for search tests (fast and deterministic).

An instance of model m with tp GPUs at share s: mean TTFT ``base·(1 + u/(1.05 − u))`` with
utilisation ``u = rate/cap``, ``base = b_m·s^-0.5·tp^-0.6`` and ``cap = c_m·s·tp^0.9`` — faster
and bigger with more share or tp, like the estimator's curves.
"""

from __future__ import annotations

import numpy as np

from routerwise.latency.curve import PiecewiseLinearCurve
from routerwise.profiles.table import ProfilePoints
from routerwise.search.evaluate import EvalContext
from routerwise.search.space import ModelOptions, model_options, shape_of
from routerwise.spec.catalog import get_gpu, get_model
from routerwise.spec.core import readonly
from routerwise.spec.deployment import InstanceShape

SPEED = {"llama-2-13b": (60.0, 14.0), "yi-34b": (110.0, 7.0), "llama-2-70b": (190.0, 4.0)}


def synthetic_curves(options: list[ModelOptions], gpu_type: str = "A100-SXM-80GB"
                     ) -> dict[InstanceShape, PiecewiseLinearCurve]:
    curves = {}
    for o in options:
        b, c = SPEED.get(o.model, (80.0, 10.0))
        for d in o.options:
            share = d.share_units / 10
            base = b * share ** -0.5 * d.tp ** -0.6
            cap = c * share * d.tp ** 0.9
            u = np.linspace(0.1, 0.95, 8)
            pts = ProfilePoints(o.model, readonly(u * cap), readonly(base * (1 + u / (1.05 - u))),
                                "ttft_mean_ms", (), "<synthetic>")
            curves[shape_of(o.model, d, gpu_type)] = PiecewiseLinearCurve().fit(pts)
    return curves


SMALL_MODELS = ("llama-2-13b", "yi-34b", "llama-2-70b")


def small_problem() -> tuple[EvalContext, list[ModelOptions]]:
    """Three models on 4 A100 (one node), 80 prompts, 9 req/s, 180 ms SLO — feasible by
    construction: llama-2-13b alone on the 4 GPUs (60 ms base, 14 req/s per GPU) serves
    9 req/s at ~71 ms mean TTFT."""
    gpu = get_gpu("A100-SXM-80GB")
    opts = [model_options(m, get_model(m), gpu, 4, 4) for m in SMALL_MODELS]
    rng = np.random.default_rng(3)
    ability = np.array([0.0, 0.6, 1.0])
    scores = 1 / (1 + np.exp(-(ability - rng.normal(0, 1.2, (80, 1))
                               + rng.normal(0, .7, (80, 3)))))
    ctx = EvalContext(SMALL_MODELS, readonly(scores), synthetic_curves(opts), total_rps=9.0,
                      slo_ms=180.0, gpu_type=gpu.name)
    return ctx, opts
