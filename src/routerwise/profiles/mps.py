"""Stage 1 — how an MPS compute share slows one engine step.

Inputs: the share of SMs in (0, 1], the tokens processed in the step, and the GPU's ridge
point (tokens at which a bf16 GEMM turns compute-bound). Output: a slowdown factor ≥ 1 that
multiplies the step time measured at the full GPU.

Model: a step is a mix of compute-bound work (fraction ``f_c``) and bandwidth-bound work
(``1 − f_c``). Compute-bound work runs ``1/share`` times longer with fewer SMs; bandwidth-
bound work needs only enough SMs to saturate HBM, so it is unaffected above
``bandwidth_saturation_share`` and scales like ``saturation/share`` below it::

    slowdown = f_c / share + (1 − f_c) · max(1, s_bw / share)
    f_c      = T / (T + ridge_scale · ridge_tokens)

with ``T`` the tokens of the step (decode steps have small ``T`` → mostly bandwidth-bound;
large prefill chunks have large ``T`` → compute-bound). The parameters are assumptions
(HBM is commonly saturated by 40–60% of the SMs) meant to be re-fitted from measured
MPS points; they all live in ``MpsModel``.
"""

from __future__ import annotations

from dataclasses import dataclass

from routerwise.errors import InputError


@dataclass(frozen=True, slots=True)
class MpsModel:
    """Parameters of the MPS slowdown model (re-fit these from measured points)."""

    bandwidth_saturation_share: float = 0.5
    ridge_scale: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.bandwidth_saturation_share <= 1:
            raise InputError(f"{self.bandwidth_saturation_share=} must be in (0, 1]")
        if not self.ridge_scale > 0:
            raise InputError(f"{self.ridge_scale=} must be > 0")

    def compute_fraction(self, tokens: int, ridge_tokens: float) -> float:
        """Fraction of the step's time that is compute-bound."""
        return tokens / (tokens + self.ridge_scale * ridge_tokens)

    def slowdown(self, share: float, tokens: int, ridge_tokens: float) -> float:
        """Factor (≥ 1) by which a step of ``tokens`` tokens slows at ``share`` of the SMs."""
        if share >= 1.0:
            return 1.0
        f_c = self.compute_fraction(tokens, ridge_tokens)
        bw = max(1.0, self.bandwidth_saturation_share / share)
        return f_c / share + (1.0 - f_c) * bw


DEFAULT_MPS = MpsModel()
