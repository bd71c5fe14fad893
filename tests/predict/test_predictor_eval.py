"""Out-of-fold predictions never score a prompt with a model trained on it; report arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import pytest

from routerwise.errors import InputError
from routerwise.predict import registry
from routerwise.predict.base import Hints
from routerwise.predict.evaluate import (
    auc,
    fit_on,
    fold_ids,
    heldout_report,
    oof_predictions,
    routing_quality,
)
from routerwise.spec.core import FloatArray
from routerwise.spec.workload import Workload
from tests.predict.synthetic_text import synthetic_workload


class SpyPredictor:
    """Records which texts it was fitted on and which it scores."""

    kind: ClassVar[str] = "spy"
    needs_text: ClassVar[bool] = True
    seen: ClassVar[list[tuple[set[str], set[str]]]] = []

    def __init__(self) -> None:
        self.fitted: set[str] = set()
        self.models_: tuple[str, ...] = ()

    @property
    def models(self) -> tuple[str, ...]:
        return self.models_

    def fit(self, texts: Sequence[str] | None, tasks: Sequence[str] | None, labels: FloatArray,
            models: tuple[str, ...], rng: np.random.Generator) -> Self:
        self.fitted, self.models_ = set(texts or ()), models
        return self

    def predict(self, texts: Sequence[str] | None, hints: Hints = None) -> FloatArray:
        SpyPredictor.seen.append((self.fitted, set(texts or ())))
        return np.full((len(texts or ()), len(self.models_)), 0.5)

    def save(self, directory: Path) -> list[str]:
        return []

    @classmethod
    def load(cls, directory: Path) -> Self:
        return cls()


def test_no_prompt_is_scored_by_a_model_trained_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.PREDICTORS, "spy", SpyPredictor)  # type: ignore[dict-item]
    SpyPredictor.seen.clear()
    workload = synthetic_workload(53, 0)
    oof_predictions(workload, "spy", folds=4, seed=1)
    assert len(SpyPredictor.seen) == 4
    scored = set()
    for fitted, predicted in SpyPredictor.seen:
        assert not fitted & predicted
        assert len(fitted) + len(predicted) == 53
        scored |= predicted
    assert workload.prompts is not None and scored == set(workload.prompts)


def test_a_memorising_knn_is_perfect_in_sample_but_not_out_of_fold() -> None:
    rng = np.random.default_rng(3)
    base = synthetic_workload(150, 0)
    noise = (rng.random((150, 2)) < 0.5).astype(float)  # labels with no signal at all
    workload = Workload(prompt_ids=base.prompt_ids, models=base.models, scores=noise,
                        truth=noise, prompts=base.prompts, source="<noise>")
    # without the selection correction (it would rightly shrink labels with no signal)
    in_sample = fit_on(workload, "knn", rng, k=1, correction=False).predict(workload.prompts)
    np.testing.assert_array_equal(in_sample, noise)
    oof = oof_predictions(workload, "knn", folds=5, seed=0, k=1, correction=False)
    assert 0.3 < np.mean(oof == noise) < 0.7  # chance level, as it must be


def test_oof_is_seeded_and_covers_every_prompt() -> None:
    workload = synthetic_workload(120, 2)
    a = oof_predictions(workload, "task", folds=3, seed=5)
    b = oof_predictions(workload, "task", folds=3, seed=5)
    np.testing.assert_array_equal(a, b)
    ids = fold_ids(120, 3, 5)
    assert sorted(np.bincount(ids).tolist()) == [40, 40, 40]
    with pytest.raises(InputError, match="folds=1"):
        fold_ids(10, 1, 0)


def test_text_kind_on_a_workload_without_text_names_the_file() -> None:
    base = synthetic_workload(20, 0)
    no_text = Workload(prompt_ids=base.prompt_ids, models=base.models, scores=base.scores,
                       truth=base.truth, tasks=base.tasks, source="scores.csv")
    with pytest.raises(InputError, match=r"scores\.csv: the workload has no prompt text"):
        oof_predictions(no_text, "tfidf")
    assert oof_predictions(no_text, "task", folds=2).shape == (20, 2)


def test_routing_quality_by_hand() -> None:
    labels = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    scores = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])
    q = routing_quality(scores, labels)
    assert q["best_single"] == 0.5 and q["oracle"] == 0.75 and q["random"] == 0.5
    assert q["predictor"] == 0.5  # picks 1, 0, 1, 0 -> labels 1, 0, 1, 0
    assert q["captured_headroom"] == 0.0


def test_auc_and_brier() -> None:
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0.0, 0.0, 1.0, 1.0])) == 0.75
    assert auc(np.array([0.1, 0.2]), np.array([0.5, 0.25])) is None  # not binary
    assert auc(np.array([0.1, 0.2]), np.array([1.0, 1.0])) is None  # one class
    labels = np.array([[1.0], [0.0], [1.0], [1.0]])
    report = heldout_report(np.full((4, 1), 0.75), labels, ("m",), np.array([0.5]))
    row = report["per_model"]["m"]
    assert row["brier"] == pytest.approx(0.1875) and row["brier_constant"] == pytest.approx(0.25)
    assert report["chosen_routing"] == {"predicted": 0.75, "measured": 0.75, "gap": 0.0}
    assert sum(b["count"] for b in report["calibration"]["m"]) == 4
