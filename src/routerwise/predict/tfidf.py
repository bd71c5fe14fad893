"""The default predictor ``tfidf``: TF-IDF text features (+ task one-hot) → calibrated ridge.

Stage: predict. Inputs: prompt texts, optional task names, labels (N × K in [0, 1]).
Outputs: (N, K) expected quality. A prompt without a known task hint gets the task guessed
from its text (a ridge classifier on the same features). Why this design (measured on LLMRouter, see
``benchmarks/predictor_quality.py``): one multi-output ridge on shared features fits all K
models in one solve and regresses fractional labels directly; a per-model logistic regression
on ``label > 0.5`` was slower and no better; isotonic calibration on out-of-fold outputs makes a
score an expected quality so the dual prices can trade it against latency, and a selection
correction fitted on the same out-of-fold rows keeps the routed (argmax) model's score from
overstating its quality (``heads``). Prompts seen verbatim in training are moved towards their
stored outcomes (``memory``; ``memory=False`` turns that off).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.base import Hints, check_hints, check_labels, check_texts
from routerwise.predict.heads import (
    ALPHAS,
    GUESSER_ARRAYS,
    HEAD_ARRAYS,
    TASK_WEIGHT,
    CalibratedRidge,
    TaskEncoder,
    TaskGuesser,
    fit_calibrated_ridge,
    fit_task_encoder,
    fit_task_guesser,
)
from routerwise.predict.memory import MEMORY_ARRAYS, OutcomeMemory, fit_memory
from routerwise.predict.state import (
    STATE_JSON,
    STATE_NPZ,
    meta_field,
    read_arrays,
    read_json,
    write_state,
)
from routerwise.predict.text_features import BLOCKS, TfidfFeatures, fit_transform_features
from routerwise.spec.core import FloatArray


def stack_features(text: Any, tasks: FloatArray | None) -> Any:
    """Text features with the task one-hot columns appended (when the model uses tasks)."""
    if tasks is None:
        return text
    from scipy.sparse import csr_matrix, hstack

    return hstack([text, csr_matrix(tasks)], format="csr")


class TfidfPredictor:
    """Word + char TF-IDF and task hints → one ridge for all models → isotonic per model."""

    kind: ClassVar[str] = "tfidf"
    needs_text: ClassVar[bool] = True

    def __init__(self, alphas: tuple[float, ...] = ALPHAS, memory: bool = True) -> None:
        self.alphas = tuple(float(a) for a in alphas)
        self.memory = memory
        self.memory_: OutcomeMemory | None = None
        self.selection_: list[dict[str, float]] = []
        self.models_: tuple[str, ...] = ()
        self.features_: TfidfFeatures | None = None
        self.tasks_: TaskEncoder | None = None
        self.guesser_: TaskGuesser | None = None
        self.head_: CalibratedRidge | None = None

    @property
    def models(self) -> tuple[str, ...]:
        return self.models_

    def fit(self, texts: Sequence[str] | None, tasks: Sequence[str] | None,
            labels: FloatArray, models: tuple[str, ...], rng: np.random.Generator) -> Self:
        cut = check_texts(texts, None, self.kind)
        y = check_labels(labels, models, len(cut))
        self.features_, text = fit_transform_features(cut)
        self.tasks_ = fit_task_encoder(tasks)
        onehot = None
        if self.tasks_ is not None and tasks is not None:
            self.guesser_ = fit_task_guesser(text, tasks, self.tasks_)
            onehot = self.tasks_.encode(tasks)
        x = stack_features(text, onehot)
        self.head_, found = fit_calibrated_ridge(x, y, self.alphas, rng)
        self.selection_ = [c.summary() for c in found]
        self.memory_ = fit_memory(cut, y) if self.memory else None
        self.models_ = tuple(models)
        return self

    def _fitted(self) -> tuple[TfidfFeatures, CalibratedRidge]:
        if self.features_ is None or self.head_ is None:
            raise InputError("the tfidf predictor is not fitted")
        return self.features_, self.head_

    def predict(self, texts: Sequence[str] | None, hints: Hints = None) -> FloatArray:
        features, head = self._fitted()
        cut = check_texts(texts, None, self.kind)
        names = check_hints(hints, len(cut))
        if len(cut) == 1:
            scores = self._predict_one(cut[0], names[0])
        else:
            text = features.transform(cut)
            onehot = None
            if self.tasks_ is not None and self.guesser_ is not None:
                onehot = self.tasks_.encode(self.guesser_.fill(names, text))
            scores = head.predict(stack_features(text, onehot))
        return scores if self.memory_ is None else self.memory_.blend(cut, scores)

    def _predict_one(self, text: str, hint: str | None) -> FloatArray:
        """One prompt without building sparse matrices (the same numbers as a batch)."""
        features, head = self._fitted()
        cols, values = features.row(text)
        if self.tasks_ is not None and self.guesser_ is not None:
            if hint not in self.tasks_.tasks:
                hint = self.guesser_.guess_row(cols, values)
            task_col = features.num_features + self.tasks_.column(hint)
            cols, values = np.append(cols, task_col), np.append(values, TASK_WEIGHT)
        return head.predict_sparse_row(cols, values)

    def save(self, directory: Path) -> list[str]:
        features, head = self._fitted()
        arrays, meta = features.state()
        meta |= {"kind": self.kind, "alphas": list(self.alphas), "selection": self.selection_,
                 "memory_prior": None if self.memory_ is None else self.memory_.prior,
                 "models": list(self.models_),
                 "tasks": None if self.tasks_ is None else list(self.tasks_.tasks)}
        guesser = {} if self.guesser_ is None else self.guesser_.arrays()
        memory = {} if self.memory_ is None else self.memory_.arrays()
        return write_state(directory, arrays | head.arrays() | guesser | memory, meta)

    @classmethod
    def load(cls, directory: Path) -> Self:
        meta = read_json(directory / STATE_JSON)
        npz = directory / STATE_NPZ
        names = tuple(f"idf_{b}" for b in meta.get("blocks") or BLOCKS) + HEAD_ARRAYS
        if meta.get("tasks") is not None:
            names += GUESSER_ARRAYS
        prior = meta.get("memory_prior")
        if prior is not None:
            names += MEMORY_ARRAYS
        arrays = read_arrays(npz, names)
        out = cls(alphas=tuple(meta_field(meta, "alphas", list, directory / STATE_JSON)),
                  memory=prior is not None)
        out.selection_ = list(meta.get("selection") or [])
        out.models_ = tuple(meta_field(meta, "models", list, directory / STATE_JSON))
        out.features_ = TfidfFeatures.from_state(arrays, meta, directory / STATE_JSON)
        tasks = meta.get("tasks")
        if tasks is not None:
            out.tasks_ = TaskEncoder(tuple(str(t) for t in tasks))
            out.guesser_ = TaskGuesser.from_arrays(out.tasks_.tasks, arrays,
                                                   out.features_.num_features, npz)
        width = out.features_.num_features + (0 if tasks is None else len(tasks) + 1)
        out.head_ = CalibratedRidge.from_arrays(arrays, len(out.models_), width, npz)
        if prior is not None:
            out.memory_ = OutcomeMemory.from_arrays(
                arrays, len(out.models_), float(meta_field(meta, "memory_prior", float, npz)),
                npz)
        return out
