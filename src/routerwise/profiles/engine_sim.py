"""Stage 1 — discrete-event model of one vLLM-like serving instance (the one engine model).

Inputs: requests (arrival time in s, prompt and output lengths in tokens), the instance's
KV-cache capacity (tokens), an ``EngineConfig`` and a ``StepModel`` giving step times (ms).
Outputs: per-request TTFT, TPOT and end-to-end latency (ms), throughput (requests/s) and the
mean decode batch size reached.

Scheduling follows vLLM V1 with chunked prefill: every step, each running decode gets one
token; the remaining ``max_num_batched_tokens`` go to unfinished prefills (oldest first),
then to waiting requests admitted FCFS while fewer than ``max_num_seqs`` run and their KV
fits. KV is accounted in tokens (prompt reserved at admission, one more per decoded token);
when decodes would overflow it, the most recently admitted request is preempted (its KV is
freed and it is recomputed later, as vLLM's recompute preemption does).

For speed, runs of identical decode-only steps are advanced in one jump up to the next
event (an arrival, a completion or a full KV cache); the step time of a jump uses the mean
KV length at its midpoint.

One model, three drivers: :func:`simulate` serves a known list of arrivals to completion
(the profile estimator); the cluster simulator (``routerwise.simulate``) submits requests
online to several :class:`Engine` instances and advances them step by step in time order,
bounding each decode jump by the next moment something outside the engine can change
(``horizon_s``: the next arrival it may receive; ``until_s``: a co-runner's step end);
the emulator runs one step at a time (``until_s = t``) against the wall clock.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from routerwise.errors import InfeasibleError, InputError
from routerwise.spec.core import FloatArray, readonly


class StepModel(Protocol):
    """Step times (ms) of one instance."""

    def decode_ms(self, seqs: int, kv: int) -> float: ...

    def mixed_ms(self, chunks: list[tuple[int, int]], seqs: int, kv: int) -> float: ...


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """vLLM scheduler limits (defaults: vLLM V1 online serving)."""

    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 256
    block_size_tokens: int = 16  # KV capacity is rounded down to whole blocks

    def __post_init__(self) -> None:
        for name in ("max_num_batched_tokens", "max_num_seqs", "block_size_tokens"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise InputError(f"{name}={value!r} must be a positive integer")

    def usable_kv_tokens(self, kv_capacity_tokens: int) -> int:
        """KV capacity rounded down to whole blocks."""
        return kv_capacity_tokens // self.block_size_tokens * self.block_size_tokens


@dataclass(frozen=True, slots=True)
class SimResult:
    """Per-request latencies (ms; NaN TPOT for one-token outputs) and aggregate figures."""

    ttft_ms: FloatArray
    tpot_ms: FloatArray
    e2e_ms: FloatArray
    throughput_rps: float
    mean_decode_batch: float
    preemptions: int


def check_fits(longest_tokens: int, usable_kv_tokens: int) -> None:
    """A request of ``longest_tokens`` (prompt + output) must fit the KV cache."""
    if longest_tokens > usable_kv_tokens:
        raise InfeasibleError(
            f"a request of {longest_tokens} tokens (prompt + output) exceeds the KV cache of "
            f"{usable_kv_tokens} tokens; give the model more memory (higher tp or share) or "
            "shorter requests",
            reachable={"kv_capacity_tokens": usable_kv_tokens,
                       "longest_request_tokens": longest_tokens},
        )


class Engine:
    """Mutable scheduler state of one instance, advanced one step (or decode jump) at a time.

    Times are in seconds on the engine's own clock ``t`` (the end of its last step). Request
    ids are submission indices. ``submit`` requests in non-decreasing arrival order; a
    request is seen by the scheduler at the first step that starts at or after its arrival.
    """

    def __init__(self, kv_capacity_tokens: int, config: EngineConfig, steps: StepModel) -> None:
        self.cap = config.usable_kv_tokens(kv_capacity_tokens)
        self.cfg, self.steps = config, steps
        self.arr: list[float] = []
        self.isl: list[int] = []
        self.osl: list[int] = []
        self.ttft: list[float] = []
        self.first_s: list[float] = []
        self.e2e: list[float] = []
        self.gen: list[int] = []  # tokens generated so far (kept up to date except for decoders)
        self.pre_len: list[int] = []
        self.pre_rem: list[int] = []
        self.waiting: deque[int] = deque()
        self.prefilling: list[int] = []
        self.finish_g: dict[int, int] = {}  # decoding rid -> G at which it finishes
        self.dec_off: dict[int, int] = {}  # decoding rid -> kv - G
        self.heap: list[tuple[int, int]] = []
        self.order: list[int] = []  # admission order, for preemption
        self.t = 0.0
        self.g = 0  # decode steps done so far (global decode clock)
        self.nxt = 0
        self.reserved = 0  # KV tokens reserved by prefilling requests
        self.off_sum = 0
        self.done = 0
        self.busy_ms = 0.0
        self.batch_ms = 0.0
        self.preemptions = 0
        self.last_finish = 0.0
        self.completed_last_step = 0  # requests that finished at ``t`` (in the last step)

    # -- requests ----------------------------------------------------------------------
    def submit(self, arrival_s: float, input_tokens: int, output_tokens: int) -> int:
        """Queue a request (arrivals in non-decreasing order); returns its id."""
        self.arr.append(float(arrival_s))
        self.isl.append(int(input_tokens))
        self.osl.append(int(output_tokens))
        for lst, value in ((self.ttft, math.nan), (self.first_s, 0.0), (self.e2e, math.nan)):
            lst.append(value)
        for ints in (self.gen, self.pre_len, self.pre_rem):
            ints.append(0)
        return len(self.arr) - 1

    @property
    def submitted(self) -> int:
        return len(self.arr)

    def outstanding(self) -> int:
        """Requests submitted and not finished."""
        return len(self.arr) - self.done

    def generated(self, rid: int) -> int:
        """Tokens request ``rid`` has generated so far."""
        fin = self.finish_g.get(rid)
        return self.gen[rid] if fin is None else self.osl[rid] - (fin - self.g)

    def has_work(self) -> bool:
        """Something is running, waiting, or submitted and not yet seen."""
        return bool(self.finish_g or self.prefilling or self.waiting) or self.nxt < len(self.arr)

    def next_step_s(self) -> float:
        """When the next step starts (``inf`` when there is nothing to do)."""
        if self.finish_g or self.prefilling or self.waiting:
            return self.t
        return max(self.t, self.arr[self.nxt]) if self.nxt < len(self.arr) else math.inf

    # -- bookkeeping -------------------------------------------------------------------
    def used(self) -> int:
        return self.reserved + self.off_sum + len(self.finish_g) * self.g

    def running(self) -> int:
        return len(self.prefilling) + len(self.finish_g)

    def take_arrivals(self) -> None:
        while self.nxt < len(self.arr) and self.arr[self.nxt] <= self.t:
            self.waiting.append(self.nxt)
            self.nxt += 1

    def preempt(self) -> None:
        while True:
            rid = self.order.pop()
            if rid in self.finish_g:
                self.gen[rid] = self.osl[rid] - (self.finish_g.pop(rid) - self.g)
                self.off_sum -= self.dec_off.pop(rid)
                break
            if rid in self.prefilling:
                self.prefilling.remove(rid)
                self.reserved -= self.pre_len[rid]
                break
        self.preemptions += 1
        self.waiting.appendleft(rid)

    def admit(self, budget: int, chunks: list[tuple[int, int]]) -> int:
        while self.waiting and budget > 0 and self.running() < self.cfg.max_num_seqs:
            rid = self.waiting[0]
            need = self.isl[rid] + self.gen[rid]
            if self.used() + need > self.cap:
                break
            self.waiting.popleft()
            self.pre_len[rid] = self.pre_rem[rid] = need
            self.reserved += need
            self.prefilling.append(rid)
            self.order.append(rid)
            c = min(need, budget)
            chunks.append((rid, c))
            budget -= c
        return budget

    def finish_prefill(self, rid: int) -> None:
        self.prefilling.remove(rid)
        self.reserved -= self.pre_len[rid]
        if self.gen[rid] == 0:
            self.ttft[rid] = (self.t - self.arr[rid]) * 1e3
            self.first_s[rid] = self.t
            self.gen[rid] = 1
        if self.gen[rid] >= self.osl[rid]:
            self.complete(rid)
            return
        self.finish_g[rid] = self.g + self.osl[rid] - self.gen[rid]
        self.dec_off[rid] = self.pre_len[rid] - self.g
        self.off_sum += self.dec_off[rid]
        heapq.heappush(self.heap, (self.finish_g[rid], rid))

    def complete(self, rid: int) -> None:
        self.e2e[rid] = (self.t - self.arr[rid]) * 1e3
        self.gen[rid] = self.osl[rid]
        self.done += 1
        self.completed_last_step += 1
        self.last_finish = self.t
        if rid in self.order:
            self.order.remove(rid)

    def pop_completions(self) -> None:
        while self.heap and self.heap[0][0] <= self.g:
            fin, rid = heapq.heappop(self.heap)
            if self.finish_g.get(rid) != fin:
                continue  # stale entry of a preempted request
            del self.finish_g[rid]
            self.off_sum -= self.dec_off.pop(rid)
            self.complete(rid)

    def next_finish_steps(self) -> int:
        while self.heap and self.finish_g.get(self.heap[0][1]) != self.heap[0][0]:
            heapq.heappop(self.heap)
        return self.heap[0][0] - self.g

    def mean_kv(self, ahead: float) -> int:
        n = len(self.finish_g)
        return int(self.off_sum / n + self.g + ahead) + 1 if n else 0

    # -- steps -------------------------------------------------------------------------
    def advance(self, dt_ms: float, k: int, seqs: int) -> None:
        self.t += dt_ms * k / 1e3
        self.busy_ms += dt_ms * k
        self.batch_ms += dt_ms * k * seqs

    def mixed_step(self, chunks: list[tuple[int, int]]) -> None:
        seqs = len(self.finish_g)
        dt = self.steps.mixed_ms([(c, self.pre_len[r]) for r, c in chunks], seqs, self.mean_kv(0))
        self.advance(dt, 1, seqs)
        if seqs:
            self.g += 1
        for rid, c in chunks:
            self.pre_rem[rid] -= c
            if self.pre_rem[rid] == 0:
                self.finish_prefill(rid)
        self.pop_completions()

    def decode_jump(self, horizon_s: float, until_s: float) -> None:
        seqs = len(self.finish_g)
        k = min(self.next_finish_steps(), (self.cap - self.used()) // seqs)
        bound = until_s
        if not self.waiting:
            bound = min(bound, self.arr[self.nxt] if self.nxt < len(self.arr) else horizon_s)
        dt = self.steps.decode_ms(seqs, self.mean_kv(0))
        if bound < math.inf:
            k = min(k, max(1, math.ceil((bound - self.t) * 1e3 / dt)))
        k = max(1, k)
        dt = self.steps.decode_ms(seqs, self.mean_kv(k / 2))
        if k > 1 and self.t + dt * k / 1e3 > bound:
            # The KV grew over the jump, so its steps are slower than its first one: a jump
            # sized by the first step overshoots the bound (seconds, over a long idle gap
            # with one long decode: the next arrival then waited that long for its prefill).
            k = max(1, min(k, math.ceil((bound - self.t) * 1e3 / dt)))
            dt = self.steps.decode_ms(seqs, self.mean_kv(k / 2))
        self.advance(dt, k, seqs)
        self.g += k
        self.pop_completions()

    def step(self, horizon_s: float = math.inf, until_s: float = math.inf) -> None:
        """One scheduler iteration: a mixed step; a decode jump, which ends at the first step
        boundary at or after ``until_s`` and, when nothing waits, after the next submitted
        arrival or ``horizon_s`` (an arrival that may still be submitted); or, when idle, a
        jump of the clock to the next submitted arrival."""
        self.completed_last_step = 0
        self.take_arrivals()
        if not (self.finish_g or self.prefilling or self.waiting):
            if self.nxt < len(self.arr):
                self.t = max(self.t, self.arr[self.nxt])
            return
        while self.finish_g and self.used() + len(self.finish_g) > self.cap:
            self.preempt()
        budget = self.cfg.max_num_batched_tokens - len(self.finish_g)
        chunks: list[tuple[int, int]] = []
        for rid in self.prefilling:
            if budget <= 0:
                break
            c = min(self.pre_rem[rid], budget)
            chunks.append((rid, c))
            budget -= c
        self.admit(budget, chunks)
        if chunks:
            self.mixed_step(chunks)
        elif self.finish_g:
            self.decode_jump(horizon_s, until_s)
        else:
            raise AssertionError("scheduler stalled: waiting requests but nothing can run")

    def run(self) -> None:
        """Serve every submitted request to completion."""
        while self.done < len(self.arr):
            self.step()


def simulate(
    arrivals_s: FloatArray,
    input_tokens: FloatArray,
    output_tokens: FloatArray,
    kv_capacity_tokens: int,
    config: EngineConfig,
    steps: StepModel,
) -> SimResult:
    """Serve every request (sorted ``arrivals_s``) to completion; return its latencies."""
    isl = [int(v) for v in input_tokens]
    osl = [int(v) for v in output_tokens]
    check_fits(max(i + o for i, o in zip(isl, osl, strict=True)),
               config.usable_kv_tokens(kv_capacity_tokens))
    sim = Engine(kv_capacity_tokens, config, steps)
    for a, i, o in zip(arrivals_s, isl, osl, strict=True):
        sim.submit(float(a), i, o)
    sim.run()
    first = [sim.first_s[r] for r in range(len(osl))]
    tpot = [
        (sim.e2e[r] / 1e3 + sim.arr[r] - first[r]) * 1e3 / (osl[r] - 1) if osl[r] > 1 else math.nan
        for r in range(len(osl))
    ]
    span = sim.last_finish - float(arrivals_s[0])
    return SimResult(
        ttft_ms=readonly(sim.ttft),
        tpot_ms=readonly(tpot),
        e2e_ms=readonly(sim.e2e),
        throughput_rps=len(osl) / span if span > 0 else math.inf,
        mean_decode_batch=sim.batch_ms / sim.busy_ms if sim.busy_ms > 0 else 0.0,
        preemptions=sim.preemptions,
    )


def _outstanding_at(engine: Engine, t_s: float) -> int:
    """Requests an engine holds at ``t_s`` (its last step may have ended after ``t_s``: the
    requests that step finished were still there at ``t_s``)."""
    return engine.outstanding() + (engine.completed_last_step if engine.t > t_s else 0)


def simulate_replicas(
    arrivals_s: FloatArray,
    input_tokens: FloatArray,
    output_tokens: FloatArray,
    kv_capacity_tokens: int,
    config: EngineConfig,
    steps: StepModel,
    replicas: int,
) -> SimResult:
    """Like :func:`simulate`, over ``replicas`` identical engines behind a least-outstanding-
    requests balancer (ties rotate), as the cluster simulator and the gateway balance a
    model's replicas: each arrival goes to the engine holding the fewest requests then."""
    if replicas == 1:
        return simulate(arrivals_s, input_tokens, output_tokens, kv_capacity_tokens, config,
                        steps)
    isl = [int(v) for v in input_tokens]
    osl = [int(v) for v in output_tokens]
    check_fits(max(i + o for i, o in zip(isl, osl, strict=True)),
               config.usable_kv_tokens(kv_capacity_tokens))
    engines = [Engine(kv_capacity_tokens, config, steps) for _ in range(replicas)]
    where: list[tuple[int, int]] = []
    turn = 0
    for a, i, o in zip(arrivals_s, isl, osl, strict=True):
        t = float(a)
        for eng in engines:
            while eng.next_step_s() < t:
                eng.step(horizon_s=t)
        loads = [_outstanding_at(engines[(turn + k) % replicas], t) for k in range(replicas)]
        k = (turn + loads.index(min(loads))) % replicas
        turn = (k + 1) % replicas
        where.append((k, engines[k].submit(t, i, o)))
    for eng in engines:
        eng.run()
    ttft = [engines[k].ttft[r] for k, r in where]
    e2e = [engines[k].e2e[r] for k, r in where]
    tpot = [(e2e[n] - ttft[n]) / (osl[n] - 1) if osl[n] > 1 else math.nan
            for n in range(len(osl))]
    busy = sum(e.busy_ms for e in engines)
    span = max(e.last_finish for e in engines) - float(arrivals_s[0])
    return SimResult(
        ttft_ms=readonly(ttft), tpot_ms=readonly(tpot), e2e_ms=readonly(e2e),
        throughput_rps=len(osl) / span if span > 0 else math.inf,
        mean_decode_batch=sum(e.batch_ms for e in engines) / busy if busy > 0 else 0.0,
        preemptions=sum(e.preemptions for e in engines),
    )


