"""Simulate stage — one call from a plan to a simulation report (``routerwise simulate``).

Inputs: a :class:`~routerwise.simulate.inputs.SimTarget` (a plan's setup or a baseline) and
:class:`SimOptions` (duration and warm-up in s, seed, arrival process, total rate in req/s,
replications, interference model). Output: a :class:`SimReport` — per replication, requests
arrive, each draws a prompt uniformly from the plan's workload, the router sends it to
``argmax(score − price)`` (``simulate/router.py``), the cluster serves it
(``simulate/cluster.py``); statistics exclude the warm-up and are averaged over replications,
with 95% intervals; every number the plan predicted is set beside its simulated value, and
where they differ by more than the fidelity bar the report says why and how to correct it
(``simulate/diagnose.py``).

Pure apart from the clock (``wall_s``): randomness comes only from
``numpy.random.SeedSequence(seed)`` spawned per replication.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from routerwise.errors import InfeasibleError, InputError
from routerwise.profiles.engine_sim import EngineConfig, StepModel, check_fits
from routerwise.simulate.arrivals import ArrivalProcess, Poisson, Trace
from routerwise.simulate.cluster import ClusterResult, InstanceModel, Requests, run_cluster
from routerwise.simulate.inputs import Planned, SimTarget
from routerwise.simulate.interference import DEFAULT_INTERFERENCE, InterferenceModel
from routerwise.simulate.stats import (
    Metrics,
    RequestData,
    average,
    batch_masks,
    intervals,
    metrics,
)
from routerwise.spec.core import FloatArray

#: Default warm-up: this fraction of the duration, at most ``MAX_DEFAULT_WARMUP_S``.
WARMUP_FRACTION, MAX_DEFAULT_WARMUP_S = 0.1, 300.0
#: After the last arrival, requests are served for at most this long (or the duration).
MIN_DRAIN_S = 60.0

Progress = Callable[[float, float], None]  # (simulated seconds done, total)


@dataclass(frozen=True, slots=True)
class SimOptions:
    """How to simulate (units in names)."""

    duration_s: float
    seed: int = 0
    arrivals: ArrivalProcess = field(default_factory=Poisson)
    rate_rps: float | None = None  # None: the plan's rate (a trace: as recorded)
    warmup_s: float | None = None  # None: WARMUP_FRACTION of the duration
    replications: int = 1
    interference: InterferenceModel = DEFAULT_INTERFERENCE
    max_drain_s: float | None = None  # None: the duration, at least MIN_DRAIN_S

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise InputError(f"--duration-s {self.duration_s!r}: must be a positive number of "
                             "seconds")
        if self.rate_rps is not None and not (math.isfinite(self.rate_rps)
                                              and self.rate_rps > 0):
            raise InputError(f"--rate-rps {self.rate_rps!r}: must be a positive, finite number "
                             "of requests/s")
        if self.warmup_s is not None and not (math.isfinite(self.warmup_s)
                                              and 0 <= self.warmup_s < self.duration_s):
            raise InputError(f"--warmup-s {self.warmup_s!r}: must be >= 0 and below "
                             f"--duration-s {self.duration_s:g}")
        if self.replications < 1:
            raise InputError(f"--replications {self.replications}: must be >= 1")

    @property
    def warmup(self) -> float:
        if self.warmup_s is not None:
            return self.warmup_s
        return min(WARMUP_FRACTION * self.duration_s, MAX_DEFAULT_WARMUP_S)

    @property
    def drain_s(self) -> float:
        """How long requests are served after the last arrival."""
        if self.max_drain_s is not None:
            return self.max_drain_s
        return max(MIN_DRAIN_S, self.duration_s)


@dataclass(frozen=True, slots=True)
class ModelRun:
    """One deployed model in one replication."""

    metrics: Metrics
    rate_rps: float
    utilisation: float  # mean busy fraction of its instances
    preemptions: int
    interference_slowdown: float  # busy-time-weighted step slowdown from co-runners
    mean_input_tokens: float | None  # of the requests routed to it
    mean_output_tokens: float | None


@dataclass(frozen=True, slots=True)
class Replication:
    seed_entropy: int
    offered_rps: float  # arrivals / duration
    fleet: Metrics
    per_model: dict[str, ModelRun]
    batches: tuple[Metrics, ...]
    steps: int
    end_s: float


@dataclass(frozen=True, slots=True)
class SimReport:
    """A simulation of one setup: per replication and averaged (dict form: ``report_dict``)."""

    target: SimTarget
    options: SimOptions
    runs: tuple[Replication, ...]
    fleet: Metrics
    per_model: dict[str, Metrics]
    predicted: Planned
    ci: dict[str, tuple[float, float] | None]
    ci_method: str
    wall_s: float

    @property
    def offered_rps(self) -> float:
        return float(np.mean([r.offered_rps for r in self.runs]))


def instance_models(target: SimTarget) -> list[InstanceModel]:
    """Every placed instance with its engine model (shared per shape: step times memoised)."""
    out = []
    cache: dict[str, tuple[int, StepModel]] = {}
    config = EngineConfig()
    for inst in target.setup.instances:
        shape = target.engine_shape(inst.model)
        if inst.model not in cache:
            cache[inst.model] = (shape.kv_capacity_tokens(), shape.step_model())
        cap, steps = cache[inst.model]
        out.append(InstanceModel(target.models.index(inst.model), inst.gpu_ids, cap, steps,
                                 target.gpu.ridge_tokens, shape.mps, config))
    return out


def _rate(options: SimOptions, target: SimTarget) -> float | None:
    if options.rate_rps is not None:
        return options.rate_rps
    return None if isinstance(options.arrivals, Trace) else target.planned.rate_rps


def _requests(target: SimTarget, options: SimOptions, rng: np.random.Generator
              ) -> tuple[Requests, FloatArray]:
    times = options.arrivals.times_s(_rate(options, target), options.duration_s, rng)
    if len(times) == 0:
        raise InputError(f"{options.arrivals.describe()}: no request arrives within "
                         f"--duration-s {options.duration_s:g}")
    prompts = rng.integers(0, target.workload.num_prompts, len(times))
    models = target.rule.choose(prompts, rng)
    isl = target.input_tokens[prompts].astype(np.int64)
    osl = target.output_tokens[prompts, models].astype(np.int64)
    return Requests(times, models, isl, osl), prompts.astype(np.float64)


def _check_kv(target: SimTarget, instances: list[InstanceModel], req: Requests) -> None:
    for inst in instances:
        mine = req.model == inst.model_index
        if not mine.any():
            continue
        longest = int((req.input_tokens[mine] + req.output_tokens[mine]).max())
        try:
            check_fits(longest, inst.config.usable_kv_tokens(inst.kv_capacity_tokens))
        except InfeasibleError as exc:
            name = target.models[inst.model_index]
            raise InfeasibleError(f"{name}: {exc}", exc.reachable) from None


def _request_data(target: SimTarget, req: Requests, prompts: FloatArray,
                  res: ClusterResult) -> RequestData:
    idx = prompts.astype(np.int64)
    score = target.workload.scores[idx, req.model]
    truth = target.workload.truth
    with_truth = truth is not None and not target.workload.is_oracle
    return RequestData(arrival_s=req.arrival_s, ttft_ms=res.ttft_ms, tpot_ms=res.tpot_ms,
                       e2e_ms=res.e2e_ms, score=score,
                       truth=truth[idx, req.model] if with_truth and truth is not None else None)


def _model_run(target: SimTarget, k: int, data: RequestData, window: np.ndarray,
               req: Requests, res: ClusterResult, instances: list[InstanceModel],
               span_s: float, slo_ms: float) -> ModelRun:
    mask = window & (req.model == k)
    mine = [i for i, inst in enumerate(instances) if inst.model_index == k]
    busy = res.busy_ms[mine]
    elapsed_ms = max(res.end_s, 1e-9) * 1e3
    slow = float(np.average(res.slowdown[mine], weights=busy)) if busy.sum() > 0 else 1.0
    return ModelRun(
        metrics=metrics(data, mask, slo_ms),
        rate_rps=float(mask.sum()) / span_s,
        utilisation=float(np.mean(busy) / elapsed_ms),
        preemptions=int(res.preemptions[mine].sum()),
        interference_slowdown=slow,
        mean_input_tokens=float(req.input_tokens[mask].mean()) if mask.any() else None,
        mean_output_tokens=float(req.output_tokens[mask].mean()) if mask.any() else None,
    )


def replicate(target: SimTarget, options: SimOptions, instances: list[InstanceModel],
              seed: np.random.SeedSequence, progress: Callable[[float], None] | None = None
              ) -> Replication:
    """One independent run: arrivals, routing, the cluster, statistics over the window."""
    rng = np.random.default_rng(seed)
    req, prompts = _requests(target, options, rng)
    _check_kv(target, instances, req)
    end_s = options.duration_s + options.drain_s
    res = run_cluster(instances, req, len(target.models), options.interference, end_s,
                      progress)
    data = _request_data(target, req, prompts, res)
    start, stop = options.warmup, options.duration_s
    window = (req.arrival_s >= start) & (req.arrival_s < stop)
    slo = target.plan.slo.target_ms
    span = stop - start
    per_model = {m: _model_run(target, k, data, window, req, res, instances, span, slo)
                 for k, m in enumerate(target.models)}
    batches = tuple(metrics(data, b, slo) for b in batch_masks(req.arrival_s, start, stop))
    return Replication(
        seed_entropy=int(seed.entropy) if isinstance(seed.entropy, int) else 0,
        offered_rps=len(req.arrival_s) / options.duration_s, fleet=metrics(data, window, slo),
        per_model=per_model, batches=batches, steps=res.steps, end_s=res.end_s)


def simulate_target(target: SimTarget, options: SimOptions,
                    progress: Progress | None = None) -> SimReport:
    """Simulate ``target`` ``options.replications`` times and summarise."""
    started = time.perf_counter()
    instances = instance_models(target)
    seeds = np.random.SeedSequence(options.seed).spawn(options.replications)
    total = options.duration_s * options.replications
    runs = []
    for r, seed in enumerate(seeds):
        done = r * options.duration_s

        def tick(t_s: float, done: float = done) -> None:
            if progress is not None:
                progress(min(done + t_s, done + options.duration_s), total)

        runs.append(replicate(target, options, instances, seed, tick))
        if progress is not None:
            progress(done + options.duration_s, total)
    fleet = average([r.fleet for r in runs])
    per_model = {m: average([r.per_model[m].metrics for r in runs]) for m in target.models}
    if len(runs) >= 2:
        ci, method = intervals([r.fleet for r in runs]), f"{len(runs)} replications"
    else:
        ci, method = intervals(runs[0].batches), f"batch means ({len(runs[0].batches)} periods)"
    offered = float(np.mean([r.offered_rps for r in runs]))
    rate = _rate(options, target)
    predicted = target.predicted_at(offered if rate is None else rate)
    return SimReport(target=target, options=options, runs=tuple(runs), fleet=fleet,
                     per_model=per_model, predicted=predicted, ci=ci, ci_method=method,
                     wall_s=time.perf_counter() - started)
