"""Outcome memory (prompts seen in training) and the selection (winner's curse) correction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routerwise.errors import InputError
from routerwise.predict.evaluate import fit_on
from routerwise.predict.heads import fit_shrink, shrink_rows
from routerwise.predict.memory import OutcomeMemory, fit_memory, prompt_key
from routerwise.predict.tfidf import TfidfPredictor
from tests.predict.synthetic_text import MODELS, synthetic_workload


def test_a_remembered_prompt_moves_halfway_to_its_stored_outcomes() -> None:
    memory = fit_memory(["what is 2+2", "name a river"], np.array([[1.0, 0.0], [0.0, 1.0]]))
    scores = memory.blend(["what  is 2+2\n", "unseen prompt"], np.full((2, 2), 0.5))
    np.testing.assert_allclose(scores, [[0.75, 0.25], [0.5, 0.5]])


def test_identical_training_prompts_share_one_key_and_average_their_labels() -> None:
    memory = fit_memory(["q", "q", "r"], np.array([[1.0], [0.0], [1.0]]))
    assert len(memory) == 2
    i = int(np.flatnonzero(memory.keys == np.uint64(prompt_key("q")))[0])
    assert memory.labels[i, 0] == 0.5 and memory.counts[i] == 2.0
    # two stored outcomes outweigh the prior of one: (1 × 0.9 + 2 × 0.5) / 3
    np.testing.assert_allclose(memory.blend(["q"], np.array([[0.9]])), [[1.9 / 3]])


def test_tfidf_remembers_training_prompts_and_can_be_told_not_to() -> None:
    train = synthetic_workload(300, 0)
    assert train.prompts is not None and train.labels is not None
    with_memory = fit_on(train, "tfidf", np.random.default_rng(0))
    without = TfidfPredictor(memory=False).fit(train.prompts, train.tasks,
                                               np.asarray(train.labels), MODELS,
                                               np.random.default_rng(0))
    seen = with_memory.predict(train.prompts[:50], train.tasks[:50] if train.tasks else None)
    plain = without.predict(train.prompts[:50], train.tasks[:50] if train.tasks else None)
    labels = np.asarray(train.labels)[:50]
    assert np.abs(seen - labels).mean() < np.abs(plain - labels).mean() - 0.1
    np.testing.assert_allclose(seen, (plain + labels) / 2, atol=1e-9)


def test_memory_survives_save_and_load(tmp_path: Path) -> None:
    train = synthetic_workload(200, 0)
    predictor = fit_on(train, "tfidf", np.random.default_rng(0))
    predictor.save(tmp_path)
    loaded = TfidfPredictor.load(tmp_path)
    assert loaded.memory_ is not None and len(loaded.memory_) == 200
    np.testing.assert_allclose(loaded.predict(train.prompts[:20]),
                               predictor.predict(train.prompts[:20]), atol=1e-12)


def test_memory_with_labels_outside_the_unit_interval_is_refused(tmp_path: Path) -> None:
    memory = fit_memory(["a"], np.array([[0.5]]))
    arrays = memory.arrays() | {"memory_labels": np.array([[1.5]])}
    with pytest.raises(InputError, match=r"state.npz: memory labels must be in \[0, 1\]"):
        OutcomeMemory.from_arrays(arrays, 1, 1.0, tmp_path / "state.npz")


def test_the_shrink_removes_the_winners_curse() -> None:
    # every model is equally good (0.5) but scores are noisy: the argmax looks better than it is
    rng = np.random.default_rng(0)
    labels = (rng.random((4000, 5)) < 0.5).astype(float)
    scores = np.clip(0.5 + rng.normal(0, 0.1, size=(4000, 5)), 0, 1)
    rows, chosen = np.arange(4000), np.argmax(scores, axis=1)
    assert scores[rows, chosen].mean() > 0.6  # the curse
    shrink = fit_shrink(scores, labels)
    assert 0.0 <= shrink < 0.2
    fixed = shrink_rows(scores, shrink)
    assert abs(fixed[rows, chosen].mean() - labels[rows, chosen].mean()) < 0.01


def test_informative_scores_are_barely_shrunk_and_keep_their_ranking() -> None:
    rng = np.random.default_rng(1)
    p = rng.random((4000, 3))
    labels = (rng.random(p.shape) < p).astype(float)
    noisy = np.clip(p + rng.normal(0, 0.1, size=p.shape), 0, 1)
    shrink = fit_shrink(noisy, labels)
    assert 0.5 < shrink < 1.0
    np.testing.assert_array_equal(np.argmax(shrink_rows(noisy, shrink), axis=1),
                                  np.argmax(noisy, axis=1))
    assert fit_shrink(p, labels) > 0.95


def _fake_embed(self: object, texts: list[str]) -> np.ndarray:
    """A stand-in for the sentence encoder: 384 seeded features of the words (no torch)."""
    out = np.zeros((len(texts), 384))
    for row, text in enumerate(texts):
        for word in text.split():
            out[row, prompt_key(word) % 384] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def test_embedding_remembers_training_prompts_across_save_and_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from routerwise.predict.embedding import EmbeddingPredictor

    monkeypatch.setattr(EmbeddingPredictor, "embed", _fake_embed)
    train = synthetic_workload(300, 0)
    assert train.prompts is not None and train.labels is not None
    labels = np.asarray(train.labels)
    fitted = EmbeddingPredictor().fit(train.prompts, train.tasks, labels, MODELS,
                                      np.random.default_rng(0))
    plain = EmbeddingPredictor(memory=False).fit(train.prompts, train.tasks, labels, MODELS,
                                                 np.random.default_rng(0))
    hints = list(train.tasks or ())[:30]
    np.testing.assert_allclose(fitted.predict(train.prompts[:30], hints),
                               (plain.predict(train.prompts[:30], hints) + labels[:30]) / 2,
                               atol=1e-9)
    fitted.save(tmp_path)
    loaded = EmbeddingPredictor.load(tmp_path)
    assert loaded.memory_ is not None and len(loaded.memory_) == 300
    np.testing.assert_allclose(loaded.predict(train.prompts[:30], hints),
                               fitted.predict(train.prompts[:30], hints), atol=1e-12)


def test_knn_corrects_the_winners_curse_on_labels_without_signal(tmp_path: Path) -> None:
    from routerwise.predict.knn import KnnPredictor

    base, rng = synthetic_workload(600, 0), np.random.default_rng(4)
    assert base.prompts is not None
    noise = (rng.random((600, 2)) < 0.5).astype(float)  # both models 0.5 on every prompt
    test = list(synthetic_workload(200, 1).prompts or ())
    estimate = {}
    for correction in (False, True):
        knn = KnnPredictor(k=10, correction=correction).fit(base.prompts, None, noise, MODELS,
                                                            np.random.default_rng(0))
        scores = knn.predict(test)
        chosen = scores[np.arange(200), np.argmax(scores, axis=1)].mean()
        estimate[correction] = chosen - scores.mean()  # the premium of the routed model
    # both models are equally good everywhere: a premium is the winner's curse
    assert estimate[False] > 0.05
    assert estimate[True] < 0.01 and knn.shrink_ < 0.5
    knn.save(tmp_path)
    assert KnnPredictor.load(tmp_path).shrink_ == knn.shrink_