def backlog_throughput(result: SimResult, arrivals_s: FloatArray, output_tokens: FloatArray,
                       mean_output_tokens: float, warmup_share: float) -> tuple[float, float]:
    """Steady throughput (req/s) of a run with a standing queue, and the mean time (s) a
    request spends decoding there.

    The window opens when ``warmup_share`` of the requests have had their first token (the
    first batch has filled and desynchronised) and closes when the last one has (FCFS: the
    queue is empty from then on, so the drain is left out); throughput is the completions
    inside it per second, scaled by the ratio of their mean output length to
    ``mean_output_tokens`` (the workload's): a window that happened to complete short answers
    has not shown more capacity. Counting completions over a window, not a share of the
    requests, avoids the bias of a burst's percentiles, where short answers finish first.
    """
    arrivals = np.asarray(arrivals_s, dtype=np.float64)
    first_s = arrivals + result.ttft_ms / 1e3
    finish_s = arrivals + result.e2e_ms / 1e3
    order = np.sort(first_s)
    lo, hi = float(order[int(warmup_share * (len(order) - 1))]), float(order[-1])
    inside = (finish_s > lo) & (finish_s <= hi)
    decode_s = (result.e2e_ms - result.ttft_ms) / 1e3
    if hi <= lo or not inside.any():
        return result.throughput_rps, float(np.mean(decode_s))
    scale = float(np.mean(np.asarray(output_tokens)[inside])) / mean_output_tokens
    rps = float(np.count_nonzero(inside) / (hi - lo)) * scale
    return rps, float(np.mean(decode_s[inside]))
