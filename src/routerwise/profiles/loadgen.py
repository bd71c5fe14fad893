"""The asynchronous open-loop load generator: rates in turn, one task per request.

For each rate, requests are sent at the times the arrival process fixed in advance
(``RatePlan.offsets_s``), whether or not earlier ones have finished (open loop: the offered
load does not drop when the server slows down, as a closed loop's would). An optional
concurrency limit holds requests back in the client (their wait counts in their latency).
A rate ends when every request sent has ended (each is bounded by the client's timeout),
or early when the ``SaturationDetector`` finds the server's queue growing without bound:
then no more requests are sent, the ones in flight are cancelled (rows with
``cancelled: …``), the rate is reported saturated, and — by default — faster rates are
skipped (they are beyond capacity too).

Every request's row goes to ``Observer.record`` as soon as it ends, so a caller can write
rows incrementally; on cancellation (Ctrl-C) the requests in flight are cancelled and their
rows delivered before the ``CancelledError`` propagates. Before the first rate, the
endpoint is checked (a dead one fails within ``CHECK_DEADLINE_S``) and one short probe
request finds which optional body fields the server accepts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import numpy as np

from routerwise.errors import InputError
from routerwise.profiles.arrivals import ArrivalProcess, arrival_offsets_s
from routerwise.profiles.client import (
    ClientSettings,
    RequestRecord,
    StreamingClient,
    check_endpoint,
    probe,
    send_request,
)
from routerwise.profiles.prompts import PromptPool, RequestSpec, draw_requests
from routerwise.profiles.saturation import SaturationDetector, SaturationRule
from routerwise.profiles.transport import LeanTransport, RawStreamer
from routerwise.spec.core import FloatArray

#: The first request of a rate is scheduled this long after the rate starts.
LEAD_S = 0.005
#: How often the rate's monitor reports progress and checks for saturation.
TICK_S = 0.1
#: Tokens asked for by the probe request.
PROBE_TOKENS = 4


@dataclass(frozen=True, slots=True)
class RatePlan:
    """What one rate sends: requests and their send offsets (s from the rate's start)."""

    rate_rps: float
    requests: tuple[RequestSpec, ...]
    offsets_s: FloatArray

    def __post_init__(self) -> None:
        if len(self.requests) != len(self.offsets_s) or not self.requests:
            raise InputError(f"rate {self.rate_rps}: {len(self.requests)} requests for "
                             f"{len(self.offsets_s)} send times")


def plan_rates(rates_rps: Sequence[float], requests_per_rate: int, pool: PromptPool,
               arrival: ArrivalProcess, *, seed: int = 0,
               max_tokens: int | None = None) -> tuple[RatePlan, ...]:
    """One plan per rate, in increasing rate. Every rate uses the same unit-rate gaps
    (common random numbers: curves are smooth in the rate); prompts are drawn per rate, and
    synthetic ones are numbered across rates so none repeats (no prefix-cache hits)."""
    if requests_per_rate < 1:
        raise InputError(f"--requests-per-rate {requests_per_rate}: must be >= 1")
    rates = sorted({float(r) for r in rates_rps})
    if not rates:
        raise InputError("--rates-rps: give at least one rate")
    plans = []
    for i, rate in enumerate(rates):
        offsets = arrival_offsets_s(arrival, requests_per_rate, rate,
                                    np.random.default_rng(seed))
        requests = draw_requests(pool, requests_per_rate, np.random.default_rng([seed, i + 1]),
                                 max_tokens=max_tokens, first_index=i * requests_per_rate)
        plans.append(RatePlan(rate, requests, offsets))
    return tuple(plans)


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """How the generator runs (not what it sends)."""

    concurrency_limit: int | None = None
    saturation: SaturationRule | None = field(default_factory=SaturationRule)  # None: off
    stop_after_saturation: bool = True

    def __post_init__(self) -> None:
        if self.concurrency_limit is not None and self.concurrency_limit < 1:
            raise InputError(f"--concurrency-limit {self.concurrency_limit}: must be >= 1")


@dataclass(frozen=True, slots=True)
class RateResult:
    """One rate's rows and how it ended."""

    rate_rps: float
    planned: int
    sent: int
    records: tuple[RequestRecord, ...]
    started_at: str  # UTC, ISO 8601
    duration_s: float
    saturated: str  # why it stopped early ("" when it ran to the end)


@dataclass(frozen=True, slots=True)
class ProfileRun:
    """The rates measured (in order), the rates skipped as beyond capacity, the settings
    the server accepted and what the run learned about the server."""

    results: tuple[RateResult, ...]
    skipped_rates_rps: tuple[float, ...]
    settings: ClientSettings
    server_models: tuple[str, ...]
    server_header: str
    notes: tuple[str, ...]
    started_at: str


class Observer(Protocol):
    """Live view of a run (progress bar, incremental row writer)."""

    def probed(self, settings: ClientSettings, server_header: str) -> None:
        """The settings the server accepted (before the first rate)."""
        ...

    def rate_started(self, rate_rps: float, planned: int) -> None: ...

    def record(self, record: RequestRecord) -> None: ...

    def progress(self, sent: int, done: int, errors: int, in_flight: int) -> None: ...

    def rate_finished(self, result: RateResult) -> None: ...


class NullObserver:
    """An observer that ignores everything."""

    def probed(self, settings: ClientSettings, server_header: str) -> None:
        return None

    def rate_started(self, rate_rps: float, planned: int) -> None:
        return None

    def record(self, record: RequestRecord) -> None:
        return None

    def progress(self, sent: int, done: int, errors: int, in_flight: int) -> None:
        return None

    def rate_finished(self, result: RateResult) -> None:
        return None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Rate:
    """The mutable state of one running rate."""

    def __init__(self, plan: RatePlan, observer: Observer) -> None:
        self.plan = plan
        self.observer = observer
        self.sent = 0
        self.started = 0  # answered: first token received, or ended without one
        self.errors = 0
        self.records: list[RequestRecord] = []
        self.tasks: set[asyncio.Task[RequestRecord]] = set()
        self.origin = time.perf_counter() + LEAD_S

    def first_token(self) -> None:
        self.started += 1

    def keep(self, record: RequestRecord) -> None:
        self.records.append(record)
        if record.chunks == 0:
            self.started += 1
        if not record.success:
            self.errors += 1
        self.observer.record(record)

    def report(self) -> None:
        done = len(self.records)
        self.observer.progress(self.sent, done, self.errors, self.sent - done)


async def _request(client: StreamingClient, settings: ClientSettings, state: _Rate,
                   i: int, limit: asyncio.Semaphore | None) -> RequestRecord:
    plan = state.plan
    record = await send_request(
        client, settings, plan.requests[i], rate_rps=plan.rate_rps, index=i,
        scheduled_s=float(plan.offsets_s[i]), origin=state.origin,
        on_first=state.first_token, on_cancelled=state.keep, limit=limit)
    state.keep(record)
    return record


async def _dispatch(client: StreamingClient, settings: ClientSettings, state: _Rate,
                    limit: asyncio.Semaphore | None) -> None:
    offsets = state.plan.offsets_s
    behind = 0
    for i in range(len(offsets)):
        delay = state.origin + float(offsets[i]) - time.perf_counter()
        if delay > 0:
            behind = 0
            await asyncio.sleep(delay)
        else:
            behind += 1
            if behind % 64 == 0:
                await asyncio.sleep(0)  # far behind schedule: let responses be read too
        task = asyncio.create_task(_request(client, settings, state, i, limit))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
        state.sent += 1


async def _stop(tasks: Iterable[asyncio.Task[Any]], reason: str) -> None:
    """Cancel ``tasks`` and wait until each has delivered its row."""
    pending = list(tasks)
    for task in pending:
        task.cancel(msg=reason)
    await asyncio.gather(*pending, return_exceptions=True)


async def run_rate(client: StreamingClient, settings: ClientSettings, plan: RatePlan,
                   load: LoadSettings, observer: Observer) -> RateResult:
    """Send ``plan`` open loop; stop early on runaway backlog; every row to ``observer``."""
    started_at = now_iso()
    observer.rate_started(plan.rate_rps, len(plan.requests))
    state = _Rate(plan, observer)
    limit = asyncio.Semaphore(load.concurrency_limit) if load.concurrency_limit else None
    detector = SaturationDetector(load.saturation, plan.rate_rps) if load.saturation else None
    dispatcher = asyncio.create_task(_dispatch(client, settings, state, limit))
    saturated = ""
    try:
        while not dispatcher.done() or state.tasks:
            await asyncio.sleep(TICK_S)
            state.report()
            if detector is not None and not dispatcher.done():
                reason = detector.observe(time.perf_counter() - state.origin, state.sent,
                                          state.started)
                if reason:
                    saturated = reason
                    await _stop([dispatcher], "saturated")
                    await _stop(state.tasks, f"rate stopped early, server saturated ({reason})")
                    break
        if not dispatcher.cancelled():
            await dispatcher  # re-raise a dispatcher failure (a bug), if any
    except asyncio.CancelledError:
        await _stop([dispatcher], "interrupted")
        await _stop(state.tasks, "interrupted")
        raise
    finally:
        state.report()
    result = RateResult(plan.rate_rps, len(plan.requests), state.sent, tuple(state.records),
                        started_at, time.perf_counter() - state.origin, saturated)
    observer.rate_finished(result)
    return result


def _client(settings: ClientSettings, transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s,
                              pool=None),
    )


