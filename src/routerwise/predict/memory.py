"""Outcome memory: prompts seen in training keep their measured outcomes.

Stage: predict. A prompt whose text (cut and whitespace-normalised) equals a training prompt's
gets, per model, ``(prior × prediction + n × mean stored label) / (prior + n)``: the stored
outcome counts as ``n`` observations of that model on that very prompt and the text model's
prediction as ``prior`` pseudo-observations (a rerun of the same prompt does not always give
the same outcome, so the memory is not trusted outright). Prompts never seen are untouched.

Why: prompts repeat (LLMRouter: 119 of the 500 test prompts are verbatim training prompts, and
their repeated outcomes agree with the stored ones on 92% of the labels); a text model that
regularises towards task means cannot reproduce those outcomes, a look-up can. Held-out reports
therefore show figures with and without such prompts (``benchmarks/predictor_quality.py``).
The state is two plain arrays: 64-bit BLAKE2b keys of the texts and their mean labels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.state import check_shape
from routerwise.spec.core import FloatArray

#: Pseudo-observations the text model's prediction counts for against one stored outcome.
MEMORY_PRIOR = 1.0
MEMORY_ARRAYS = ("memory_keys", "memory_labels", "memory_counts")


def prompt_key(text: str) -> int:
    """64-bit key of a (cut) prompt text with runs of whitespace collapsed."""
    digest = hashlib.blake2b(" ".join(text.split()).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True, slots=True)
class OutcomeMemory:
    """Sorted prompt keys → mean stored labels (K per key) and how many prompts they average."""

    keys: np.ndarray  # (M,) uint64, sorted
    labels: FloatArray  # (M, K)
    counts: FloatArray  # (M,)
    prior: float = MEMORY_PRIOR
    _index: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({int(k): i for i, k in enumerate(self.keys)})

    def __len__(self) -> int:
        return len(self.keys)

    def blend(self, texts: Sequence[str], scores: FloatArray) -> FloatArray:
        """``scores`` (N, K) with every remembered prompt's row moved towards its outcomes."""
        out = np.array(scores, dtype=np.float64)
        for row, text in enumerate(texts):
            i = self._index.get(prompt_key(text))
            if i is not None:
                n = self.counts[i]
                out[row] = (self.prior * out[row] + n * self.labels[i]) / (self.prior + n)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"memory_keys": self.keys, "memory_labels": self.labels,
                "memory_counts": self.counts}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], k: int, prior: float, path: Path,
                    ) -> OutcomeMemory:
        keys = arrays["memory_keys"]
        if keys.ndim != 1 or keys.dtype != np.uint64:
            raise InputError(f"{path}: array 'memory_keys' must be 1-D uint64, found "
                             f"{keys.dtype} {keys.shape}")
        check_shape(arrays["memory_labels"], (len(keys), k), "memory_labels", path)
        check_shape(arrays["memory_counts"], (len(keys),), "memory_counts", path)
        labels = arrays["memory_labels"].astype(np.float64)
        counts = arrays["memory_counts"].astype(np.float64)
        if not (np.all((labels >= 0) & (labels <= 1)) and np.all(counts >= 1)):
            raise InputError(f"{path}: memory labels must be in [0, 1] and counts ≥ 1")
        return cls(keys, labels, counts, prior)


def fit_memory(texts: Sequence[str], labels: FloatArray, prior: float = MEMORY_PRIOR,
               ) -> OutcomeMemory:
    """The memory of the training prompts (identical texts share one key, labels averaged)."""
    if prior <= 0:
        raise InputError(f"memory prior must be positive, got {prior}")
    keys = np.fromiter((prompt_key(t) for t in texts), dtype=np.uint64, count=len(texts))
    unique, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(unique)).astype(np.float64)
    sums = np.zeros((len(unique), labels.shape[1]))
    np.add.at(sums, inverse, labels)
    return OutcomeMemory(unique, sums / counts[:, None], counts, prior)
