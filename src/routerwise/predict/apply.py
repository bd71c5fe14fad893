"""Score a labelled workload with a trained predictor, honestly (``plan/route --predictor``).

Stage: predict. Inputs: a workload with outcome labels and a predictor directory written by
``routerwise train-predictor``. Output: the same workload routed on predictions
(``score_source="predicted"``) with its labels kept as ``truth``, so every quality reported
downstream is the routing scored on the labels.

No prompt is scored by a model trained on it: when the workload is the predictor's own
training data (the same file, or the same data hash), its scores are **out-of-fold**
predictions of the predictor's kind (K folds, the manifest's seed); otherwise the saved
predictor scores it directly (held-out data). Which one was used is written in the notes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.artifact import data_hash, load_predictor, read_manifest
from routerwise.predict.evaluate import oof_predictions, predict_on, training_inputs
from routerwise.spec.workload import Workload

DEFAULT_FOLDS = 5


def _same_data(workload: Workload, training: dict[str, Any], kind: str) -> bool:
    """The workload is (a sample of) the predictor's training data."""
    source = str(training.get("source", ""))
    if source and Path(source).resolve() == Path(workload.source).resolve():
        return True
    texts, tasks, labels = training_inputs(workload, kind)
    return bool(training.get("data_sha256") == data_hash(texts, tasks, labels, workload.models))


def _check_models(workload: Workload, models: list[str], directory: Path) -> None:
    missing = [m for m in workload.models if m not in models]
    if missing:
        raise InputError(f"{directory}: the predictor was trained on models {models}; it "
                         f"cannot score {missing} (train one on this workload's models)")


def predicted_workload(workload: Workload, directory: Path) -> Workload:
    """``workload`` scored by the predictor in ``directory`` (out of fold on its own data)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    _check_models(workload, list(manifest["models"]), directory)
    if workload.labels is None:
        raise InputError(f"{workload.source}: no outcome labels to score the predictions on")
    labelled = workload
    kind = str(manifest["kind"])
    training = dict(manifest.get("training") or {})
    if _same_data(labelled, training, kind):
        folds = int(training.get("folds") or DEFAULT_FOLDS)
        folds = min(folds, labelled.num_prompts)
        scores = oof_predictions(labelled, kind, folds, int(training.get("seed") or 0))
        how = (f"scores: {folds}-fold out-of-fold predictions of a {kind!r} predictor (the "
               f"workload is its training data, {directory})")
    else:
        scores = predict_on(load_predictor(directory), labelled)
        how = f"scores: predictions of the {kind!r} predictor in {directory} (held-out data)"
    return workload.with_predictions(np.clip(scores, 0.0, 1.0), how)
