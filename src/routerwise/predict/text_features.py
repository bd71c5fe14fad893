"""TF-IDF features of prompt text: word 1–2-grams and character 2–5-grams (within words).

Stage: predict. Fitting chooses each block's vocabulary (at most ``max_terms`` terms seen in at
least ``min_df`` prompts) and inverse document frequencies with scikit-learn; transforming is
counting (fixed vocabulary, one prompt at a time: the same code serves a batch and the
gateway's single prompt) → sublinear tf (1 + ln tf) → × idf → unit L2 norm per block, each
block scaled by 1/√2 so a row has unit norm. The state is plain terms and floats (JSON + npz).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from routerwise.errors import InputError
from routerwise.spec.core import FloatArray

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

#: Per block: (analyzer, n-gram range, min_df, max_terms). Measured on LLMRouter (README of
#: this package's benchmark): word 1–2 + char_wb 2–5 beat either block alone.
BLOCKS: dict[str, tuple[str, tuple[int, int], int, int]] = {
    "word": ("word", (1, 2), 2, 100_000),
    "char": ("char_wb", (2, 5), 3, 100_000),
}


@dataclass(frozen=True, slots=True)
class TfidfBlock:
    """One fitted block: its terms (column order) and their idf weights."""

    name: str
    terms: tuple[str, ...]
    idf: FloatArray
    _cache: list[Any] = field(default_factory=list, compare=False, repr=False)

    def _tools(self) -> tuple[Callable[[str], list[str]], dict[str, int]]:
        """The n-gram analyzer and term → column map (built once, on first use)."""
        if not self._cache:
            from sklearn.feature_extraction.text import CountVectorizer

            analyzer, ngram, _, _ = BLOCKS[self.name]
            vec = CountVectorizer(analyzer=analyzer, ngram_range=ngram)
            self._cache.extend([vec.build_analyzer(), {t: i for i, t in enumerate(self.terms)}])
        return self._cache[0], self._cache[1]

    def row(self, text: str) -> tuple[np.ndarray, FloatArray]:
        """Columns and unit-norm weights of one text (sublinear tf × idf)."""
        analyze, vocab = self._tools()
        found = [i for i in map(vocab.get, analyze(text)) if i is not None]
        cols, counts = np.unique(np.asarray(found, dtype=np.int64), return_counts=True)
        weights = (1.0 + np.log(counts)) * self.idf[cols]
        norm = float(np.sqrt(weights @ weights))
        return cols, weights / norm if norm > 0 else weights


def fit_block(name: str, texts: Sequence[str]) -> tuple[TfidfBlock, csr_matrix]:
    """Choose the vocabulary and idf of block ``name`` on ``texts``; also return their rows.

    The rows are scikit-learn's (sublinear tf × idf, unit L2 norm): the same numbers
    :meth:`TfidfBlock.row` computes, got from the one analysis pass the fit makes anyway.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyzer, ngram, min_df, max_terms = BLOCKS[name]
    min_df = min(min_df, max(1, len(texts) // 2))  # tiny training sets still get a vocabulary
    vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram, min_df=min_df,
                          max_features=max_terms, sublinear_tf=True, dtype=np.float64)
    try:
        rows = vec.fit_transform(texts)
    except ValueError as exc:  # e.g. "empty vocabulary": too little or too uniform text
        raise InputError(f"cannot build the {name!r} TF-IDF vocabulary from {len(texts)} "
                         f"prompt text(s): {exc}; train on more (or longer) prompts, or use "
                         "--kind task") from exc
    terms = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
    return TfidfBlock(name, tuple(terms), np.asarray(vec.idf_, dtype=np.float64)), rows.tocsr()


@dataclass(frozen=True, slots=True)
class TfidfFeatures:
    """Word and character TF-IDF blocks side by side (unit-norm rows)."""

    blocks: tuple[TfidfBlock, ...]

    @property
    def num_features(self) -> int:
        return sum(len(b.terms) for b in self.blocks)

    def row(self, text: str) -> tuple[np.ndarray, FloatArray]:
        """Columns and weights of one text across the blocks (the one-prompt fast path)."""
        cols, vals, offset = [], [], 0
        scale = 1.0 / np.sqrt(len(self.blocks))
        for block in self.blocks:
            c, v = block.row(text)
            cols.append(c + offset)
            vals.append(v * scale)
            offset += len(block.terms)
        return np.concatenate(cols), np.concatenate(vals)

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        """(N, num_features) CSR matrix of unit-norm rows, built row by row."""
        from scipy.sparse import csr_matrix

        rows = [self.row(t) for t in texts]
        indptr = np.cumsum([0] + [len(c) for c, _ in rows])
        cols = np.concatenate([c for c, _ in rows]) if rows else np.zeros(0, np.int64)
        vals = np.concatenate([v for _, v in rows]) if rows else np.zeros(0)
        return csr_matrix((vals, cols, indptr), shape=(len(rows), self.num_features))

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays (idf per block) and JSON (terms per block) for saving."""
        arrays = {f"idf_{b.name}": b.idf for b in self.blocks}
        meta = {"blocks": [b.name for b in self.blocks],
                "terms": {b.name: list(b.terms) for b in self.blocks}}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: Path,
                   ) -> TfidfFeatures:
        """Rebuild from :meth:`state`; InputError naming ``path`` when it does not fit."""
        names, terms = meta.get("blocks"), meta.get("terms")
        if not isinstance(names, list) or not set(names) <= set(BLOCKS) \
                or not isinstance(terms, dict):
            raise InputError(f"{path}: 'blocks'/'terms' must name blocks among {list(BLOCKS)}")
        blocks = []
        for name in names:
            idf = arrays.get(f"idf_{name}")
            words = terms.get(name)
            if idf is None or not isinstance(words, list) or idf.shape != (len(words),):
                raise InputError(f"{path}: block {name!r} has no idf array matching its terms")
            blocks.append(TfidfBlock(name, tuple(str(w) for w in words), idf.astype(np.float64)))
        return cls(tuple(blocks))


def fit_features(texts: Sequence[str]) -> TfidfFeatures:
    """Fit both blocks on the training texts."""
    return fit_transform_features(texts)[0]


def fit_transform_features(texts: Sequence[str]) -> tuple[TfidfFeatures, csr_matrix]:
    """Fit both blocks and return the training texts' rows (= ``transform(texts)``, one pass)."""
    from scipy.sparse import hstack

    fitted = [fit_block(name, texts) for name in BLOCKS]
    scale = 1.0 / np.sqrt(len(fitted))
    matrix = hstack([rows * scale for _, rows in fitted], format="csr")
    matrix.sort_indices()
    return TfidfFeatures(tuple(block for block, _ in fitted)), matrix
