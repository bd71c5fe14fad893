"""Arrival processes for the load generator: when each request of a rate is sent.

Open loop: a request's send time is fixed in advance by the process, never by when an
earlier request finished. Pluggable (docs/architecture.md §6.5): the ``ArrivalProcess``
protocol and the explicit ``ARRIVALS`` registry, selected on the command line as

* ``poisson`` — exponential gaps (the planner's and the M/M/1 / M/D/1 assumption);
* ``gamma:CV`` — gamma gaps with coefficient of variation ``CV`` (shape ``1/CV²``): ``CV`` > 1
  is burstier than Poisson, < 1 smoother, ``gamma:1`` is Poisson. vLLM's ``--burstiness B``
  is ``gamma:1/sqrt(B)``.

Offsets are in seconds from the rate's start; the first request goes at 0. The sampled gaps
are rescaled to mean 1, so ``n`` requests span exactly ``(n − 1) / rate`` seconds: a profile
point's nominal rate is the rate that was offered, not a sample's ±10% of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from routerwise.errors import InputError
from routerwise.spec.core import FloatArray, readonly


class ArrivalProcess(Protocol):
    """Unit-mean inter-arrival gaps, scaled to a rate."""

    def gaps(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n`` positive gaps with mean 1 (multiply by 1/rate for seconds)."""
        ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Poisson:
    """Exponential gaps."""

    def gaps(self, n: int, rng: np.random.Generator) -> FloatArray:
        return readonly(rng.exponential(1.0, n))

    def describe(self) -> str:
        return "poisson"


@dataclass(frozen=True, slots=True)
class Gamma:
    """Gamma gaps with coefficient of variation ``cv``."""

    cv: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cv) and self.cv > 0):
            raise InputError(f"gamma:CV: CV={self.cv!r} must be a positive, finite number")

    def gaps(self, n: int, rng: np.random.Generator) -> FloatArray:
        shape = 1.0 / self.cv**2
        return readonly(rng.gamma(shape, 1.0 / shape, n))

    def describe(self) -> str:
        return f"gamma:{self.cv:g}"


def _poisson(arg: str | None) -> ArrivalProcess:
    if arg:
        raise InputError(f"poisson takes no parameter (got poisson:{arg})")
    return Poisson()


def _gamma(arg: str | None) -> ArrivalProcess:
    if not arg:
        raise InputError("gamma needs its coefficient of variation: gamma:CV, e.g. gamma:2")
    try:
        return Gamma(float(arg))
    except ValueError:
        raise InputError(f"gamma:{arg}: CV must be a number") from None


#: name → parser of the text after ``name:``.
ARRIVALS: dict[str, Callable[[str | None], ArrivalProcess]] = {
    "poisson": _poisson,
    "gamma": _gamma,
}


def parse_arrival(text: str) -> ArrivalProcess:
    """``poisson`` or ``gamma:CV``; an unknown name lists the known ones."""
    name, _, arg = text.strip().partition(":")
    parser = ARRIVALS.get(name.lower())
    if parser is None:
        raise InputError(f"--arrival {text!r}: unknown process; known: {', '.join(ARRIVALS)} "
                         "(gamma:CV)")
    return parser(arg or None)


def arrival_offsets_s(process: ArrivalProcess, n: int, rate_rps: float,
                      rng: np.random.Generator) -> FloatArray:
    """Send times (s from the start) of ``n`` requests at ``rate_rps``; the first is at 0."""
    if not (math.isfinite(rate_rps) and rate_rps > 0):
        raise InputError(f"rate {rate_rps!r} must be a positive, finite number of requests/s")
    if n < 1:
        return readonly(np.zeros(0))
    gaps = np.asarray(process.gaps(n, rng), dtype=np.float64)[1:]
    if gaps.size and gaps.mean() > 0:
        gaps = gaps / gaps.mean()  # the sample's rate is exactly the rate asked for
    times = np.concatenate(([0.0], np.cumsum(gaps))) / rate_rps
    return readonly(times)
