"""Regression heads shared by the feature-based kinds: ridge + per-model isotonic calibration.

Stage: predict. One multi-output ridge regression maps features to the K models' labels
(fractional labels are regressed as they are: a 0.5 counts as half a success); an isotonic map
per model, fitted on out-of-fold ridge outputs, turns the raw output into an expected quality in
[0, 1] (monotone, so the ranking of prompts for one model is kept). The ridge strength is chosen
among :data:`ALPHAS` by the routing quality of those out-of-fold scores. Task names become
one-hot columns (scaled by :data:`TASK_WEIGHT`); a prompt without a known task hint gets the
task a :class:`TaskGuesser` reads from its features (the last, "unknown" column stays empty).

Selection correction: routing takes each prompt's best-looking model, and the best of K noisy
scores overstates that model's quality (winner's curse) even when every model is calibrated on
its own. After the isotonic maps, each prompt's scores are shrunk towards their mean over the
models, ``m + shrink × (s − m)``, with ``shrink`` in [0, 1] fitted on the same out-of-fold rows
so that the argmax model's mean score equals its mean label there. The ranking of the models
within a prompt is kept (only prices can change an argmax).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.ridge import fit_ridge
from routerwise.predict.state import check_shape
from routerwise.spec.core import FloatArray

CALIBRATION_FOLDS = 5
#: Ridge strengths tried; the out-of-fold routing quality chooses (measured on LLMRouter and
#: RouteLLM: the best strength differs by data set, and all of them beat a fixed 1.0).
ALPHAS = (3.0, 10.0, 30.0)
#: Rows used to choose the strength and fit the calibration maps (bounds training time).
SELECTION_ROWS = 12_000
#: Scale of the task one-hot columns: large, so the ridge penalty barely shrinks per-task
#: means and the text only has to explain what the task does not.
TASK_WEIGHT = 10.0


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
        out[np.arange(len(names)), [self.column(n) for n in names]] = TASK_WEIGHT
        return out

    def known(self, names: Sequence[str | None]) -> list[int]:
        """Indices of the names that are training tasks (the others need a guess)."""
        return [i for i, n in enumerate(names) if n is not None and n in self.tasks]


def fit_task_encoder(tasks: Sequence[str] | None) -> TaskEncoder | None:
    return None if tasks is None else TaskEncoder(tuple(sorted(set(tasks))))


@dataclass(frozen=True, slots=True)
class TaskGuesser:
    """Features → the most likely training task (one-vs-rest ridge on the same features).

    Used when a prompt comes without a task hint, or with one the predictor never saw: the
    gateway then still gets per-task estimates (LLMRouter: the task is right ~9 times in 10).
    """

    tasks: tuple[str, ...]
    coef: FloatArray  # (T, D)
    intercept: FloatArray  # (T,)
    coef_by_feature: FloatArray = field(init=False, repr=False, compare=False)  # (D, T)

    def __post_init__(self) -> None:
        object.__setattr__(self, "coef_by_feature", np.ascontiguousarray(self.coef.T))

    def guess(self, features: Any) -> list[str]:
        raw = np.asarray(features @ self.coef.T) + self.intercept
        return [self.tasks[int(i)] for i in np.argmax(raw, axis=1)]

    def guess_row(self, cols: np.ndarray, values: FloatArray) -> str:
        return self.tasks[int(np.argmax(values @ self.coef_by_feature[cols] + self.intercept))]

    def fill(self, names: Sequence[str | None], features: Any) -> list[str]:
        """``names`` with each missing or unknown one replaced by the guess for its row."""
        out = [n if n in self.tasks else "" for n in names]
        missing = [i for i, n in enumerate(out) if not n]
        for i, guess in zip(missing, self.guess(features[missing]) if missing else [],
                            strict=True):
            out[i] = guess
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"task_coef": self.coef, "task_intercept": self.intercept}

    @classmethod
    def from_arrays(cls, tasks: tuple[str, ...], arrays: dict[str, np.ndarray], d: int,
                    path: Path) -> TaskGuesser:
        check_shape(arrays["task_coef"], (len(tasks), d), "task_coef", path)
        check_shape(arrays["task_intercept"], (len(tasks),), "task_intercept", path)
        return cls(tasks, arrays["task_coef"].astype(np.float64),
                   arrays["task_intercept"].astype(np.float64))


GUESSER_ARRAYS = ("task_coef", "task_intercept")
GUESSER_ALPHA = 1.0


#: Rows the task guesser is fitted on (a seeded sample beyond that: one output per task makes
#: it the widest solve of a fit, and guessing a task does not need every prompt).
GUESSER_ROWS = 12_000


def fit_task_guesser(features: Any, names: Sequence[str], encoder: TaskEncoder) -> TaskGuesser:
    """A one-vs-rest ridge classifier of the training tasks."""
    rows = np.arange(len(names))
    if len(rows) > GUESSER_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(len(rows), GUESSER_ROWS, replace=False))
    targets = np.zeros((len(rows), len(encoder.tasks)))
    targets[np.arange(len(rows)), [encoder.column(names[int(i)]) for i in rows]] = 1.0
    coef, intercept = _ridge(features[rows], targets, GUESSER_ALPHA)
    return TaskGuesser(encoder.tasks, coef, intercept)


@dataclass(frozen=True, slots=True)
class CalibratedRidge:
    """``raw = X @ coef.T + intercept``; score_k = isotonic_k(raw_k) (piecewise linear)."""

    coef: FloatArray  # (K, D)
    intercept: FloatArray  # (K,)
    knots_x: FloatArray  # (K, M) increasing per row (padded by repeating the last knot)
    knots_y: FloatArray  # (K, M) in [0, 1], non-decreasing per row
    alpha: float = 1.0
    shrink: float = 1.0  # selection correction (1: none)
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
        return shrink_rows(np.clip(np.column_stack(cols), 0.0, 1.0), self.shrink)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef, "intercept": self.intercept, "knots_x": self.knots_x,
                "knots_y": self.knots_y, "alpha": np.array(self.alpha),
                "shrink": np.array(self.shrink)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], k: int, d: int, path: Path,
                    ) -> CalibratedRidge:
        check_shape(arrays["coef"], (k, d), "coef", path)
        check_shape(arrays["intercept"], (k,), "intercept", path)
        kx, ky = arrays["knots_x"], arrays["knots_y"]
        if kx.ndim != 2 or kx.shape[0] != k or ky.shape != kx.shape:
            raise InputError(f"{path}: calibration knots have shapes {kx.shape}, {ky.shape}")
        shrink = float(arrays["shrink"])
        if not 0.0 <= shrink <= 1.0:
            raise InputError(f"{path}: array 'shrink' is {shrink}, expected a value in [0, 1]")
        return cls(arrays["coef"].astype(np.float64), arrays["intercept"].astype(np.float64),
                   kx.astype(np.float64), ky.astype(np.float64), float(arrays["alpha"]), shrink)


HEAD_ARRAYS = ("coef", "intercept", "knots_x", "knots_y", "alpha", "shrink")


def shrink_rows(scores: FloatArray, shrink: float) -> FloatArray:
    """Each row pulled towards its mean: ``m + shrink × (s − m)`` (stays in [0, 1])."""
    if shrink == 1.0:
        return scores
    mean = scores.mean(axis=1, keepdims=True)
    out: FloatArray = mean + shrink * (scores - mean)
    return out


def fit_shrink(scores: FloatArray, labels: FloatArray) -> float:
    """The shrink in [0, 1] that makes the argmax model's mean score its mean label."""
    rows, chosen = np.arange(len(labels)), np.argmax(scores, axis=1)
    mean = float(scores.mean(axis=1).mean())
    spread = float(scores[rows, chosen].mean()) - mean
    if spread <= 1e-9:
        return 1.0
    return float(np.clip((float(labels[rows, chosen].mean()) - mean) / spread, 0.0, 1.0))


