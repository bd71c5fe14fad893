"""The ``knn`` predictor: the label average of the most similar training prompts.

Stage: predict. Similarity is cosine on the ``tfidf`` kind's features; neighbours that share
the prompt's task hint rank first (a bonus of 1 on top of a cosine in [0, 1]); the k nearest are
weighted by cosine² so near-duplicates dominate. The result is already an average of labels, i.e.
an expected quality per model, so no calibration map is added; but the routed model is the best
of K noisy averages (winner's curse: on LLMRouter the estimate of the routed quality was 0.06
too high), so each prompt's scores are shrunk towards their mean over the models by the
``heads`` selection correction, fitted on leave-one-out scores of up to
:data:`SELECTION_ROWS` seeded training prompts. The artifact holds the training feature
matrix (CSR arrays) and labels, so it grows with the training set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.base import Hints, check_hints, check_labels, check_texts
from routerwise.predict.heads import fit_shrink, shrink_rows
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
#: Training prompts scored leave-one-out to fit the selection correction (time: each is
#: compared with every training prompt), in chunks of CHUNK rows (memory).
SELECTION_ROWS, CHUNK = 2000, 250
MATRIX = ("x_data", "x_indices", "x_indptr", "labels", "task_ids")


class KnnPredictor:
    """Cosine k-nearest neighbours on TF-IDF features, same-task neighbours first."""

    kind: ClassVar[str] = "knn"
    needs_text: ClassVar[bool] = True

    def __init__(self, k: int = 50, correction: bool = True) -> None:
        if k < 1:
            raise InputError(f"{k=} must be at least 1")
        self.k = k
        self.correction = correction
        self.shrink_ = 1.0
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
        cut = check_texts(texts, None, self.kind)
        self.labels_ = check_labels(labels, models, len(cut)).copy()
        self.features_, self.matrix_ = fit_transform_features(cut)
        self._transposed = []
        self.tasks_ = () if tasks is None else tuple(sorted(set(tasks)))
        self.task_ids_ = self._task_ids(tasks, len(cut))
        self.models_ = tuple(models)
        self.shrink_ = self._fit_shrink(rng) if self.correction and len(cut) > self.k else 1.0
        return self

    def _fit_shrink(self, rng: np.random.Generator) -> float:
        """The selection correction fitted on leave-one-out scores of sampled training rows."""
        n = self.labels_.shape[0]
        rows = np.sort(rng.choice(n, size=min(n, SELECTION_ROWS), replace=False))
        scores = np.zeros((len(rows), self.labels_.shape[1]))
        for start in range(0, len(rows), CHUNK):
            part = rows[start:start + CHUNK]
            sims = np.asarray((self.matrix_[part] @ self._by_feature()).todense())
            sims[np.arange(len(part)), part] = -10.0  # leave the prompt itself out
            scores[start:start + len(part)] = [self._average(row, h) for row, h in
                                               zip(sims, self.task_ids_[part], strict=True)]
        return fit_shrink(scores, self.labels_[rows])

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
        scores = np.vstack([self._average(row, h) for row, h in zip(sims, hint_ids, strict=True)])
        return shrink_rows(scores, self.shrink_)

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
        meta |= {"kind": self.kind, "k": self.k, "shrink": self.shrink_,
                 "models": list(self.models_),
                 "tasks": list(self.tasks_)}
        return write_state(directory, arrays, meta)

    @classmethod
    def load(cls, directory: Path) -> Self:
        from scipy.sparse import csr_matrix

        path, npz = directory / STATE_JSON, directory / STATE_NPZ
        meta = read_json(path)
        arrays = read_arrays(npz, tuple(f"idf_{b}" for b in meta.get("blocks") or BLOCKS) + MATRIX)
        out = cls(k=int(meta_field(meta, "k", int, path)))
        shrink = meta.get("shrink", 1.0)  # directories written before the correction: none
        if not isinstance(shrink, int | float) or not 0.0 <= float(shrink) <= 1.0:
            raise InputError(f"{path}: field 'shrink' should be a number in [0, 1], found "
                             f"{shrink!r}")
        out.shrink_ = float(shrink)
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
