"""The softmax demand side of the dual (DESIGN.md §2, stage 1), restricted to candidates.

Inputs: scores (N × K, score units), a tie temperature ``t`` and prices α (K,). Outputs: the
mean ``t·logsumexp((S_i − α)/t)`` over prompts, its gradient (the fraction of requests each
model receives, K) and its Hessian (K × K).

Most prompts have only a few models near their argmax. A *screen* at reference prices keeps,
for each prompt, the models within ``margin`` of its best ``score − α`` (its *candidates*) and
a *guard*: a lower bound on how far every other model lies below the best. While the prices
move by a spread ``max(δ) − min(δ)`` below ``guard − margin_t·t`` no other model can come
within ``margin_t`` temperatures of the best, so dropping it changes a share by less than
``e^-margin_t`` (4e-18 at the default 40): the restriction is exact to float precision.
A prompt with one candidate is *decided* and contributes in closed form. When the prices
move further, only the prompts whose guard ran out are screened again (a K-wide pass over
those prompts alone), so the work per evaluation is O(Σ candidates), not O(N·K).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from routerwise.spec.core import FloatArray

IntArray = NDArray[np.intp]

#: A model this many temperatures below a prompt's best gets a share below e^-40 ≈ 4e-18.
DECIDED_MARGIN_T = 40.0
#: Extra margin (score units) screened beyond ``margin_t·t``: how far prices may spread
#: before a prompt must be screened again.
REBASE_BUDGET = 0.02
#: Screening pays from this many prompts on, or from this many (prompt, model) pairs when
#: there are at least ``SCREEN_MIN_MODELS`` models; below, every model is a candidate of
#: every prompt (a screen would cost about as much as the evaluations it saves; measured).
SCREEN_MIN_PROMPTS = 10_000
SCREEN_MIN_ENTRIES = 40_000
SCREEN_MIN_MODELS = 12
#: Rows with more candidates than this add their Hessian by a dense product, not by pairs.
WIDE_ROW = 16
#: Prompts screened at a time (keeps the K-wide temporaries in cache).
SCREEN_CHUNK = 8192
#: Prompts transposed at a time (2× faster than one pass at 64 models; measured).
TRANSPOSE_BLOCK = 1024


def transposed(scores: FloatArray) -> FloatArray:
    """``scores.T`` as a C-contiguous (K × N) copy, block by block (cache-friendly)."""
    n, k = scores.shape
    out = np.empty((k, n))
    for lo in range(0, n, TRANSPOSE_BLOCK):
        out[:, lo:lo + TRANSPOSE_BLOCK] = scores[lo:lo + TRANSPOSE_BLOCK].T
    return out


def _screen(scores_t: FloatArray, alpha: FloatArray, idx: IntArray | None, margin: float
            ) -> tuple[IntArray, IntArray, FloatArray]:
    """Candidates of the prompts ``idx`` (all when None) at prices ``alpha``.

    ``scores_t`` is K × N. Returns (prompt of each entry, model of each entry, guard of each
    prompt in ``idx``); entries come in no particular order.
    """
    n = scores_t.shape[1] if idx is None else len(idx)
    prompts, cols, guards = [], [], []
    for lo in range(0, n, SCREEN_CHUNK):
        hi = min(lo + SCREEN_CHUNK, n)
        rows = np.arange(lo, hi) if idx is None else idx[lo:hi]
        z = (scores_t[:, lo:hi] if idx is None else scores_t[:, rows]) - alpha[:, None]
        top = np.maximum.reduce(z, axis=0)
        mask = z >= top - margin
        c, r = np.divmod(np.flatnonzero(mask), hi - lo)  # 1-D scan: ~3× np.nonzero's speed
        np.putmask(z, mask, -np.inf)
        guards.append(top - np.maximum.reduce(z, axis=0))  # inf: every model a candidate
        prompts.append(rows[r])
        cols.append(c)
    if not prompts:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
    return np.concatenate(prompts), np.concatenate(cols), np.concatenate(guards)


@functools.cache
def _upper_pairs(c: int) -> tuple[IntArray, IntArray]:
    """Row indices (a, b), a < b, of every pair among ``c`` candidates."""
    ia, ib = np.triu_indices(c, 1)
    return ia, ib


def _pairs_pay(c: int, k: int) -> bool:
    """Whether a row of ``c`` candidates adds its Hessian faster by pairs (~10 ns each) than
    by a dense K-wide row in one matrix product (~0.3 ns per K² entry, measured)."""
    return c * (c - 1) <= k * k // 16


@dataclass(frozen=True, slots=True)
class _Bucket:
    """Undecided prompts with the same number ``c`` of candidates, laid out c × n.

    Its Hessian part is added by pairs (``pair_*``) when rows are narrow against K, else by
    scattering the shares into rows of a dense n × K block (``dense_flat``).
    """

    cols: IntArray  # (c, n) candidate models
    vals: FloatArray  # (c, n) their scores / t
    prompts: IntArray  # (n,)
    pair_a: IntArray  # row indices (a < b) of every candidate pair …
    pair_b: IntArray
    pair_key: IntArray  # … and their flat Hessian index cols[a]·K + cols[b], raveled
    dense_flat: IntArray | None  # (c·n,) flat index of each share in the dense block

    @classmethod
    def of(cls, cols: IntArray, prompts: IntArray, scores_t: FloatArray, t: float,
           k: int, dense_row0: int) -> _Bucket:
        c, n = cols.shape
        vals = np.ascontiguousarray(scores_t[cols, prompts[None, :]]) / t
        if _pairs_pay(c, k):
            ia, ib = _upper_pairs(c)
            return cls(cols=cols, vals=vals, prompts=prompts, pair_a=ia, pair_b=ib,
                       pair_key=(cols[ia] * k + cols[ib]).ravel(), dense_flat=None)
        flat = (dense_row0 + np.arange(n))[None, :] * k + cols
        empty = np.zeros(0, np.intp)
        return cls(cols=cols, vals=vals, prompts=prompts, pair_a=empty, pair_b=empty,
                   pair_key=empty, dense_flat=flat.ravel())


class Demand:
    """Softmax demand of one score matrix at one temperature, over screened candidates.

    One instance serves every β of a search, so screens are rare. ``screens`` and
    ``screened_prompts`` count the work done (for benchmarks and tests).
    """

    def __init__(self, scores_t: FloatArray, t: float, margin_t: float = DECIDED_MARGIN_T,
                 screen: bool | None = None) -> None:
        self.scores_t = scores_t  # K × N, C-contiguous (see :func:`transposed`)
        self.k, self.n = self.scores_t.shape
        self.t = t
        self.margin_t = margin_t
        do_screen = (self.n >= SCREEN_MIN_PROMPTS or (
            self.k >= SCREEN_MIN_MODELS and self.n * self.k >= SCREEN_MIN_ENTRIES)
                     ) if screen is None else screen
        self.margin = margin_t * t + 2 * REBASE_BUDGET if do_screen else np.inf
        self.ref: FloatArray | None = None
        self.guard = np.full(self.n, np.inf)
        self.min_guard = np.inf
        self.entry_prompt = np.zeros(0, np.intp)
        self.entry_col = np.zeros(0, np.intp)
        self.screens = 0
        self.screened_prompts = 0
        self.buckets: list[_Bucket] = []
        self.dense_rows = 0
        self.dense_flat = np.zeros(0, np.intp)
        self.wide_prompts = np.zeros(0, np.intp)
        self.wide_vals = np.zeros((self.k, 0))
        self.decided_prompts = np.zeros(0, np.intp)
        self.decided_cols = np.zeros(0, np.intp)
        self.decided_counts = np.zeros(self.k)
        self.decided_score_sum = 0.0

    # -- screening -------------------------------------------------------------------------

    def _ensure(self, alpha: FloatArray) -> None:
        if self.ref is None:
            self._rescreen(alpha, None)
            return
        delta = alpha - self.ref
        spread = float(delta.max() - delta.min())
        if spread <= self.min_guard - self.margin_t * self.t:
            return
        # screen again every prompt whose guard fell below the full margin, so that the
        # prices may spread by 2·REBASE_BUDGET again before the next screen
        left = self.guard - spread
        stale = np.flatnonzero(left < self.margin)
        self.guard = left
        # gathering scattered prompts costs about 3× a contiguous pass over them
        self._rescreen(alpha, stale if len(stale) < self.n // 3 else None)

    def _rescreen(self, alpha: FloatArray, idx: IntArray | None) -> None:
        prompts, cols, guards = _screen(self.scores_t, alpha, idx, self.margin)
        if idx is None:
            self.entry_prompt, self.entry_col = prompts, cols
            self.guard = guards
        else:
            stale = np.zeros(self.n, dtype=bool)
            stale[idx] = True
            keep = ~stale[self.entry_prompt]
            self.entry_prompt = np.concatenate((self.entry_prompt[keep], prompts))
            self.entry_col = np.concatenate((self.entry_col[keep], cols))
            self.guard[idx] = guards
        self.min_guard = float(self.guard.min(initial=np.inf))
        self.ref = alpha.copy()
        self.screens += 1
        self.screened_prompts += self.n if idx is None else len(idx)
        self._build()

    def adopt(self, other: Demand) -> None:
        """Take over ``other``'s screen (same scores; a warmer temperature, say) instead of
        screening again: its guards are relative to its reference prices, so they stay
        valid here; only the evaluation structure is rebuilt for this temperature."""
        if other.scores_t is not self.scores_t or other.ref is None or not np.isfinite(
                self.margin):
            return
        self.ref, self.guard, self.min_guard = other.ref.copy(), other.guard.copy(), other.min_guard
        self.entry_prompt, self.entry_col = other.entry_prompt, other.entry_col
        self._build()

    def _build(self) -> None:
        """Split the prompts by their number of candidates: decided (one; closed form),
        narrow buckets (softmax and pairwise Hessian) and wide rows (all K models, dense)."""
        count = np.bincount(self.entry_prompt, minlength=self.n)
        size = count[self.entry_prompt]
        order = np.argsort(size * self.n + self.entry_prompt)  # by size, each prompt together
        prompts, cols, size = self.entry_prompt[order], self.entry_col[order], size[order]
        narrow = max(min(WIDE_ROW, self.k - 1), 1)  # rows of all K models are dense
        ends = np.searchsorted(size, np.arange(1, narrow + 1), side="right")  # of c = 1…narrow
        self.decided_prompts, self.decided_cols = prompts[: ends[0]], cols[: ends[0]]
        self.decided_counts = np.bincount(self.decided_cols, minlength=self.k).astype(float)
        self.decided_score_sum = float(
            self.scores_t[self.decided_cols, self.decided_prompts].sum())
        self.buckets = []
        self.dense_rows = 0
        for c in range(2, narrow + 1):
            lo, hi = int(ends[c - 2]), int(ends[c - 1])
            if hi > lo:
                bucket = _Bucket.of(cols[lo:hi].reshape(-1, c).T.copy(), prompts[lo:hi:c],
                                    self.scores_t, self.t, self.k, self.dense_rows)
                self.buckets.append(bucket)
                self.dense_rows += 0 if bucket.dense_flat is None else (hi - lo) // c
        dense = [b.dense_flat for b in self.buckets if b.dense_flat is not None]
        self.dense_flat = np.concatenate(dense) if dense else np.zeros(0, np.intp)
        wide = prompts[ends[-1]:]
        self.wide_prompts = wide[np.flatnonzero(np.diff(wide, prepend=-1))]
        # C order: reductions over models then run along contiguous rows
        self.wide_vals = np.ascontiguousarray(self.scores_t[:, self.wide_prompts]) / self.t

    # -- evaluation ------------------------------------------------------------------------

    @staticmethod
    def _softmax(z: FloatArray) -> tuple[FloatArray, float]:
        """Column-wise softmax of ``z`` (c × n, in place) and Σ_columns logsumexp."""
        zmax = np.maximum.reduce(z, axis=0)
        z -= zmax
        # e^-700 ≈ 1e-304 is as good as 0 here, and exp of far smaller numbers (models many
        # temperatures behind the best) leaves numpy's fast path and costs ~15× as much
        np.maximum(z, -700.0, out=z)
        np.exp(z, out=z)
        total = np.add.reduce(z, axis=0)
        z /= total
        return z, float(zmax.sum() + np.log(total).sum())

    def evaluate(self, alpha: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        """(mean t·logsumexp, demand (K,), Hessian of the demand side) at ``alpha``."""
        self._ensure(alpha)
        a_t = alpha / self.t
        lse, demand, hess = self._narrow_terms(a_t)
        demand += self.decided_counts
        if self.wide_prompts.size:
            p, part = self._softmax(self.wide_vals - a_t[:, None])
            lse += part
            row = np.add.reduce(p, axis=1)
            demand += row
            hess += np.diag(row) - p @ p.T
        # t·logsumexp of a decided prompt is its best score minus that model's price
        value = (self.t * lse + self.decided_score_sum
                 - float(self.decided_counts @ alpha)) / self.n
        return value, demand / self.n, hess / (self.t * self.n)

    def _narrow_terms(self, a_t: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        """Σ logsumexp, Σ shares (K) and Σ diag(p) − p·pᵀ (K × K) over the narrow buckets."""
        k = self.k
        lse, demand, diag = 0.0, np.zeros(k), np.zeros(k)
        keys, weights, dense_p = [], [], []
        for b in self.buckets:
            p, part = self._softmax(b.vals - a_t[b.cols])
            lse += part
            flat_cols, flat_p = b.cols.ravel(), p.ravel()
            demand += np.bincount(flat_cols, weights=flat_p, minlength=k)
            diag += np.bincount(flat_cols, weights=flat_p * (1.0 - flat_p), minlength=k)
            if b.dense_flat is None:
                keys.append(b.pair_key)
                weights.append((p[b.pair_a] * p[b.pair_b]).ravel())
            else:
                dense_p.append(flat_p)
        off = np.bincount(np.concatenate(keys), weights=np.concatenate(weights),
                          minlength=k * k).reshape(k, k) if keys else np.zeros((k, k))
        hess = np.diag(diag) - off - off.T
        if dense_p:  # off-diagonal Σ p_a·p_b of the wider buckets by one matrix product
            block = np.zeros(self.dense_rows * k)
            block[self.dense_flat] = np.concatenate(dense_p)
            rows = block.reshape(self.dense_rows, k)
            gram = rows.T @ rows
            hess -= gram - np.diag(np.diag(gram))
        return lse, demand, hess

    def routing(self, alpha: FloatArray) -> tuple[FloatArray, FloatArray, float]:
        """The routing at ``alpha`` (argmax of score − α, ties split by the softmax): shares
        (N × K), the requests each model gets (K, summed over prompts) and Σ score · share."""
        self._ensure(alpha)
        a_t = alpha / self.t
        out = np.zeros((self.n, self.k))
        out[self.decided_prompts, self.decided_cols] = 1.0
        counts = self.decided_counts.copy()
        score = self.decided_score_sum
        for b in self.buckets:
            p = self._softmax(b.vals - a_t[b.cols])[0]
            out[b.prompts[None, :], b.cols] = p
            counts += np.bincount(b.cols.ravel(), weights=p.ravel(), minlength=self.k)
            score += self.t * float(np.einsum("ij,ij->", p, b.vals))
        if self.wide_prompts.size:
            p = self._softmax(self.wide_vals - a_t[:, None])[0]
            out[self.wide_prompts] = p.T
            counts += np.add.reduce(p, axis=1)
            score += self.t * float(np.einsum("ij,ij->", p, self.wide_vals))
        return out, counts, score

    def shares(self, alpha: FloatArray) -> FloatArray:
        """The routing (N × K) at ``alpha``: argmax of score − α, ties split by the softmax."""
        return self.routing(alpha)[0]
