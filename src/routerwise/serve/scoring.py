"""Serve stage — predicted quality of each routed model for one request.

Three sources, tried in order and each counted in metrics (``score_source`` label):

* ``predictor``: a text predictor (``--predictor DIR``, kinds tfidf/knn/embedding) on the
  prompt's text, with the task hint if the request carries one;
* ``task``: a ``task`` predictor and the request's ``metadata.task`` hint;
* ``prior``: neither — the plan's prior, the mean predicted score of each model over the
  plan's workload (so the request goes to the model with the best prior margin).

A ``Scorer`` returns scores in the order of the routed models. Predictors whose one-prompt
prediction is sparse arithmetic (``tfidf``: ~0.1 ms) run inline on the event loop — a hop to a
worker thread costs more than that under load; those that search or embed (``knn``,
``embedding``) run off the event loop (``heavy``). The task lookup and the prior are inline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.base import Predictor
from routerwise.spec.core import FloatArray, readonly

SCORE_SOURCES = ("predictor", "task", "prior")


@dataclass(frozen=True, slots=True)
class Scores:
    """Scores of the routed models for one request and where they came from."""

    values: FloatArray  # (K,) in [0, 1], in the routed models' order
    source: str  # one of SCORE_SOURCES


class Scorer(Protocol):
    """Scores for a request's text and task hint, or None when this source cannot say."""

    heavy: bool  # True: run off the event loop

    def score(self, text: str, task: str | None) -> Scores | None: ...


#: Text predictor kinds cheap enough to run on the event loop (one prompt: a sparse
#: transform and a ridge product).
INLINE_KINDS = frozenset({"tfidf"})


class PredictorScorer:
    """A text predictor's scores (the task hint passed along when given)."""

    def __init__(self, predictor: Predictor, models: tuple[str, ...]) -> None:
        self._predictor = predictor
        self._cols = _columns(predictor, models)
        self.heavy = predictor.kind not in INLINE_KINDS

    def score(self, text: str, task: str | None) -> Scores | None:
        pred = self._predictor.predict([text], [task])
        return Scores(readonly(np.asarray(pred[0, self._cols], dtype=np.float64)), "predictor")


class TaskScorer:
    """A task predictor's per-task expected scores; only for requests with a task hint."""

    heavy = False

    def __init__(self, predictor: Predictor, models: tuple[str, ...]) -> None:
        self._predictor = predictor
        self._cols = _columns(predictor, models)
        self._cache: dict[str, FloatArray] = {}

    def score(self, text: str, task: str | None) -> Scores | None:
        if task is None:
            return None
        values = self._cache.get(task)
        if values is None:
            pred = self._predictor.predict(None, [task])
            values = readonly(np.asarray(pred[0, self._cols], dtype=np.float64))
            if len(self._cache) < 10_000:  # bounded: hints are client input
                self._cache[task] = values
        return Scores(values, "task")


class PriorScorer:
    """The plan's prior: mean predicted score per model, for every request."""

    heavy = False

    def __init__(self, prior: FloatArray) -> None:
        self._scores = Scores(readonly(np.asarray(prior, dtype=np.float64)), "prior")

    def score(self, text: str, task: str | None) -> Scores | None:
        return self._scores


def _columns(predictor: Predictor, models: tuple[str, ...]) -> list[int]:
    missing = [m for m in models if m not in predictor.models]
    if missing:
        raise InputError(f"the predictor predicts {list(predictor.models)}, not the plan's "
                         f"routed model(s) {missing}")
    return [predictor.models.index(m) for m in models]


#: Predictor kinds that need no text (the others read the prompt).
_LOOKUP_KINDS: Mapping[str, type[TaskScorer]] = {"task": TaskScorer}


def load_scorers(predictor_dir: Path | None, models: tuple[str, ...],
                 prior: FloatArray) -> tuple[Scorer, ...]:
    """The scorers to try in order: the predictor's (if any), then the prior."""
    scorers: list[Scorer] = []
    if predictor_dir is not None:
        from routerwise.predict.artifact import load_predictor

        predictor = load_predictor(predictor_dir)
        lookup = _LOOKUP_KINDS.get(predictor.kind)
        scorer = lookup(predictor, models) if lookup else PredictorScorer(predictor, models)
        # the first prediction builds the analyzers (and imports scikit-learn): seconds
        # that would otherwise land on the first request while a queue builds behind it
        scorer.score("warm up the predictor", None)
        scorers.append(scorer)
    scorers.append(PriorScorer(prior))
    return tuple(scorers)
