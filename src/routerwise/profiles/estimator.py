"""Stage 1 — the GPU-free profile estimator: a latency table for one instance shape.

Inputs: a ``ModelArch``, a ``GpuSpec``, tensor parallelism, an MPS share in (0, 1], arrival
rates (requests/s; or ``None`` to sweep up to saturation) and ``TokenLengths``. Output: a
``ProfileTable`` with ``model, rate_rps, ttft_mean_ms, ttft_p50_ms, ttft_p90_ms, ttft_p99_ms,
tpot_mean_ms, e2e_mean_ms, throughput_rps, gpu, tp, mps_share, provenance='estimated',
beyond_capacity``.

Every number is what a *stable server sustains*, measured in steady state by the engine
simulation (``engine_sim``) whose step times come from aiconfigurator's kernel data
(``aic_steps``) slowed by the MPS model (``mps``) and, below a whole GPU, by the memory-
bandwidth contention of one busy co-runner (``interference``; ``InstanceShape.profile_steps``):

* the shape's capacity (``sustained_capacity``) is the completion rate while a standing
  queue keeps the engine full — a backlog served FCFS, counted from when a quarter of it has
  started (warm-up: the first batch fills and desynchronises) to when the last request
  starts (the queue is empty from then: drain excluded), scaled to the workload's mean
  output length (``engine_sim.backlog_throughput``); also the mean time a request spends
  decoding there (its *lifetime*);
* a sweep (``rates_rps=None``) puts ``sweep_points`` rates between 5% and 90% of that
  capacity; each rate is a Poisson run whose first ``WARMUP_SHARE`` of requests (by arrival)
  is discarded and whose measured window holds at least ``num_requests`` requests and
  ``WINDOW_LIFETIMES`` lifetimes (a run from an empty engine is still filling its decode
  batch for about one lifetime, which understates a long run near capacity);
* a rate whose window's mean TTFT keeps growing (last third > ``UNSTABLE_GROWTH`` × the first
  third) while the requests in flight grow (by ≥ ``UNSTABLE_BACKLOG_SHARE`` of the window's
  arrivals: the queue runs away) is marked ``beyond_capacity``, and so is every faster rate;
  curves leave such rows out and the lowest one bounds the shape's capacity.

All rates share one stream of unit-rate inter-arrival gaps and one length sample (common
random numbers), so curves are smooth in the rate; latency columns are then made
non-decreasing in the rate (a running maximum), because the physics says they are and
sampling noise must not say otherwise.

``estimate_profile`` is pure (randomness only from ``numpy.random.Generator(seed)``);
``estimate_profile_cached`` adds the on-disk cache keyed by a content hash of every input;
entries carry a checksum and row count, are validated on read (a bad one is re-estimated
with a warning) and written atomically, so concurrent processes can share the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from routerwise.errors import InputError
from routerwise.profiles.aic_steps import aic_version, step_times
from routerwise.profiles.engine_sim import (
    EngineConfig,
    SimResult,
    StepModel,
    backlog_throughput,
    simulate,
    simulate_replicas,
)
from routerwise.profiles.interference import (
    DEFAULT_INTERFERENCE,
    AssumedCoRunners,
    InterferenceModel,
)
from routerwise.profiles.memory import DEFAULT_MEMORY, MemoryModel, check_share, kv_capacity_tokens
from routerwise.profiles.mps import DEFAULT_MPS, MpsModel
from routerwise.profiles.table import (
    BEYOND_CAPACITY_COLUMN,
    ProfileTable,
    validate_profile_frame,
)
from routerwise.spec.catalog import GpuSpec, ModelArch, check_tp
from routerwise.spec.core import FloatArray, readonly
from routerwise.spec.workload import Workload

log = logging.getLogger(__name__)

PROFILE_COLUMNS = (
    "model", "rate_rps", "ttft_mean_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms",
    "tpot_mean_ms", "e2e_mean_ms", "throughput_rps", "gpu", "tp", "mps_share", "provenance",
    BEYOND_CAPACITY_COLUMN,
)
_LATENCY_COLUMNS = PROFILE_COLUMNS[2:8]
_SWEEP_LOW, _SWEEP_HIGH = 0.05, 0.90  # sweep rates as fractions of the sustained capacity
#: A sweep's last rate is this fraction of the shape's sustained capacity.
SWEEP_HIGH_FRACTION = _SWEEP_HIGH
#: Share of a steady-state run's requests (the first, by arrival) discarded as warm-up.
WARMUP_SHARE = 0.25
#: A rate's measured window spans at least this many request lifetimes at capacity.
WINDOW_LIFETIMES = 10.0
#: At most this many requests in one rate's run (a bound on the estimator's time).
MAX_RUN_REQUESTS = 20_000
#: A rate is unstable when its window's last third has this multiple of its first third's
#: mean TTFT *and* the requests in flight grew over the window by at least this share of
#: the window's arrivals (the queue grows through the run; either alone is noise: a few
#: very long prompts late in a low-rate run double its TTFT without any queue).
UNSTABLE_GROWTH = 2.0
UNSTABLE_BACKLOG_SHARE = 0.05
#: 2: entries carry a header line with a row count and checksum; 3: steady-state points
#: (warm-up and drain excluded), sustained capacity, a ``beyond_capacity`` column, MPS
#: co-runner contention below a whole GPU; 4: instability needs a growing backlog too;
#: 5: decode jumps no longer overshoot the next arrival (low-rate points were inflated).
_CACHE_SCHEMA = 5
_ENTRY_MAGIC = "# routerwise-profile-cache"

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class TokenLengths:
    """Prompt and output lengths (tokens): one fixed pair, or a pool sampled with replacement."""

    input_tokens: FloatArray
    output_tokens: FloatArray
    source: str = "fixed"

    def __post_init__(self) -> None:
        if self.input_tokens.shape != self.output_tokens.shape or self.input_tokens.ndim != 1:
            raise InputError(f"{self.source}: input and output token arrays differ in shape")
        if len(self.input_tokens) == 0:
            raise InputError(f"{self.source}: no token lengths")
        for name in ("input_tokens", "output_tokens"):
            values = getattr(self, name)
            bad = ~np.isfinite(values) | (values < 1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                bad_value = float(values[i])
                raise InputError(f"{self.source}: {name}[{i}]={bad_value!r} must be >= 1 token")

    @classmethod
    def fixed(cls, input_tokens: int, output_tokens: int) -> TokenLengths:
        for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if value < 1:
                raise InputError(f"{name}={value!r} must be a positive number of tokens")
        return cls(readonly([input_tokens]), readonly([output_tokens]), "fixed")

    @classmethod
    def pool(cls, input_tokens: ArrayLike, output_tokens: ArrayLike, source: str) -> TokenLengths:
        inp = readonly(np.ceil(np.asarray(input_tokens, dtype=np.float64)))
        out = readonly(np.ceil(np.asarray(output_tokens, dtype=np.float64)))
        return cls(inp, out, source)

    @classmethod
    def weighted(cls, input_tokens: ArrayLike, output_tokens: ArrayLike, weights: ArrayLike,
                 source: str, size: int | None = None) -> TokenLengths:
        """A pool of ``size`` (default: as many as the inputs) lengths drawn in proportion to
        ``weights`` (e.g. the share of each prompt a router sends one model) by systematic
        resampling: deterministic, so equal weights give an equal pool (and cache key)."""
        w = np.asarray(weights, dtype=np.float64)
        total = float(w.sum())
        if w.ndim != 1 or not np.all(np.isfinite(w)) or np.any(w < 0) or total <= 0:
            raise InputError(f"{source}: weights must be finite, >= 0 and not all 0")
        n = len(w) if size is None else size
        cum = np.cumsum(w) / total
        idx = np.minimum(np.searchsorted(cum, (np.arange(n) + 0.5) / n), len(w) - 1)
        inp = np.asarray(input_tokens, dtype=np.float64)[idx]
        out = np.asarray(output_tokens, dtype=np.float64)[idx]
        return cls.pool(inp, out, source)

    def means(self) -> tuple[float, float]:
        """Mean input and output tokens of the pool."""
        return float(np.mean(self.input_tokens)), float(np.mean(self.output_tokens))

    def sample(self, rng: np.random.Generator, n: int) -> tuple[FloatArray, FloatArray]:
        if len(self.input_tokens) == 1:
            return np.full(n, self.input_tokens[0]), np.full(n, self.output_tokens[0])
        idx = rng.integers(0, len(self.input_tokens), size=n)
        return self.input_tokens[idx], self.output_tokens[idx]

    def digest(self) -> str:
        h = hashlib.sha256(np.ascontiguousarray(self.input_tokens).tobytes())
        h.update(np.ascontiguousarray(self.output_tokens).tobytes())
        return h.hexdigest()


#: Busy co-runners assumed beside a shape below a whole GPU: the planner fills a GPU's other
#: share with other instances, and under load a continuous-batching engine is always busy.
ASSUMED_CO_RUNNERS = 1.0


class ScaledSteps:
    """Step times of a full-GPU ``StepModel`` slowed by an MPS share."""

    def __init__(self, base: StepModel, share: float, ridge_tokens: float, mps: MpsModel) -> None:
        self._base, self._share, self._ridge, self._mps = base, share, ridge_tokens, mps

    def decode_ms(self, seqs: int, kv: int) -> float:
        t = self._base.decode_ms(seqs, kv)
        return t * self._mps.slowdown(self._share, seqs, self._ridge)

    def mixed_ms(self, chunks: list[tuple[int, int]], seqs: int, kv: int) -> float:
        t = self._base.mixed_ms(chunks, seqs, kv)
        tokens = seqs + sum(c for c, _ in chunks)
        return t * self._mps.slowdown(self._share, tokens, self._ridge)


@dataclass(frozen=True, slots=True)
class InstanceShape:
    """Everything fixed about one estimated instance (besides the traffic)."""

    model: ModelArch
    gpu: GpuSpec
    tp: int
    mps_share: float
    engine: EngineConfig = EngineConfig()  # noqa: RUF009 (frozen, so sharing is safe)
    memory: MemoryModel = DEFAULT_MEMORY
    mps: MpsModel = DEFAULT_MPS
    #: Contention charged to a shape below a whole GPU (``profile_steps``).
    contention: InterferenceModel = DEFAULT_INTERFERENCE

    def __post_init__(self) -> None:
        check_tp(self.model, self.tp)
        check_share(self.mps_share)

    def kv_capacity_tokens(self) -> int:
        return kv_capacity_tokens(self.model, self.gpu, self.tp, self.mps_share, self.memory)

    def step_model(self) -> StepModel:
        """Step times of the instance alone at its share (the cluster simulator adds the
        contention of the co-runners it actually has)."""
        base = step_times(self.model, self.gpu.aic_system, self.tp)
        return ScaledSteps(base, self.mps_share, self.gpu.ridge_tokens, self.mps)

    def profile_steps(self) -> StepModel:
        """Step times a profile is estimated with: below a whole GPU, next to
        ``ASSUMED_CO_RUNNERS`` busy co-runners (``profiles/interference.py``), because a
        plan gives the rest of a shared GPU to other instances."""
        alone = self.step_model()
        if self.mps_share >= 1.0 or not self.contention.active:
            return alone
        return AssumedCoRunners(alone, self.gpu.ridge_tokens, self.mps, self.contention,
                                ASSUMED_CO_RUNNERS)


def _check_rates(rates_rps: Sequence[float]) -> tuple[float, ...]:
    rates = tuple(float(r) for r in rates_rps)
    if not rates:
        raise InputError("rates_rps is empty; give at least one positive rate or sweep")
    for r in rates:
        if not (math.isfinite(r) and r > 0):
            raise InputError(f"rate_rps={r!r} must be a positive, finite number of requests/s")
    return tuple(sorted(set(rates)))


def window_requests(rate: float, num_requests: int, duration_s: float | None,
                     lifetime_s: float) -> int:
    """Requests in a rate's measured window: ``rate · duration_s`` when a duration is given,
    else at least ``num_requests`` and ``WINDOW_LIFETIMES`` lifetimes."""
    if duration_s is not None:
        n = rate * duration_s
    else:
        n = max(num_requests, rate * WINDOW_LIFETIMES * lifetime_s)
    return int(min(MAX_RUN_REQUESTS * (1 - WARMUP_SHARE), max(100, math.ceil(n))))


def run_rate(
    shape: InstanceShape, steps: StepModel, cap: int, rate: float, lengths: TokenLengths,
    num_requests: int, seed: int,
) -> SimResult:
    """One simulation at ``rate`` (math.inf = every request arrives at t = 0)."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0, size=num_requests)
    isl, osl = lengths.sample(rng, num_requests)
    arrivals = np.zeros(num_requests) if math.isinf(rate) else np.cumsum(gaps) / rate
    return simulate(arrivals, isl, osl, cap, shape.engine, steps)


