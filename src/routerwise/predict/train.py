"""Train a predictor on a workload and evaluate it: the library call behind ``train-predictor``.

Stage: predict. Inputs: a training workload with labels (and text for text kinds), the kind, a
seed, and either a held-out workload (``eval_workload``: train on all, report on it) or K folds
(report on out-of-fold predictions of the training workload). Output: :class:`TrainingRun` —
the predictor fitted on the whole training workload, the report and the manifest's training
fields. Pure: nothing is written (the CLI writes the artifact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.artifact import data_hash
from routerwise.predict.base import Predictor
from routerwise.predict.evaluate import (
    fit_on,
    heldout_report,
    oof_predictions,
    predict_on,
    training_inputs,
)
from routerwise.spec.workload import Workload


@dataclass(frozen=True, slots=True)
class TrainingRun:
    """A fitted predictor, its held-out report, and what it was trained on."""

    predictor: Predictor
    report: dict[str, Any]
    training: dict[str, Any]


def _aligned(eval_workload: Workload, models: tuple[str, ...]) -> Workload:
    missing = [m for m in models if m not in eval_workload.models]
    if missing:
        raise InputError(f"{eval_workload.source}: no labels for model(s) {missing} that the "
                         f"predictor is trained on; it has {list(eval_workload.models)}")
    if eval_workload.labels is None:
        raise InputError(f"{eval_workload.source}: no outcome labels to evaluate on")
    return eval_workload.select_models(models)


def train_predictor(workload: Workload, kind: str = "tfidf", *, folds: int = 5, seed: int = 0,
                    eval_workload: Workload | None = None) -> TrainingRun:
    """Fit ``kind`` on ``workload``; report on ``eval_workload`` or on K out-of-fold folds."""
    texts, tasks, labels = training_inputs(workload, kind)
    predictor = fit_on(workload, kind, np.random.default_rng(seed))
    if eval_workload is not None:
        held = _aligned(eval_workload, workload.models)
        scores, truth, how = predict_on(predictor, held), held.labels, f"held-out {held.source}"
    else:
        scores = oof_predictions(workload, kind, folds, seed)
        truth, how = labels, f"{folds}-fold out-of-fold predictions on {workload.source}"
    assert truth is not None
    report = heldout_report(scores, np.asarray(truth), workload.models, labels.mean(axis=0))
    report["evaluated_on"] = how
    training = {"source": workload.source, "num_prompts": workload.num_prompts,
                "data_sha256": data_hash(texts, tasks, labels, workload.models),
                "has_tasks": tasks is not None, "seed": seed, "folds": folds}
    return TrainingRun(predictor, report, training)
