"""The ``Predictor`` protocol and the checks every kind shares.

Stage: predict. A predictor is fitted on prompt texts (optional), task names (optional) and
outcome labels (N × K, in [0, 1], fractional allowed) for ``models``; it predicts the expected
quality of each model on new prompts, given their texts and optional task hints.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from routerwise.errors import InputError
from routerwise.spec.core import FloatArray

#: Texts are cut to this many characters before featurising (bounds the per-prompt latency;
#: the same cut is used when fitting and predicting).
MAX_TEXT_CHARS = 2000

Hints = Sequence[str | None] | None


@runtime_checkable
class Predictor(Protocol):
    """A quality predictor: ``fit`` returns self; learned state ends in ``_``."""

    kind: ClassVar[str]
    needs_text: ClassVar[bool]

    @property
    def models(self) -> tuple[str, ...]:
        """The models whose quality it predicts, in column order."""
        ...

    def fit(self, texts: Sequence[str] | None, tasks: Sequence[str] | None,
            labels: FloatArray, models: tuple[str, ...], rng: np.random.Generator) -> Self:
        """Fit on N prompts; ``labels`` is (N, K) in [0, 1]."""
        ...

    def predict(self, texts: Sequence[str] | None, hints: Hints = None) -> FloatArray:
        """(N, K) expected quality in [0, 1]; ``hints`` are task names (None: unknown)."""
        ...

    def save(self, directory: Path) -> list[str]:
        """Write the fitted state into ``directory``; return the file names written."""
        ...

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Read a state written by :meth:`save` (no code is executed on load)."""
        ...


def check_labels(labels: FloatArray, models: tuple[str, ...], n: int) -> FloatArray:
    """Labels as a float (n, K) array in [0, 1]; a bad value is named."""
    arr = np.asarray(labels, dtype=np.float64)
    if arr.shape != (n, len(models)):
        raise InputError(f"labels shape {arr.shape} != ({n} prompts, {len(models)} models)")
    bad = ~np.isfinite(arr) | (arr < 0.0) | (arr > 1.0)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(f"label for model {models[col]!r} at prompt {row} is {arr[row, col]!r};"
                         " labels must be in [0, 1]")
    return arr


def check_texts(texts: Sequence[str] | None, n: int | None, kind: str) -> list[str]:
    """Prompt texts cut to :data:`MAX_TEXT_CHARS`; a text predictor without text is an error."""
    if texts is None:
        raise InputError(f"predictor kind {kind!r} needs prompt text; the input has none "
                         "(use kind 'task' for workloads without text)")
    if n is not None and len(texts) != n:
        raise InputError(f"{len(texts)} prompt texts for {n} prompts")
    return [str(t)[:MAX_TEXT_CHARS] for t in texts]


def check_hints(hints: Hints, n: int) -> list[str | None]:
    """Task hints as a list of length n (None where unknown)."""
    if hints is None:
        return [None] * n
    if len(hints) != n:
        raise InputError(f"{len(hints)} task hints for {n} prompts")
    return [None if h is None else str(h) for h in hints]


def clip_unit(values: FloatArray) -> FloatArray:
    """Scores clipped into [0, 1] (float64)."""
    return np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
