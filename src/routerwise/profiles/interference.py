"""Stage 1 — interference between engine instances that share a GPU under MPS (the model).

MPS partitions SMs, not memory bandwidth, L2 or the memory controllers, so two instances
that are busy at once slow each other's bandwidth-bound work (decode: weights and KV reads).
A step of instance A whose compute-bound fraction is ``f_A`` (``MpsModel.compute_fraction``
of its tokens: decode steps ≈ bandwidth-bound, large prefill chunks ≈ compute-bound) takes ::

    t = t_alone · (1 + bandwidth · (1 − f_A) · Σ_j (1 − f_j) + compute · f_A · Σ_j f_j)

where ``j`` runs over the *busy* co-runners on A's most contended GPU, each with the compute
fraction of its current step (``BandwidthContention``; every parameter is a field; where the
default comes from: ``simulate/interference.py``).

One model, two users: the cluster simulator charges it step by step from the co-runners
actually busy (``ContendedSteps`` with ``co_*`` set before each step); the profile estimator
charges it to every shape below a whole GPU under an explicit assumption
(``AssumedCoRunners``: the rest of the GPU is held by ``co_runners`` busy co-runners whose
steps are as bandwidth-bound as this one's), so a plan's curves already carry the contention
its co-located instances will meet.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Protocol

from routerwise.errors import InputError
from routerwise.profiles.engine_sim import StepModel
from routerwise.profiles.mps import MpsModel


class InterferenceModel(Protocol):
    """Slowdown of one step from the busy co-runners on the same GPU."""

    @property
    def active(self) -> bool:
        """False when the model never slows anything (the simulator skips the bookkeeping)."""
        ...

    def factor(self, own_compute_fraction: float, co_bandwidth: float,
               co_compute: float) -> float:
        """Step-time multiplier ≥ 1; ``co_*`` are sums over busy co-runners of their
        bandwidth-bound (1 − f) and compute-bound (f) fractions."""
        ...

    def params(self) -> dict[str, float]: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class NoInterference:
    """Co-located instances do not affect each other (the planner's assumption)."""

    @property
    def active(self) -> bool:
        return False

    def factor(self, own_compute_fraction: float, co_bandwidth: float,
               co_compute: float) -> float:
        return 1.0

    def params(self) -> dict[str, float]:
        return {}

    def describe(self) -> str:
        return "none"


@dataclass(frozen=True, slots=True)
class BandwidthContention:
    """Memory-bandwidth contention between MPS co-runners (module docstring)."""

    bandwidth: float = 0.28
    compute: float = 0.0

    def __post_init__(self) -> None:
        for name in ("bandwidth", "compute"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"interference {name}={value!r} must be a finite number >= 0")

    @property
    def active(self) -> bool:
        return self.bandwidth > 0 or self.compute > 0

    def factor(self, own_compute_fraction: float, co_bandwidth: float,
               co_compute: float) -> float:
        f = own_compute_fraction
        return 1.0 + self.bandwidth * (1.0 - f) * co_bandwidth + self.compute * f * co_compute

    def params(self) -> dict[str, float]:
        return asdict(self)

    def describe(self) -> str:
        return f"bandwidth (bandwidth={self.bandwidth:g}, compute={self.compute:g})"


DEFAULT_INTERFERENCE = BandwidthContention()


class ContendedSteps:
    """A step model slowed by the interference of busy co-runners (``co_bandwidth`` and
    ``co_compute`` set before each step by the cluster simulator)."""

    __slots__ = ("base", "co_bandwidth", "co_compute", "factor", "interference", "mps",
                 "own_fraction", "ridge")

    def __init__(self, base: StepModel, ridge: float, mps: MpsModel,
                 interference: InterferenceModel) -> None:
        self.base, self.ridge, self.mps, self.interference = base, ridge, mps, interference
        self.co_bandwidth = self.co_compute = 0.0
        self.factor = 1.0
        self.own_fraction = 0.0

    def _scaled(self, t_ms: float, tokens: int) -> float:
        f = self.mps.compute_fraction(tokens, self.ridge)
        self.own_fraction = f
        self.factor = self.interference.factor(f, self.co_bandwidth, self.co_compute)
        return t_ms * self.factor

    def decode_ms(self, seqs: int, kv: int) -> float:
        return self._scaled(self.base.decode_ms(seqs, kv), seqs)

    def mixed_ms(self, chunks: list[tuple[int, int]], seqs: int, kv: int) -> float:
        tokens = seqs + sum(c for c, _ in chunks)
        return self._scaled(self.base.mixed_ms(chunks, seqs, kv), tokens)


class AssumedCoRunners:
    """The estimator's assumption for a shape below a whole GPU: every step runs next to
    ``co_runners`` busy co-runners whose steps have the same compute fraction as its own."""

    def __init__(self, base: StepModel, ridge: float, mps: MpsModel,
                 interference: InterferenceModel, co_runners: float) -> None:
        self._base, self._ridge, self._mps = base, ridge, mps
        self._interference, self._co = interference, co_runners

    def _scaled(self, t_ms: float, tokens: int) -> float:
        f = self._mps.compute_fraction(tokens, self._ridge)
        return t_ms * self._interference.factor(f, self._co * (1.0 - f), self._co * f)

    def decode_ms(self, seqs: int, kv: int) -> float:
        return self._scaled(self._base.decode_ms(seqs, kv), seqs)

    def mixed_ms(self, chunks: list[tuple[int, int]], seqs: int, kv: int) -> float:
        tokens = seqs + sum(c for c, _ in chunks)
        return self._scaled(self._base.mixed_ms(chunks, seqs, kv), tokens)