def _ridge(features: Any, labels: FloatArray, alpha: float, start: FloatArray | None = None,
           ) -> tuple[FloatArray, FloatArray]:
    return fit_ridge(features, labels, alpha, start)


def _fold_ids(n: int, folds: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % folds)


def _isotonic(raw: FloatArray, labels: FloatArray) -> tuple[FloatArray, FloatArray]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, labels)
    return np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)


def _pad(rows: list[FloatArray]) -> FloatArray:
    width = max(len(r) for r in rows)
    return np.array([np.concatenate([r, np.full(width - len(r), r[-1])]) for r in rows])


def out_of_fold_raw(features: Any, labels: FloatArray, alphas: tuple[float, ...],
                    ids: np.ndarray) -> list[FloatArray]:
    """Per strength, ridge outputs for each row from a ridge fitted without its fold (``ids``).

    Within a fold the strengths are solved from the strongest down, each warm-started from the
    previous solution (the iterative solver then needs a few steps instead of tens).
    """
    raws = [np.zeros_like(labels) for _ in alphas]
    order = sorted(range(len(alphas)), key=lambda i: -alphas[i])
    for f in np.unique(ids):
        test = ids == f
        x_fit, y_fit, start = features[~test], labels[~test], None
        for i in order:
            start, intercept = _ridge(x_fit, y_fit, alphas[i], start)
            raws[i][test] = np.asarray(features[test] @ start.T) + intercept
    return raws


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ridge strength judged on out-of-fold rows: calibration maps and what they give."""

    alpha: float
    knots: tuple[FloatArray, FloatArray]
    oof_quality: float  # mean label of the argmax model (unconstrained routing)
    oof_brier: float
    shrink: float = 1.0  # selection correction fitted on the same rows
    oof_estimate: float = 0.0  # mean corrected score of the argmax model (≈ oof_quality)

    def summary(self) -> dict[str, float]:
        return {"alpha": self.alpha, "oof_routing_quality": self.oof_quality,
                "oof_brier": self.oof_brier, "shrink": self.shrink,
                "oof_routing_estimate": self.oof_estimate}


def _candidate(raw: FloatArray, labels: FloatArray, alpha: float) -> Candidate:
    maps = [_isotonic(raw[:, k], labels[:, k]) for k in range(labels.shape[1])]
    knots = (_pad([m[0] for m in maps]), _pad([m[1] for m in maps]))
    scores = np.column_stack([np.interp(raw[:, k], knots[0][k], knots[1][k])
                              for k in range(labels.shape[1])])
    rows, argmax = np.arange(len(labels)), np.argmax(scores, axis=1)
    shrink = fit_shrink(scores, labels)
    estimate = float(shrink_rows(scores, shrink)[rows, argmax].mean())
    return Candidate(alpha, knots, float(labels[rows, argmax].mean()),
                     float(np.mean((scores - labels) ** 2)), shrink, estimate)


def select_alpha(features: Any, labels: FloatArray, alphas: tuple[float, ...],
                 rng: np.random.Generator) -> tuple[Candidate, list[Candidate]]:
    """The strength whose out-of-fold calibrated scores route best (Brier breaks ties).

    At most :data:`SELECTION_ROWS` seeded rows take part (time); with more training rows the
    final ridge sees all of them and the calibration maps come from this subset.
    """
    rows = np.arange(labels.shape[0])
    if len(rows) > SELECTION_ROWS:
        rows = np.sort(rng.choice(len(rows), size=SELECTION_ROWS, replace=False))
    x, y = features[rows], labels[rows]
    ids = _fold_ids(len(rows), min(CALIBRATION_FOLDS, len(rows)), rng)
    raws = out_of_fold_raw(x, y, alphas, ids)
    found = [_candidate(raw, y, a) for raw, a in zip(raws, alphas, strict=True)]
    best = max(found, key=lambda c: (round(c.oof_quality, 4), -c.oof_brier))
    return best, found


def fit_calibrated_ridge(features: Any, labels: FloatArray, alphas: tuple[float, ...],
                         rng: np.random.Generator) -> tuple[CalibratedRidge, list[Candidate]]:
    """Choose the ridge strength on out-of-fold rows, then fit it on all rows (≥ 2 rows)."""
    if labels.shape[0] < 2:
        raise InputError(f"a predictor needs at least 2 training prompts, got {labels.shape[0]}")
    best, found = select_alpha(features, labels, alphas, rng)
    coef, intercept = _ridge(features, labels, best.alpha)
    return (CalibratedRidge(coef, intercept, best.knots[0], best.knots[1], best.alpha,
                            best.shrink), found)