async def _server_header(client: httpx.AsyncClient, settings: ClientSettings) -> str:
    try:
        response = await client.get(settings.endpoint.models_url, headers=settings.headers(),
                                    timeout=2.0)
    except httpx.HTTPError:
        return ""
    return str(response.headers.get("server", ""))


async def run_profile(settings: ClientSettings, plans: Sequence[RatePlan], *,
                      load: LoadSettings | None = None, observer: Observer | None = None,
                      transport: httpx.AsyncBaseTransport | None = None,
                      started_at: str | None = None) -> ProfileRun:
    """Check the endpoint, probe it, then run every rate in increasing order."""
    load = load or LoadSettings()
    observer = observer or NullObserver()
    started_at = started_at or now_iso()
    ordered = sorted(plans, key=lambda p: p.rate_rps)
    lean = None
    if transport is None:
        transport = lean = LeanTransport()
    async with _client(settings, transport) as client:
        # the rates' requests: the lean streamer on the same pool, unless a transport was
        # injected (then httpx on it, as the checks and the probe always are)
        sender: StreamingClient = (client if lean is None else
                                   RawStreamer(lean, settings.connect_timeout_s))
        models = await check_endpoint(client, settings)
        header = await _server_header(client, settings)
        first = ordered[0].requests[0]
        accepted, notes = await probe(client, settings, RequestSpec(
            first.prompt, min(PROBE_TOKENS, first.max_tokens), first.input_tokens))
        observer.probed(accepted, header)
        if models and settings.model not in models:
            notes = (*notes, f"the server lists models {list(models)}, not "
                             f"{settings.model!r}, but answered the probe")
        results: list[RateResult] = []
        skipped: tuple[float, ...] = ()
        for k, plan in enumerate(ordered):
            result = await run_rate(sender, accepted, plan, load, observer)
            results.append(result)
            if result.saturated and load.stop_after_saturation:
                skipped = tuple(p.rate_rps for p in ordered[k + 1:])
                break
    return ProfileRun(tuple(results), skipped, accepted, models, header, notes, started_at)

