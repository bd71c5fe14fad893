"""Simulate stage — arrival processes: when requests reach the gateway.

Inputs: a total rate (requests/s; ``None`` for a trace means "as recorded"), a duration (s)
and a ``numpy.random.Generator``. Output: sorted arrival times in seconds in ``[0, duration)``.

Pluggable (docs/architecture.md §6.5): an ``ArrivalProcess`` protocol and the explicit
``ARRIVAL_PROCESSES`` registry of parsers, selected on the command line as

* ``poisson`` — exponential gaps (the planner's assumption);
* ``gamma:CV`` — a renewal process with gamma gaps of coefficient of variation ``CV``
  (``CV`` > 1 is burstier than Poisson, < 1 smoother; ``gamma:1`` is Poisson);
* ``trace:FILE`` — recorded arrival times: a CSV with an ``arrival_s`` column, or a text file
  with one time (s) per line. Times must be finite, ≥ 0 and non-decreasing; they are shifted
  to start at 0, rescaled to ``--rate-rps`` when it is given, and cut at the duration.

The gap distributions are the load generator's (``profiles/arrivals.py``: one Poisson and
one gamma implementation for the profiler and the simulator); this module lays them out
over a duration and adds traces.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from routerwise.errors import InputError
from routerwise.profiles import arrivals as gaps
from routerwise.spec.core import FloatArray, readonly

TRACE_COLUMN = "arrival_s"


class ArrivalProcess(Protocol):
    """Arrival times of requests at the gateway."""

    def times_s(self, rate_rps: float | None, duration_s: float,
                rng: np.random.Generator) -> FloatArray:
        """Sorted arrival times (s) in ``[0, duration_s)``; ``rate_rps`` None: the default."""
        ...

    def describe(self) -> str: ...


def _renewal(gaps: Callable[[int], FloatArray], rate_rps: float, duration_s: float
             ) -> FloatArray:
    """Arrivals from unit-mean gaps, drawn in blocks until the duration is covered."""
    expected = rate_rps * duration_s
    block = int(expected + 6 * math.sqrt(expected + 1) + 16)
    parts: list[FloatArray] = []
    last = 0.0
    while last < duration_s:
        times = last + np.cumsum(gaps(block)) / rate_rps
        parts.append(times)
        last = float(times[-1])
    times = np.concatenate(parts)
    return readonly(times[times < duration_s])


def _check_rate(rate_rps: float | None, what: str) -> float:
    if rate_rps is None or not (math.isfinite(rate_rps) and rate_rps > 0):
        raise InputError(f"{what} arrivals need a positive, finite rate (req/s); got {rate_rps!r}")
    return rate_rps


@dataclass(frozen=True, slots=True)
class Poisson:
    """Exponential inter-arrival gaps."""

    def times_s(self, rate_rps: float | None, duration_s: float,
                rng: np.random.Generator) -> FloatArray:
        rate = _check_rate(rate_rps, "poisson")
        return _renewal(lambda n: gaps.Poisson().gaps(n, rng), rate, duration_s)

    def describe(self) -> str:
        return "poisson"


@dataclass(frozen=True, slots=True)
class GammaRenewal:
    """Gamma inter-arrival gaps with coefficient of variation ``cv`` (shape 1/cv²)."""

    cv: float

    def __post_init__(self) -> None:
        gaps.Gamma(self.cv)  # validates CV

    def times_s(self, rate_rps: float | None, duration_s: float,
                rng: np.random.Generator) -> FloatArray:
        rate = _check_rate(rate_rps, "gamma")
        process = gaps.Gamma(self.cv)
        return _renewal(lambda n: process.gaps(n, rng), rate, duration_s)

    def describe(self) -> str:
        return f"gamma:{self.cv:g}"


@dataclass(frozen=True, slots=True)
class Trace:
    """Recorded arrival times (s from the first arrival), replayed."""

    offsets_s: FloatArray
    source: str

    def __post_init__(self) -> None:
        if len(self.offsets_s) == 0:
            raise InputError(f"{self.source}: the trace has no arrivals")

    def recorded_rate_rps(self) -> float:
        span = float(self.offsets_s[-1])
        return len(self.offsets_s) / span if span > 0 else math.inf

    def times_s(self, rate_rps: float | None, duration_s: float,
                rng: np.random.Generator) -> FloatArray:
        times = np.asarray(self.offsets_s, dtype=np.float64)
        if rate_rps is not None:
            rate = _check_rate(rate_rps, "trace")
            recorded = self.recorded_rate_rps()
            if not math.isfinite(recorded):
                raise InputError(f"{self.source}: every arrival is at one instant; the trace "
                                 "cannot be rescaled to --rate-rps")
            times = times * (recorded / rate)
        return readonly(times[times < duration_s])

    def describe(self) -> str:
        return f"trace:{self.source}"


def _trace_rows(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the arrival column, header skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"trace {path}: cannot be read: {exc}") from exc
    rows = [(i + 1, r) for i, r in enumerate(csv.reader(text.splitlines())) if any(
        c.strip() for c in r)]
    if not rows:
        raise InputError(f"trace {path}: the file is empty")
    header = [c.strip().lower() for c in rows[0][1]]
    if TRACE_COLUMN in header:
        col = header.index(TRACE_COLUMN)
        rows = rows[1:]
    elif len(header) == 1 and _is_number(header[0]):
        col = 0
    else:
        raise InputError(f"trace {path}: line 1: expected a header with an {TRACE_COLUMN!r} "
                         f"column (or one number per line); got {rows[0][1]}")
    out = []
    for line, cells in rows:
        if col >= len(cells):
            raise InputError(f"trace {path}: line {line}: no {TRACE_COLUMN} value")
        out.append((line, cells[col].strip()))
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_trace(path: Path) -> Trace:
    """Read a trace file; a bad row is an ``InputError`` naming the file and the line."""
    values: list[float] = []
    for line, cell in _trace_rows(path):
        try:
            value = float(cell)
        except ValueError:
            raise InputError(f"trace {path}: line {line}: {cell!r} is not a number of "
                             "seconds") from None
        if not math.isfinite(value) or value < 0:
            raise InputError(f"trace {path}: line {line}: {cell} must be a finite time >= 0 s")
        if values and value < values[-1]:
            raise InputError(f"trace {path}: line {line}: {cell} s is before the previous "
                             f"arrival {values[-1]:g} s; times must not decrease")
        values.append(value)
    if not values:
        raise InputError(f"trace {path}: no arrivals after the header")
    return Trace(readonly(np.asarray(values) - values[0]), str(path))


def _poisson(arg: str) -> ArrivalProcess:
    if arg:
        raise InputError(f"--arrivals poisson takes no parameter (got poisson:{arg})")
    return Poisson()


def _gamma(arg: str) -> ArrivalProcess:
    try:
        cv = float(arg)
    except ValueError:
        raise InputError(f"--arrivals gamma:CV: CV {arg!r} is not a number") from None
    return GammaRenewal(cv)


def _trace(arg: str) -> ArrivalProcess:
    if not arg:
        raise InputError("--arrivals trace:FILE needs a file")
    path = Path(arg)
    if not path.is_file():
        raise InputError(f"--arrivals trace:{arg}: file does not exist")
    return load_trace(path)


#: Arrival process name → parser of the text after ``NAME:``.
ARRIVAL_PROCESSES: dict[str, Callable[[str], ArrivalProcess]] = {
    "poisson": _poisson,
    "gamma": _gamma,
    "trace": _trace,
}


def parse_arrivals(text: str) -> ArrivalProcess:
    """``poisson``, ``gamma:CV`` or ``trace:FILE`` → an arrival process."""
    name, _, arg = text.partition(":")
    parser = ARRIVAL_PROCESSES.get(name.strip().lower())
    if parser is None:
        raise InputError(f"--arrivals {text!r}: unknown process; use one of "
                         "poisson, gamma:CV, trace:FILE")
    return parser(arg.strip())
