"""The predictor kinds: an explicit name → class registry (no import-time registration).

Stage: predict. ``make_predictor(kind, **params)`` builds an unfitted predictor; each module
imports only numpy at its top, so this registry is cheap to import.
"""

from __future__ import annotations

from typing import Any

from routerwise.errors import InputError
from routerwise.predict.base import Predictor
from routerwise.predict.embedding import EmbeddingPredictor
from routerwise.predict.knn import KnnPredictor
from routerwise.predict.task import TaskPredictor
from routerwise.predict.tfidf import TfidfPredictor

PREDICTORS: dict[str, type[Predictor]] = {
    "tfidf": TfidfPredictor,
    "knn": KnnPredictor,
    "embedding": EmbeddingPredictor,
    "task": TaskPredictor,
}
DEFAULT_KIND = "tfidf"


def predictor_class(kind: str) -> type[Predictor]:
    """The class of ``kind``; InputError listing the kinds when unknown."""
    try:
        return PREDICTORS[kind]
    except KeyError:
        raise InputError(f"unknown predictor kind {kind!r}; use one of {list(PREDICTORS)}") \
            from None


def make_predictor(kind: str = DEFAULT_KIND, **params: Any) -> Predictor:
    """A new, unfitted predictor of ``kind`` (``params`` go to its constructor)."""
    return predictor_class(kind)(**params)
