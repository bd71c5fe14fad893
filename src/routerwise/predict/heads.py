"""Regression heads shared by the feature-based kinds: ridge + per-model isotonic calibration.

Stage: predict. One multi-output ridge regression maps features to the K models' labels
(fractional labels are regressed as they are: a 0.5 counts as half a success); an isotonic map
per model, fitted on out-of-fold ridge outputs, turns the raw output into an expected quality in
[0, 1] (monotone, so the ranking of prompts for one model is kept). Task names become one-hot
columns with an extra "unknown" column that a seeded tenth of the training rows use, so a
prompt without a task hint still gets a learned text-only estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.state import check_shape
from routerwise.spec.core import FloatArray

#: Share of training rows whose task is hidden (the "unknown" column learns from them).
TASK_DROPOUT = 0.1
UNKNOWN = "<unknown>"
CALIBRATION_FOLDS = 5


@dataclass(frozen=True, slots=True)
class TaskEncoder:
    """Task name → one-hot column; unknown or missing tasks share the last column."""

    tasks: tuple[str, ...]

    def column(self, name: str | None) -> int:
        """The one-hot column of a task (the last one when unknown or None)."""
        if name is None or name not in self.tasks:
            return len(self.tasks)
        return self.tasks.index(name)

    def encode(self, names: Sequence[str | None]) -> FloatArray:
        out = np.zeros((len(names), len(self.tasks) + 1))
        out[np.arange(len(names)), [self.column(n) for n in names]] = 1.0
        return out

    def encode_training(self, names: Sequence[str], rng: np.random.Generator) -> FloatArray:
        hidden = rng.random(len(names)) < TASK_DROPOUT
        return self.encode([None if h else n for n, h in zip(names, hidden, strict=True)])


def fit_task_encoder(tasks: Sequence[str] | None) -> TaskEncoder | None:
    return None if tasks is None else TaskEncoder(tuple(sorted(set(tasks))))


@dataclass(frozen=True, slots=True)
class CalibratedRidge:
    """``raw = X @ coef.T + intercept``; score_k = isotonic_k(raw_k) (piecewise linear)."""

    coef: FloatArray  # (K, D)
    intercept: FloatArray  # (K,)
    knots_x: FloatArray  # (K, M) increasing per row (padded by repeating the last knot)
    knots_y: FloatArray  # (K, M) in [0, 1], non-decreasing per row
    coef_by_feature: FloatArray = field(init=False, repr=False, compare=False)  # (D, K)

    def __post_init__(self) -> None:
        # one prompt touches ~10^3 features: gathering rows of a (D, K) copy is cache friendly
        object.__setattr__(self, "coef_by_feature", np.ascontiguousarray(self.coef.T))

    def predict(self, features: Any) -> FloatArray:
        """Scores of a feature matrix (sparse or dense), (N, K)."""
        return self.calibrate(np.asarray(features @ self.coef.T) + self.intercept)

    def predict_sparse_row(self, cols: np.ndarray, values: FloatArray) -> FloatArray:
        """Scores of one sparse feature row, (1, K): no sparse-matrix overhead (gateway path)."""
        raw = values @ self.coef_by_feature[cols] + self.intercept
        return self.calibrate(raw[None, :])

    def calibrate(self, raw: FloatArray) -> FloatArray:
        cols = [np.interp(raw[:, k], self.knots_x[k], self.knots_y[k])
                for k in range(self.coef.shape[0])]
        out: FloatArray = np.clip(np.column_stack(cols), 0.0, 1.0)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef, "intercept": self.intercept,
                "knots_x": self.knots_x, "knots_y": self.knots_y}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], k: int, d: int, path: Path,
                    ) -> CalibratedRidge:
        check_shape(arrays["coef"], (k, d), "coef", path)
        check_shape(arrays["intercept"], (k,), "intercept", path)
        kx, ky = arrays["knots_x"], arrays["knots_y"]
        if kx.ndim != 2 or kx.shape[0] != k or ky.shape != kx.shape:
            raise InputError(f"{path}: calibration knots have shapes {kx.shape}, {ky.shape}")
        return cls(arrays["coef"].astype(np.float64), arrays["intercept"].astype(np.float64),
                   kx.astype(np.float64), ky.astype(np.float64))


HEAD_ARRAYS = ("coef", "intercept", "knots_x", "knots_y")


def _ridge(features: Any, labels: FloatArray, alpha: float) -> tuple[FloatArray, FloatArray]:
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=alpha).fit(features, labels)
    return np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)


def _fold_ids(n: int, folds: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % folds)


def _isotonic(raw: FloatArray, labels: FloatArray) -> tuple[FloatArray, FloatArray]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, labels)
    return np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)


def _pad(rows: list[FloatArray]) -> FloatArray:
    width = max(len(r) for r in rows)
    return np.array([np.concatenate([r, np.full(width - len(r), r[-1])]) for r in rows])


def out_of_fold_raw(features: Any, labels: FloatArray, alpha: float, folds: int,
                    rng: np.random.Generator) -> FloatArray:
    """Ridge outputs for each row from a ridge fitted without that row's fold."""
    ids = _fold_ids(labels.shape[0], folds, rng)
    raw = np.zeros_like(labels)
    for f in range(folds):
        test = ids == f
        coef, intercept = _ridge(features[~test], labels[~test], alpha)
        raw[test] = np.asarray(features[test] @ coef.T) + intercept
    return raw


def fit_calibrated_ridge(features: Any, labels: FloatArray, alpha: float,
                         rng: np.random.Generator) -> CalibratedRidge:
    """Ridge on all rows; isotonic maps from out-of-fold outputs (fewer folds on tiny sets)."""
    folds = min(CALIBRATION_FOLDS, labels.shape[0])
    if folds >= 2:
        raw = out_of_fold_raw(features, labels, alpha, folds, rng)
    else:
        raw = np.zeros_like(labels)
    maps = [_isotonic(raw[:, k], labels[:, k]) for k in range(labels.shape[1])]
    coef, intercept = _ridge(features, labels, alpha)
    return CalibratedRidge(coef, intercept, _pad([m[0] for m in maps]), _pad([m[1] for m in maps]))
