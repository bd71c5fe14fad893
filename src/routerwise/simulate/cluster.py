"""Simulate stage — the discrete-event simulation of a whole cluster, request by request.

Inputs: the placed instances (each with its engine model: step times in ms, KV capacity in
tokens, the GPU ids it runs on), the requests (arrival time in s, the model the router chose,
prompt and output lengths in tokens), an interference model and an end time (s). Output: per
request its instance, TTFT, TPOT and end-to-end latency (ms; NaN when it had not finished by
the end), and per instance its busy time (ms), preemptions and mean interference slowdown.

One event loop in time order over two kinds of events: an arrival (the request goes to the
replica of its model with the fewest outstanding requests at that instant; ties rotate) and
the next step of an engine (``profiles.engine_sim.Engine``, the same engine model as the
estimator's). An engine's decode jump ends by the next arrival its model may receive and, when
it shares a GPU with others, by their next step boundary, so co-runners see each other's
activity step by step; each step is slowed by the interference model
(``profiles/interference.py``) from the co-runners busy at its start.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from routerwise.profiles.engine_sim import Engine, EngineConfig, StepModel
from routerwise.profiles.interference import ContendedSteps, InterferenceModel
from routerwise.profiles.mps import MpsModel
from routerwise.spec.core import FloatArray, readonly

IntArray = NDArray[np.int64]
Progress = Callable[[float], None]
_PROGRESS_EVERY = 20_000


@dataclass(frozen=True, slots=True)
class InstanceModel:
    """One placed instance: which model it serves, where, and its engine model."""

    model_index: int
    gpu_ids: tuple[int, ...]
    kv_capacity_tokens: int
    steps: StepModel
    ridge_tokens: float
    mps: MpsModel
    config: EngineConfig = EngineConfig()  # noqa: RUF009 (frozen)


@dataclass(frozen=True, slots=True)
class Requests:
    """Requests in arrival order (s) with their routed model and lengths (tokens)."""

    arrival_s: FloatArray
    model: IntArray
    input_tokens: IntArray
    output_tokens: IntArray


@dataclass(frozen=True, slots=True)
class ClusterResult:
    instance: IntArray  # (n,) instance that served each request
    ttft_ms: FloatArray  # NaN: no first token by the end
    tpot_ms: FloatArray  # NaN: one-token output or unfinished
    e2e_ms: FloatArray  # NaN: unfinished
    busy_ms: FloatArray  # per instance
    preemptions: IntArray  # per instance
    slowdown: FloatArray  # per instance: busy time / busy time without interference
    end_s: float  # simulated time reached
    steps: int  # engine steps simulated


class _Cluster:
    """State of one run (private: the API is :func:`run_cluster`)."""

    def __init__(self, instances: list[InstanceModel], requests: Requests,
                 interference: InterferenceModel, num_models: int) -> None:
        self.req = requests
        self.contended: list[ContendedSteps | None] = []
        self.engines: list[Engine] = []
        self.co: list[list[list[int]]] = []  # per instance, per GPU: the other instances there
        for i, inst in enumerate(instances):
            others = [[j for j, o in enumerate(instances) if j != i and g in o.gpu_ids]
                      for g in inst.gpu_ids]
            self.co.append([o for o in others if o])
            wrap = None
            if interference.active and self.co[i]:
                wrap = ContendedSteps(inst.steps, inst.ridge_tokens, inst.mps, interference)
            self.contended.append(wrap)
            self.engines.append(Engine(inst.kv_capacity_tokens, inst.config, wrap or inst.steps))
        self.model_of = [inst.model_index for inst in instances]
        self.replicas = [[i for i, inst in enumerate(instances) if inst.model_index == m]
                         for m in range(num_models)]
        self.rotate = [0] * num_models
        times = np.asarray(requests.arrival_s)
        self.model_times: list[list[float]] = [
            [*times[requests.model == m].tolist(), math.inf] for m in range(num_models)]
        self.model_next = [0] * num_models
        self.rids: list[list[int]] = [[] for _ in instances]
        self.extra_ms = [0.0] * len(instances)
        self.heap: list[tuple[float, int]] = []
        self.queued = [False] * len(instances)
        self.steps = 0

    # -- arrivals ----------------------------------------------------------------------
    def _outstanding_at(self, i: int, t_s: float) -> int:
        eng = self.engines[i]
        return eng.outstanding() + (eng.completed_last_step if eng.t > t_s else 0)

    def _replica(self, m: int, t_s: float) -> int:
        group = self.replicas[m]
        if len(group) == 1:
            return group[0]
        start = self.rotate[m]
        best, best_n = -1, 1 << 62
        for k in range(len(group)):
            pos = (start + k) % len(group)
            n = self._outstanding_at(group[pos], t_s)
            if n < best_n:
                best, best_n = pos, n
        self.rotate[m] = (best + 1) % len(group)
        return group[best]

    def arrive(self, r: int) -> None:
        t = float(self.req.arrival_s[r])
        m = int(self.req.model[r])
        self.model_next[m] += 1
        i = self._replica(m, t)
        self.engines[i].submit(t, int(self.req.input_tokens[r]), int(self.req.output_tokens[r]))
        self.rids[i].append(r)
        if not self.queued[i]:
            self.queued[i] = True
            heapq.heappush(self.heap, (self.engines[i].next_step_s(), i))

    # -- steps -------------------------------------------------------------------------
    def _next_arrival(self, m: int) -> float:
        return self.model_times[m][self.model_next[m]]

    def _couple(self, i: int, wrap: ContendedSteps) -> float:
        """Set co-runner loads on ``wrap``; return the time by which the step must end."""
        until = math.inf
        best_bw = best_c = 0.0
        for others in self.co[i]:
            bw = c = 0.0
            for j in others:
                eng = self.engines[j]
                if eng.has_work():
                    until = min(until, eng.next_step_s())
                    wj = self.contended[j]
                    f = wj.own_fraction if wj is not None else 0.0
                    bw += 1.0 - f
                    c += f
                else:
                    until = min(until, self._next_arrival(self.model_of[j]))
            if bw > best_bw or (bw == best_bw and c > best_c):
                best_bw, best_c = bw, c
        wrap.co_bandwidth, wrap.co_compute = best_bw, best_c
        return until

    def step(self, i: int) -> None:
        eng = self.engines[i]
        wrap = self.contended[i]
        horizon = self._next_arrival(self.model_of[i])
        self.steps += 1
        if wrap is None:
            eng.step(horizon)
        else:
            until = self._couple(i, wrap)
            before = eng.busy_ms
            eng.step(horizon, until)
            self.extra_ms[i] += (eng.busy_ms - before) * (1.0 - 1.0 / wrap.factor)
        if eng.has_work():
            heapq.heappush(self.heap, (eng.next_step_s(), i))
        else:
            self.queued[i] = False

    def run(self, end_s: float, progress: Progress | None) -> float:
        times = self.req.arrival_s
        n = len(times)
        r = 0
        heap = self.heap
        count = 0
        now = 0.0
        while True:
            ta = float(times[r]) if r < n else math.inf
            ts = heap[0][0] if heap else math.inf
            if ta <= ts and ta < math.inf:
                self.arrive(r)
                r += 1
                now = ta
            elif heap and ts <= end_s:
                now, i = heapq.heappop(heap)
                self.step(i)
            else:
                return now
            count += 1
            if progress is not None and count % _PROGRESS_EVERY == 0:
                progress(now)


def run_cluster(instances: list[InstanceModel], requests: Requests, num_models: int,
                interference: InterferenceModel, end_s: float,
                progress: Progress | None = None) -> ClusterResult:
    """Serve ``requests`` on ``instances`` until every request finished or ``end_s``."""
    sim = _Cluster(instances, requests, interference, num_models)
    reached = max([sim.run(end_s, progress)] + [e.t for e in sim.engines])
    n = len(requests.arrival_s)
    served = np.full(n, -1, dtype=np.int64)
    ttft, e2e = np.full(n, np.nan), np.full(n, np.nan)
    for i, eng in enumerate(sim.engines):
        ids = np.asarray(sim.rids[i], dtype=np.int64)
        served[ids] = i
        ttft[ids] = eng.ttft
        e2e[ids] = eng.e2e
    osl = np.asarray(requests.output_tokens, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(osl > 1, (e2e - ttft) / (osl - 1), np.nan)
    busy = np.array([e.busy_ms for e in sim.engines])
    extra = np.array(sim.extra_ms)
    with np.errstate(invalid="ignore", divide="ignore"):
        slowdown = np.where(busy > 0, busy / np.maximum(busy - extra, 1e-12), 1.0)
    return ClusterResult(
        instance=served, ttft_ms=readonly(ttft), tpot_ms=readonly(tpot), e2e_ms=readonly(e2e),
        busy_ms=readonly(busy),
        preemptions=np.array([e.preemptions for e in sim.engines], dtype=np.int64),
        slowdown=readonly(slowdown), end_s=reached, steps=sim.steps,
    )
