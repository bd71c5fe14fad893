"""The ``knn`` predictor: the label average of the most similar training prompts.

Stage: predict. Similarity is cosine on the ``tfidf`` kind's features; neighbours that share
the prompt's task hint rank first (a bonus of 1 on top of a cosine in [0, 1]); the k nearest are
weighted by cosine² so near-duplicates dominate. The result is already an average of labels, i.e.
an expected quality, so no calibration map is added. The artifact holds the training feature
matrix (CSR arrays) and labels, so it grows with the training set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.base import Hints, check_hints, check_labels, check_texts
from routerwise.predict.state import (
    STATE_JSON,
    STATE_NPZ,
    check_shape,
    meta_field,
    read_arrays,
    read_json,
    write_state,
)
from routerwise.predict.text_features import BLOCKS, TfidfFeatures, fit_transform_features
from routerwise.spec.core import FloatArray

SAME_TASK_BONUS = 1.0
MATRIX = ("x_data", "x_indices", "x_indptr", "labels", "task_ids")


class KnnPredictor:
    """Cosine k-nearest neighbours on TF-IDF features, same-task neighbours first."""

    kind: ClassVar[str] = "knn"
    needs_text: ClassVar[bool] = True

    def __init__(self, k: int = 50) -> None:
        if k < 1:
            raise InputError(f"{k=} must be at least 1")
        self.k = k
        self.models_: tuple[str, ...] = ()
        self.features_: TfidfFeatures | None = None
        self.matrix_: Any = None  # (N, D) CSR, unit rows
        self.labels_: FloatArray = np.zeros((0, 0))
        self.tasks_: tuple[str, ...] = ()
        self.task_ids_: np.ndarray = np.zeros(0, dtype=np.int64)  # -1: no task
        self._transposed: list[Any] = []

    @property
    def models(self) -> tuple[str, ...]:
        return self.models_

    def fit(self, texts: Sequence[str] | None, tasks: Sequence[str] | None,
            labels: FloatArray, models: tuple[str, ...], rng: np.random.Generator) -> Self:
        del rng  # deterministic
        cut = check_texts(texts, None, self.kind)
        self.labels_ = check_labels(labels, models, len(cut)).copy()
        self.features_, self.matrix_ = fit_transform_features(cut)
        self._transposed = []
        self.tasks_ = () if tasks is None else tuple(sorted(set(tasks)))
        self.task_ids_ = self._task_ids(tasks, len(cut))
        self.models_ = tuple(models)
        return self

    def _task_ids(self, names: Sequence[str | None] | None, n: int) -> np.ndarray:
        index = {t: i for i, t in enumerate(self.tasks_)}
        if names is None:
            return np.full(n, -1, dtype=np.int64)
        return np.array([index.get(t, -1) if t is not None else -1 for t in names], np.int64)

    def predict(self, texts: Sequence[str] | None, hints: Hints = None) -> FloatArray:
        if self.features_ is None:
            raise InputError("the knn predictor is not fitted")
        cut = check_texts(texts, None, self.kind)
        hint_ids = self._task_ids(check_hints(hints, len(cut)), len(cut))
        sims = np.asarray((self.features_.transform(cut) @ self._by_feature()).todense())
        return np.vstack([self._average(row, h) for row, h in zip(sims, hint_ids, strict=True)])

    def _by_feature(self) -> Any:
        """The training matrix transposed to (D, N) CSR, built once: a product with it touches
        only the rows of the query's features (scipy would re-convert ``matrix_.T`` per call)."""
        if not self._transposed:
            self._transposed.append(self.matrix_.T.tocsr())
        return self._transposed[0]

    def _average(self, cosine: FloatArray, hint: int) -> FloatArray:
        rank = cosine + SAME_TASK_BONUS * ((self.task_ids_ == hint) & (hint >= 0))
        k = min(self.k, len(rank))
        top = np.argpartition(-rank, k - 1)[:k]
        weights = np.maximum(cosine[top], 1e-6) ** 2
        out: FloatArray = np.clip(weights @ self.labels_[top] / weights.sum(), 0.0, 1.0)
        return out

    def save(self, directory: Path) -> list[str]:
        if self.features_ is None:
            raise InputError("the knn predictor is not fitted")
        arrays, meta = self.features_.state()
        m = self.matrix_
        arrays |= {"x_data": m.data, "x_indices": m.indices, "x_indptr": m.indptr,
                   "labels": self.labels_, "task_ids": self.task_ids_}
        meta |= {"kind": self.kind, "k": self.k, "models": list(self.models_),
                 "tasks": list(self.tasks_)}
        return write_state(directory, arrays, meta)

    @classmethod
    def load(cls, directory: Path) -> Self:
        from scipy.sparse import csr_matrix

        path, npz = directory / STATE_JSON, directory / STATE_NPZ
        meta = read_json(path)
        arrays = read_arrays(npz, tuple(f"idf_{b}" for b in meta.get("blocks") or BLOCKS) + MATRIX)
        out = cls(k=int(meta_field(meta, "k", int, path)))
        out.models_ = tuple(str(m) for m in meta_field(meta, "models", list, path))
        out.tasks_ = tuple(str(t) for t in meta_field(meta, "tasks", list, path))
        out.features_ = TfidfFeatures.from_state(arrays, meta, path)
        n = len(arrays["x_indptr"]) - 1
        check_shape(arrays["labels"], (n, len(out.models_)), "labels", npz)
        check_shape(arrays["task_ids"], (n,), "task_ids", npz)
        try:
            out.matrix_ = csr_matrix((arrays["x_data"], arrays["x_indices"], arrays["x_indptr"]),
                                     shape=(n, out.features_.num_features))
            out.matrix_.check_format(full_check=True)
        except ValueError as exc:
            raise InputError(f"{npz}: the training feature matrix is malformed: {exc}") from exc
        out.labels_, out.task_ids_ = arrays["labels"].astype(np.float64), arrays["task_ids"]
        return out
