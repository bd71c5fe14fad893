"""The ``task`` predictor: per-task expected scores from a task hint (no text needed).

Stage: predict. Fitting averages each model's labels per task, shrunk towards the model's overall
mean by ``prior_weight`` pseudo-prompts (a task seen 3 times is not trusted like one seen 500
times); an unknown or missing hint gets the overall mean. Works for workloads without prompt
text, such as the built-in scenarios. Prediction is a dictionary look-up (microseconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Self

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.base import Hints, check_hints, check_labels
from routerwise.predict.state import (
    STATE_JSON,
    STATE_NPZ,
    check_shape,
    meta_field,
    read_arrays,
    read_json,
    write_state,
)
from routerwise.spec.core import FloatArray


class TaskPredictor:
    """Shrunk per-task mean label of each model; overall mean for unknown tasks."""

    kind: ClassVar[str] = "task"
    needs_text: ClassVar[bool] = False

    def __init__(self, prior_weight: float = 2.0) -> None:
        self.prior_weight = prior_weight
        self.models_: tuple[str, ...] = ()
        self.tasks_: tuple[str, ...] = ()
        self.means_: FloatArray = np.zeros((0, 0))  # (T + 1, K); last row: overall mean

    @property
    def models(self) -> tuple[str, ...]:
        return self.models_

    def fit(self, texts: Sequence[str] | None, tasks: Sequence[str] | None,
            labels: FloatArray, models: tuple[str, ...], rng: np.random.Generator) -> Self:
        del texts, rng  # text is not used; the fit is deterministic
        y = check_labels(labels, models, labels.shape[0])
        names = ["<all>"] * len(y) if tasks is None else [str(t) for t in tasks]
        if len(names) != len(y):
            raise InputError(f"{len(names)} task names for {len(y)} prompts")
        self.tasks_ = tuple(sorted(set(names))) if tasks is not None else ()
        overall = y.mean(axis=0)
        rows = [self._shrunk(y[[n == t for n in names]], overall) for t in self.tasks_]
        self.means_ = np.vstack([*rows, overall])
        self.models_ = tuple(models)
        return self

    def _shrunk(self, rows: FloatArray, overall: FloatArray) -> FloatArray:
        total: FloatArray = rows.sum(axis=0) + self.prior_weight * overall
        return total / (len(rows) + self.prior_weight)

    def predict(self, texts: Sequence[str] | None, hints: Hints = None) -> FloatArray:
        if not self.models_:
            raise InputError("the task predictor is not fitted")
        if texts is None and hints is None:
            raise InputError("the task predictor needs task hints (or texts, to count prompts)")
        n = len(texts) if texts is not None else len(hints or ())
        index = {t: i for i, t in enumerate(self.tasks_)}
        rows = [index.get(h, len(self.tasks_)) if h is not None else len(self.tasks_)
                for h in check_hints(hints, n)]
        out: FloatArray = np.array(self.means_[rows], dtype=np.float64)
        return out

    def save(self, directory: Path) -> list[str]:
        meta = {"kind": self.kind, "prior_weight": self.prior_weight,
                "models": list(self.models_), "tasks": list(self.tasks_)}
        return write_state(directory, {"means": self.means_}, meta)

    @classmethod
    def load(cls, directory: Path) -> Self:
        path = directory / STATE_JSON
        meta = read_json(path)
        out = cls(prior_weight=float(meta_field(meta, "prior_weight", float, path)))
        out.models_ = tuple(str(m) for m in meta_field(meta, "models", list, path))
        out.tasks_ = tuple(str(t) for t in meta_field(meta, "tasks", list, path))
        means = read_arrays(directory / STATE_NPZ, ("means",))["means"]
        check_shape(means, (len(out.tasks_) + 1, len(out.models_)), "means", directory / STATE_NPZ)
        out.means_ = means.astype(np.float64)
        return out