@dataclass(frozen=True, slots=True)
class Capacity:
    """What one instance sustains with a standing queue."""

    rps: float  # completions per second
    lifetime_s: float  # mean time from first token to the last, per request


def sustained_capacity(shape: InstanceShape, lengths: TokenLengths, num_requests: int = 2000,
                       seed: int = 0) -> Capacity:
    """Completion rate of a backlog of ``max(num_requests, 10 · max_num_seqs)`` requests
    while its queue lasts, warm-up and drain excluded (``engine_sim.backlog_throughput``)."""
    cap = shape.kv_capacity_tokens()
    steps = shape.profile_steps()
    n = max(num_requests, 10 * shape.engine.max_num_seqs)
    isl, osl = lengths.sample(np.random.default_rng(seed), n)
    arrivals = np.zeros(n)
    res = simulate(arrivals, isl, osl, cap, shape.engine, steps)
    rps, lifetime_s = backlog_throughput(res, arrivals, osl, float(np.mean(lengths.output_tokens)),
                                         WARMUP_SHARE)
    return Capacity(rps, lifetime_s)


def saturation_rps(
    shape: InstanceShape, lengths: TokenLengths, num_requests: int = 2000, seed: int = 0
) -> float:
    """Highest sustainable request rate (``sustained_capacity``)."""
    return sustained_capacity(shape, lengths, num_requests, seed).rps


