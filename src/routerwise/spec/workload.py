"""The workload: a sample of prompts with per-model scores (and optional truth and lengths).

``scores[i, m]`` in [0, 1] is what the router *expects* model m to achieve on prompt i (used
to plan and to route); ``truth[i, m]`` is the measured quality (used only to evaluate).
``score_source`` says what the scores are, so no output can call an oracle a prediction:

* ``oracle`` — the scores *are* the outcome labels (a workload file without predictions):
  routing on them is an upper bound no deployment reaches;
* ``predicted`` — a predictor's output (``pred:<model>`` columns, ``--predictor``), with
  ``truth`` the outcome labels;
* ``derived`` — a built-in scenario's simulated predictor over simulated outcomes.

Token lengths are in tokens; ``output_tokens`` is per model because models answer at
different lengths.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from routerwise.errors import InputError
from routerwise.spec.core import FloatArray, Provenance

#: What a workload's ``scores`` are (module docstring).
ScoreSource = Literal["oracle", "predicted", "derived"]


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
    prompts: tuple[str, ...] | None = None  # prompt text, when the file has it
    score_source: ScoreSource = "oracle"
    input_tokens_from: str = ""  # how input lengths were counted (column, chars/4, ...)

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
        if self.prompts is not None and len(self.prompts) != n:
            raise InputError(f"{src}: {len(self.prompts)} prompt texts for {n} prompts")
        if self.score_source == "oracle" and self.truth is not None \
                and not np.array_equal(self.truth, self.scores):
            raise InputError(f"{src}: oracle scores must equal the truth labels")

    @property
    def is_oracle(self) -> bool:
        """True when routing on ``scores`` uses the outcome labels themselves."""
        return self.score_source == "oracle"

    @property
    def labels(self) -> FloatArray | None:
        """Outcome labels (measured quality) when known: ``truth``, or an oracle's scores."""
        if self.truth is not None:
            return self.truth
        return self.scores if self.is_oracle else None

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
            prompts=self.prompts,
            score_source=self.score_source,
            input_tokens_from=self.input_tokens_from,
        )

    def with_predictions(self, predicted: FloatArray, how: str) -> Workload:
        """The same prompts routed on ``predicted`` scores, with the labels kept as truth."""
        labels = self.labels
        if labels is None:
            raise InputError(f"{self.source}: no outcome labels to keep beside the predictions")
        return replace(self, scores=_readonly(predicted), truth=labels,
                       score_source="predicted", notes=(*self.notes, how))

    def sample(self, num_prompts: int, rng: np.random.Generator) -> Workload:
        """A uniform sample of ``num_prompts`` prompts without replacement (file order kept)."""
        if num_prompts >= self.num_prompts:
            return self
        idx = np.sort(rng.choice(self.num_prompts, size=num_prompts, replace=False))

        def rows(a: FloatArray | None) -> FloatArray | None:
            return None if a is None else _readonly(a[idx])

        def pick(t: tuple[str, ...] | None) -> tuple[str, ...] | None:
            return None if t is None else tuple(t[int(i)] for i in idx)

        scores = rows(self.scores)
        assert scores is not None
        return replace(
            self, prompt_ids=tuple(self.prompt_ids[int(i)] for i in idx), scores=scores,
            truth=rows(self.truth), input_tokens=rows(self.input_tokens),
            output_tokens=rows(self.output_tokens), tasks=pick(self.tasks),
            prompts=pick(self.prompts),
            notes=(*self.notes, f"a seeded sample of {num_prompts} of {self.num_prompts} prompts"),
        )


def _readonly(a: FloatArray) -> FloatArray:
    out = np.array(a, dtype=np.float64, copy=True, order="C")
    out.setflags(write=False)
    return out
