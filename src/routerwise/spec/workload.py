"""The workload: a sample of prompts with per-model scores (and optional truth and lengths).

``scores[i, m]`` in [0, 1] is what a predictor *expects* model m to achieve on prompt i (used
to plan and to route); ``truth[i, m]`` is the measured quality (used only to evaluate).
Token lengths are in tokens; ``output_tokens`` is per model because models answer at
different lengths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from routerwise.errors import InputError
from routerwise.spec.core import FloatArray, Provenance


def _check_unit_interval(name: str, values: FloatArray, models: tuple[str, ...], src: str) -> None:
    bad = ~np.isfinite(values) | (values < 0.0) | (values > 1.0)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(
            f"{src}: {name} for model {models[col]!r} at prompt index {row} is "
            f"{values[row, col]!r}; scores must be numbers in [0, 1]"
        )


@dataclass(frozen=True, slots=True)
class Workload:
    """Prompts × models. Arrays are read-only; validated at construction."""

    prompt_ids: tuple[str, ...]
    models: tuple[str, ...]
    scores: FloatArray  # (N, K), in [0, 1]
    truth: FloatArray | None = None  # (N, K), in [0, 1]
    input_tokens: FloatArray | None = None  # (N,)
    output_tokens: FloatArray | None = None  # (N, K)
    tasks: tuple[str, ...] | None = None
    provenance: Provenance = "measured"
    source: str = "<memory>"
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n, k = len(self.prompt_ids), len(self.models)
        src = self.source
        if n == 0:
            raise InputError(f"{src}: the workload has no prompts")
        if k == 0:
            raise InputError(f"{src}: the workload has no model score columns")
        if len(set(self.models)) != k:
            raise InputError(f"{src}: duplicate model names in {self.models}")
        if self.scores.shape != (n, k):
            raise InputError(f"{src}: scores shape {self.scores.shape} != ({n=}, {k=})")
        _check_unit_interval("score", self.scores, self.models, src)
        if self.truth is not None:
            if self.truth.shape != (n, k):
                raise InputError(f"{src}: truth shape {self.truth.shape} != ({n=}, {k=})")
            _check_unit_interval("truth", self.truth, self.models, src)
        if self.input_tokens is not None and self.input_tokens.shape != (n,):
            raise InputError(f"{src}: input_tokens shape {self.input_tokens.shape} != ({n},)")
        if self.output_tokens is not None and self.output_tokens.shape != (n, k):
            raise InputError(f"{src}: output_tokens shape {self.output_tokens.shape} != ({n}, {k})")
        if self.tasks is not None and len(self.tasks) != n:
            raise InputError(f"{src}: {len(self.tasks)} task labels for {n} prompts")

    @property
    def num_prompts(self) -> int:
        return len(self.prompt_ids)

    @property
    def num_models(self) -> int:
        return len(self.models)

    def select_models(self, models: tuple[str, ...]) -> Workload:
        """The same prompts restricted to ``models`` (in that order)."""
        missing = [m for m in models if m not in self.models]
        if missing:
            raise InputError(f"{self.source}: no scores for model(s) {missing}; have {self.models}")
        idx = [self.models.index(m) for m in models]

        def cols(a: FloatArray | None) -> FloatArray | None:
            if a is None:
                return None
            out = np.ascontiguousarray(a[:, idx])
            out.setflags(write=False)
            return out

        scores = cols(self.scores)
        assert scores is not None
        return Workload(
            prompt_ids=self.prompt_ids,
            models=models,
            scores=scores,
            truth=cols(self.truth),
            input_tokens=self.input_tokens,
            output_tokens=cols(self.output_tokens),
            tasks=self.tasks,
            provenance=self.provenance,
            source=self.source,
            notes=self.notes,
        )
