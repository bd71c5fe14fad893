"""Honest evaluation of a predictor: out-of-fold predictions and a held-out report.

Stage: predict (pure functions: no files, clocks or global RNG).

* :func:`oof_predictions` — K-fold (seeded) predictions for every prompt of a workload from a
  predictor that never saw that prompt: what ``plan``/``route --predictor`` route on.
* :func:`heldout_report` — per model AUC (labels binarised at 0.5 where ≥ 90% are 0 or 1) and
  Brier score against a constant predictor (the training mean); calibration per decile of the
  predictions; routing quality without a latency constraint for the best single model, random
  routing (its expectation), the predictor's argmax and the oracle, with
  ``captured_headroom = (predictor − best single) / (oracle − best single)``; and the predicted
  vs measured mean quality of the predictor's argmax routing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.base import Predictor
from routerwise.predict.registry import make_predictor, predictor_class
from routerwise.spec.core import FloatArray
from routerwise.spec.workload import Workload

#: A model's labels count as binary when at least this share is exactly 0 or 1.
BINARY_SHARE = 0.9
CALIBRATION_BINS = 10


def training_inputs(workload: Workload, kind: str,
                    ) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None, FloatArray]:
    """(texts, tasks, labels) of a workload; InputError naming the file for what is missing."""
    labels = workload.labels
    if labels is None:
        raise InputError(f"{workload.source}: no outcome labels to train a predictor on")
    cls = predictor_class(kind)
    if cls.needs_text and workload.prompts is None:
        raise InputError(f"{workload.source}: the workload has no prompt text; predictor kind "
                         f"{kind!r} needs it (use --kind task with task names)")
    if kind == "task" and workload.tasks is None:
        raise InputError(f"{workload.source}: predictor kind 'task' needs task names; the "
                         "workload has none")
    return workload.prompts, workload.tasks, np.asarray(labels, dtype=np.float64)


def fit_on(workload: Workload, kind: str, rng: np.random.Generator, **params: Any) -> Predictor:
    """A predictor of ``kind`` fitted on the whole workload."""
    texts, tasks, labels = training_inputs(workload, kind)
    return make_predictor(kind, **params).fit(texts, tasks, labels, workload.models, rng)


def predict_on(predictor: Predictor, workload: Workload) -> FloatArray:
    """Predictions for a workload's prompts, columns in the workload's model order."""
    missing = [m for m in workload.models if m not in predictor.models]
    if missing:
        raise InputError(f"{workload.source}: the predictor was trained on models "
                         f"{list(predictor.models)}, not {missing}")
    cols = [predictor.models.index(m) for m in workload.models]
    scores = predictor.predict(workload.prompts, workload.tasks)
    return np.asarray(scores[:, cols], dtype=np.float64)


def _subset(items: Sequence[str] | None, idx: np.ndarray) -> list[str] | None:
    return None if items is None else [items[int(i)] for i in idx]


def fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    """Seeded fold id of each of n prompts (sizes differ by at most one)."""
    if not 2 <= folds <= n:
        raise InputError(f"{folds=} must be between 2 and the number of prompts ({n})")
    return np.random.default_rng(seed).permutation(np.arange(n) % folds)


def oof_predictions(workload: Workload, kind: str = "tfidf", folds: int = 5, seed: int = 0,
                    **params: Any) -> FloatArray:
    """(N, K) predictions; prompt i is scored by a predictor fitted without i's fold."""
    texts, tasks, labels = training_inputs(workload, kind)
    ids = fold_ids(len(labels), folds, seed)
    out = np.zeros_like(labels)
    for f in range(folds):
        train, test = np.flatnonzero(ids != f), np.flatnonzero(ids == f)
        model = make_predictor(kind, **params).fit(
            _subset(texts, train), _subset(tasks, train), labels[train], workload.models,
            np.random.default_rng([seed, f]))
        out[test] = model.predict(_subset(texts, test), _subset(tasks, test))
    return out


# ---------------------------------------------------------------- the report


def auc(scores: FloatArray, labels: FloatArray) -> float | None:
    """ROC AUC of labels binarised at 0.5 (ties count half); None if one class or not binary."""
    if np.mean((labels == 0.0) | (labels == 1.0)) < BINARY_SHARE:
        return None
    positive = labels >= 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _per_model(scores: FloatArray, labels: FloatArray, base: FloatArray,
               models: tuple[str, ...]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for k, model in enumerate(models):
        out[model] = {
            "auc": auc(scores[:, k], labels[:, k]),
            "brier": float(np.mean((scores[:, k] - labels[:, k]) ** 2)),
            "brier_constant": float(np.mean((base[k] - labels[:, k]) ** 2)),
            "mean_predicted": float(scores[:, k].mean()),
            "mean_observed": float(labels[:, k].mean()),
        }
    return out


def calibration_bins(scores: FloatArray, labels: FloatArray) -> list[dict[str, float]]:
    """Equal-count bins of sorted predictions: mean predicted vs mean observed."""
    order = np.argsort(scores, kind="stable")
    bins = np.array_split(order, min(CALIBRATION_BINS, len(order)))
    return [{"predicted": float(scores[b].mean()), "observed": float(labels[b].mean()),
             "count": len(b)} for b in bins if len(b)]


def routing_quality(scores: FloatArray, labels: FloatArray) -> dict[str, float | str]:
    """Unconstrained routing on the held-out prompts (measured on the labels)."""
    means = labels.mean(axis=0)
    best = float(means.max())
    chosen = np.argmax(scores, axis=1)
    rows = np.arange(len(labels))
    predictor, oracle = float(labels[rows, chosen].mean()), float(labels.max(axis=1).mean())
    headroom = oracle - best
    return {"best_single": best, "random": float(means.mean()), "predictor": predictor,
            "oracle": oracle,
            "captured_headroom": (predictor - best) / headroom if headroom > 0 else 0.0}


def chosen_routing(scores: FloatArray, labels: FloatArray) -> dict[str, float]:
    """The predictor's own estimate of its argmax routing's quality vs the measured one."""
    rows, chosen = np.arange(len(labels)), np.argmax(scores, axis=1)
    predicted, measured = float(scores[rows, chosen].mean()), float(labels[rows, chosen].mean())
    return {"predicted": predicted, "measured": measured, "gap": predicted - measured}


def heldout_report(scores: FloatArray, labels: FloatArray, models: tuple[str, ...],
                   base_rates: FloatArray | None = None) -> dict[str, Any]:
    """The report of DESIGN/issue 8 for predictions ``scores`` of ``labels`` (both N × K)."""
    if scores.shape != labels.shape or scores.shape[1] != len(models):
        raise InputError(f"scores {scores.shape} and labels {labels.shape} do not match "
                         f"{len(models)} models")
    base = labels.mean(axis=0) if base_rates is None else np.asarray(base_rates)
    routing = routing_quality(scores, labels)
    best_model = models[int(np.argmax(labels.mean(axis=0)))]
    return {
        "num_prompts": len(labels),
        "per_model": _per_model(scores, labels, base, models),
        "routing": routing | {"best_single_model": best_model},
        "chosen_routing": chosen_routing(scores, labels),
        "calibration": {m: calibration_bins(scores[:, k], labels[:, k])
                        for k, m in enumerate(models)}
                       | {"all": calibration_bins(scores.ravel(), labels.ravel())},
    }