@dataclass(frozen=True, slots=True)
class SteadyRun:
    """One rate's run: the measured window (warm-up excluded) and its verdict."""

    result: SimResult
    window: slice  # the measured requests (by arrival order)
    throughput_rps: float  # completions per second over the window's arrival span
    unstable: bool  # mean TTFT grows through the window


def steady_run(shape: InstanceShape, steps: StepModel, cap: int, rate: float,
               lengths: TokenLengths, window_requests: int, seed: int,
               replicas: int = 1) -> SteadyRun:
    """A Poisson run at ``rate`` per instance: ``window_requests`` per instance measured
    after a warm-up; ``replicas`` instances behind least-outstanding-requests balancing
    (``engine_sim.simulate_replicas``) share ``replicas · rate``."""
    window_requests *= replicas
    total = math.ceil(window_requests / (1 - WARMUP_SHARE))
    gap_rng, length_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    arrivals = np.cumsum(gap_rng.exponential(1.0, size=total)) / (rate * replicas)
    isl, osl = lengths.sample(length_rng, total)
    res = simulate_replicas(arrivals, isl, osl, cap, shape.engine, steps, replicas)
    first = total - window_requests
    start, end = float(arrivals[first]), float(arrivals[-1])
    finish = arrivals + res.e2e_ms / 1e3
    done = int(np.count_nonzero((finish >= start) & (finish <= end)))
    thr = done / (end - start) / replicas if end > start else res.throughput_rps / replicas
    ttft = res.ttft_ms[first:]
    third = max(1, len(ttft) // 3)
    growing = float(np.mean(ttft[-third:])) > UNSTABLE_GROWTH * float(np.mean(ttft[:third]))
    backlog = _in_flight(arrivals, finish, end) - _in_flight(arrivals, finish, start)
    queued = backlog >= UNSTABLE_BACKLOG_SHARE * window_requests
    return SteadyRun(res, slice(first, total), thr, growing and queued)


def _in_flight(arrivals: FloatArray, finish: FloatArray, t: float) -> int:
    """Requests arrived by ``t`` and not finished by then."""
    return int(np.count_nonzero(arrivals <= t) - np.count_nonzero(finish <= t))


def _row(shape: InstanceShape, rate: float, run: SteadyRun, beyond: bool) -> dict[str, object]:
    res, w = run.result, run.window
    ttft = res.ttft_ms[w]
    tpot = res.tpot_ms[w]
    tpot = tpot[np.isfinite(tpot)]
    return {
        "model": shape.model.id,
        "rate_rps": rate,
        "ttft_mean_ms": float(np.mean(ttft)),
        "ttft_p50_ms": float(np.percentile(ttft, 50)),
        "ttft_p90_ms": float(np.percentile(ttft, 90)),
        "ttft_p99_ms": float(np.percentile(ttft, 99)),
        "tpot_mean_ms": float(np.mean(tpot)) if len(tpot) else float("nan"),
        "e2e_mean_ms": float(np.mean(res.e2e_ms[w])),
        "throughput_rps": run.throughput_rps,
        "gpu": shape.gpu.name,
        "tp": shape.tp,
        "mps_share": shape.mps_share,
        "provenance": "estimated",
        BEYOND_CAPACITY_COLUMN: beyond,
    }


def _monotone(frame: pd.DataFrame) -> pd.DataFrame:
    for col in _LATENCY_COLUMNS:
        raw = frame[col].to_numpy(dtype=np.float64)
        fixed = np.fmax.accumulate(raw)
        if np.any(fixed > raw * 1.01):
            log.debug("%s: raised %s to a running maximum over rates", frame["model"].iloc[0], col)
        frame[col] = fixed
    return frame


def estimate_profile(
    model: ModelArch,
    gpu: GpuSpec,
    tp: int,
    mps_share: float,
    rates_rps: Sequence[float] | None,
    lengths: TokenLengths,
    *,
    num_requests: int = 2000,
    seed: int = 0,
    sweep_points: int = 10,
    duration_s: float | None = None,
    engine: EngineConfig | None = None,
    progress: Progress | None = None,
    replicas: int = 1,
) -> ProfileTable:
    """Estimated steady-state profile of one instance shape; ``rates_rps=None`` sweeps up to
    ``SWEEP_HIGH_FRACTION`` of its sustained capacity. With ``replicas`` > 1, each rate is
    per instance of that many behind least-outstanding-requests balancing (the latencies
    are the group's)."""
    if num_requests < 1:
        raise InputError(f"{num_requests=} must be >= 1")
    if replicas < 1:
        raise InputError(f"{replicas=} must be >= 1")
    if sweep_points < 2:
        raise InputError(f"{sweep_points=} must be >= 2")
    shape = InstanceShape(model, gpu, tp, mps_share, engine or EngineConfig())
    cap = shape.kv_capacity_tokens()
    steps = shape.profile_steps()
    rates = None if rates_rps is None else _check_rates(rates_rps)
    capacity = sustained_capacity(shape, lengths, num_requests, seed)
    if rates is None:
        grid = np.linspace(_SWEEP_LOW, _SWEEP_HIGH, sweep_points) * capacity.rps
        rates = tuple(float(r) for r in grid)
    rows = []
    beyond = False
    for i, rate in enumerate(rates):
        n = window_requests(rate, num_requests, duration_s, capacity.lifetime_s)
        run = steady_run(shape, steps, cap, rate, lengths, n, seed, replicas)
        beyond = beyond or run.unstable
        rows.append(_row(shape, rate, run, beyond))
        if progress is not None:
            progress(i + 1, len(rates))
    frame = _monotone(pd.DataFrame(rows, columns=list(PROFILE_COLUMNS)))
    group = f" ×{replicas} balanced" if replicas > 1 else ""
    source = f"<estimated {model.id} on {gpu.name} tp={tp} share={mps_share}{group}>"
    return validate_profile_frame(frame, source)


def cache_key(
    model: ModelArch, gpu: GpuSpec, tp: int, mps_share: float, rates_rps: Sequence[float] | None,
    lengths: TokenLengths, **params: object,
) -> str:
    """Content hash of everything that determines an estimated profile."""
    payload = {
        "schema": _CACHE_SCHEMA, "aic": aic_version(), "model": asdict(model), "gpu": asdict(gpu),
        "tp": tp, "mps_share": float(mps_share),
        "rates": None if rates_rps is None else [float(r) for r in rates_rps],
        "lengths": lengths.digest(), "mps": asdict(DEFAULT_MPS), "memory": asdict(DEFAULT_MEMORY),
        "contention": [DEFAULT_INTERFERENCE.describe(), ASSUMED_CO_RUNNERS],
        "params": {k: asdict(v) if isinstance(v, EngineConfig) else v for k, v in params.items()},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def default_cache_dir() -> Path:
    """``$ROUTERWISE_CACHE_DIR``, else ``~/.cache/routerwise``."""
    env = os.environ.get("ROUTERWISE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "routerwise"


def estimate_profile_cached(
    model: ModelArch,
    gpu: GpuSpec,
    tp: int,
    mps_share: float,
    rates_rps: Sequence[float] | None,
    lengths: TokenLengths,
    *,
    num_requests: int = 2000,
    seed: int = 0,
    sweep_points: int = 10,
    duration_s: float | None = None,
    engine: EngineConfig | None = None,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
    replicas: int = 1,
) -> ProfileTable:
    """``estimate_profile`` through an on-disk cache (``<cache_dir>/profiles/<hash>.csv``).

    An entry that fails validation (see ``read_cache_entry``) is re-estimated and replaced,
    with a warning naming the file; a cache that cannot be written only costs a warning.
    """
    engine = engine or EngineConfig()
    group = {} if replicas == 1 else {"replicas": replicas}  # one instance: keys as before
    key = cache_key(
        model, gpu, tp, mps_share, rates_rps, lengths, num_requests=num_requests, seed=seed,
        sweep_points=sweep_points, duration_s=duration_s, engine=engine, **group,
    )
    path = (cache_dir or default_cache_dir()) / "profiles" / f"{key}.csv"
    expected = _check_rates(rates_rps) if rates_rps is not None else sweep_points
    cached = read_cache_entry(path, expected)
    if cached is not None:
        log.debug("profile cache hit: %s", path)
        return cached
    table = estimate_profile(
        model, gpu, tp, mps_share, rates_rps, lengths, num_requests=num_requests, seed=seed,
        sweep_points=sweep_points, duration_s=duration_s, engine=engine, progress=progress,
        replicas=replicas,
    )
    write_cache_entry(path, table)
    return table


class _BadEntryError(ValueError):
    """A cache entry that must not be used; the message says why."""


def cache_entry_bytes(table: ProfileTable) -> bytes:
    """A cache entry: one header line (schema, row count, SHA-256 of the body), then the CSV."""
    body = table.frame.to_csv(index=False).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    header = f"{_ENTRY_MAGIC} schema={_CACHE_SCHEMA} rows={len(table.frame)} sha256={digest}\n"
    return header.encode("ascii") + body


def _entry_header(data: bytes) -> tuple[dict[str, str], bytes]:
    if not data:
        raise _BadEntryError("the file is empty")
    line, newline, body = data.partition(b"\n")
    words = line.decode("ascii", errors="replace").split()
    if not newline or " ".join(words[:2]) != _ENTRY_MAGIC:
        raise _BadEntryError("no routerwise cache header on the first line")
    fields = {k: v for k, _, v in (w.partition("=") for w in words[2:])}
    if fields.get("schema") != str(_CACHE_SCHEMA):
        raise _BadEntryError(f"cache schema {fields.get('schema')!r}, expected {_CACHE_SCHEMA}")
    if hashlib.sha256(body).hexdigest() != fields.get("sha256"):
        raise _BadEntryError("checksum mismatch (truncated or modified)")
    return fields, body


def _check_entry_shape(
    frame: pd.DataFrame, rows: str | None, expected: tuple[float, ...] | int
) -> None:
    if tuple(frame.columns) != PROFILE_COLUMNS:
        raise _BadEntryError(f"columns {list(frame.columns)}, expected {list(PROFILE_COLUMNS)}")
    if str(len(frame)) != rows:
        raise _BadEntryError(f"{len(frame)} rows, the header says {rows}")
    if isinstance(expected, int):
        if len(frame) != expected:
            raise _BadEntryError(f"{len(frame)} rows, a sweep has {expected}")
        return
    rates = frame["rate_rps"].to_numpy(dtype=np.float64)
    if rates.shape != (len(expected),) or not np.allclose(rates, expected, rtol=1e-12, atol=0):
        raise _BadEntryError(f"rates {rates.tolist()}, expected {list(expected)}")


def parse_cache_entry(data: bytes, source: str, expected: tuple[float, ...] | int) -> ProfileTable:
    """Validate an entry's header, checksum, columns, rows and rates (sorted distinct rates,
    or the number of sweep points); raises ``ValueError`` saying what is wrong."""
    fields, body = _entry_header(data)
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError) as exc:  # EmptyDataError, bad UTF-8
        raise _BadEntryError(f"unreadable CSV: {exc}") from exc
    _check_entry_shape(frame, fields.get("rows"), expected)
    return validate_profile_frame(frame, source)


def read_cache_entry(path: Path, expected: tuple[float, ...] | int) -> ProfileTable | None:
    """The cached table at ``path``, or ``None`` when absent or invalid (logged as a warning)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("profile cache entry %s cannot be read (%s); re-estimating", path, exc)
        return None
    try:
        return parse_cache_entry(data, str(path), expected)
    except ValueError as exc:
        log.warning("profile cache entry %s is unusable (%s); re-estimating", path, exc)
        return None


def write_cache_entry(path: Path, table: ProfileTable) -> None:
    """Write an entry atomically: a unique temp file in the same directory, fsync, os.replace.

    Readers see the old entry or the whole new one, never a part; concurrent writers of one
    key each replace it with a complete (identical, deterministic) entry.
    """
    data = cache_entry_bytes(table)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        log.warning("profile cache %s is not writable (%s); not caching", path.parent, exc)
        return
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)  # os.replace: atomic within one directory
    except OSError as exc:
        log.warning("profile cache entry %s could not be written (%s); not caching", path, exc)
    finally:
        tmp.unlink(missing_ok=True)


def lengths_from_workload(workload: Workload, model: str | None = None) -> TokenLengths:
    """Token lengths of a workload: its prompts' input lengths and ``model``'s output lengths
    (all models' outputs pooled when ``model`` is not one of its columns)."""
    if workload.input_tokens is None or workload.output_tokens is None:
        raise InputError(f"{workload.source}: the workload has no token lengths")
    inp, out = workload.input_tokens, workload.output_tokens
    if model in workload.models:
        col = out[:, workload.models.index(model)]
        return TokenLengths.pool(inp, col, f"{workload.source} ({model})")
    k = out.shape[1]
    return TokenLengths.pool(np.repeat(inp, k), out.reshape(-1), f"{workload.source} (all models)")
