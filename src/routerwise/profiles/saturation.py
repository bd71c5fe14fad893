"""When to stop a rate early: the server is clearly saturated (its queue grows without bound).

The backlog is the number of requests sent that have not yet received their first token
(nor failed): those waiting in the server's queue or in prefill. Below capacity it stays
bounded (an M/D/1 queue at 70% load holds ~1 request on average); past capacity it grows
by ``(offered − served rate) × t``. The detector samples the backlog once a window (at least
``min_window_s`` and ``min_arrivals`` arrivals long) and calls the server saturated when,
over the last ``windows`` windows, the backlog grew in all but at most one, grew in total
by at least ``growth_fraction`` of the requests that arrived meanwhile (the server served
less than ``1 − growth_fraction`` of the offered rate), and is at least ``min_backlog``.
Pure: it sees only the times and counts it is given.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SaturationRule:
    """Thresholds of the early stop (see the module docstring)."""

    min_window_s: float = 1.0
    min_arrivals: int = 10
    windows: int = 5
    growth_fraction: float = 0.25
    min_backlog: int = 16

    def window_s(self, rate_rps: float) -> float:
        return max(self.min_window_s, self.min_arrivals / rate_rps)


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float
    arrived: int
    backlog: int


class SaturationDetector:
    """Feed ``observe`` as the rate runs; it returns a reason once the queue runs away."""

    def __init__(self, rule: SaturationRule, rate_rps: float) -> None:
        self.rule = rule
        self.window_s = rule.window_s(rate_rps)
        self._samples: deque[Sample] = deque(maxlen=rule.windows + 1)
        self._next_s = self.window_s

    def observe(self, t_s: float, arrived: int, started: int) -> str | None:
        """``arrived`` sent so far, ``started`` of them answered (first token or failure)."""
        if t_s < self._next_s:
            return None
        self._next_s = t_s + self.window_s
        self._samples.append(Sample(t_s, arrived, arrived - started))
        return self._verdict()

    def _verdict(self) -> str | None:
        rule, s = self.rule, list(self._samples)
        if len(s) <= rule.windows:
            return None
        growths = [b.backlog - a.backlog for a, b in itertools.pairwise(s)]
        grew = sum(g > 0 for g in growths)
        total = s[-1].backlog - s[0].backlog
        arrivals = s[-1].arrived - s[0].arrived
        if grew < rule.windows - 1 or s[-1].backlog < rule.min_backlog or arrivals <= 0:
            return None
        if total < rule.growth_fraction * arrivals:
            return None
        span = s[-1].t_s - s[0].t_s
        served = (arrivals - total) / span if span > 0 else math.nan
        offered = arrivals / span if span > 0 else math.nan
        return (f"backlog grew from {s[0].backlog} to {s[-1].backlog} requests in "
                f"{span:.1f} s: served {served:.3g} of {offered:.3g} req/s offered")
