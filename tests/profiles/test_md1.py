"""Correctness of the measurement against a known service law: the synthetic server with one
worker and a fixed service time D per request, fed Poisson arrivals, is an M/D/1 queue, so
its mean time to first token is ``D (1 + ρ / (2 (1 − ρ)))`` at utilisation ``ρ = λ D``.

The server sends a role-only chunk at once: a client that took it for the first token would
measure ~0 and fail here, as would one that timed requests from when it happened to send
them rather than from when they were due (under lag), or that lost or mis-paired rows.

What the queue does not contain is the path itself: the client's send lag, the loopback,
the server's own Python and its timer's wake-up after D (the event loop rounds sleeps up to
the millisecond), ~1 ms on a quiet 2-core machine but several ms on one shared with other
busy processes. It is measured in the same run, at the same rate, by a companion server
that differs only in having no queue: the same D with unlimited workers (M/D/∞, whose
time to first token is exactly D plus the path). So

    path = mean TTFT(M/D/∞) − D,    expected M/D/1 mean = theory + path,

and the test checks the queueing part on a busy machine too. The raw numbers (measured,
theory, path, and the raw relative error without the path) are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math

import numpy as np
import pytest

from routerwise.profiles.arrivals import Poisson
from routerwise.profiles.client import ClientSettings, Endpoint
from routerwise.profiles.loadgen import LoadSettings, ProfileRun, plan_rates, run_profile
from routerwise.profiles.prompts import fixed_pool
from routerwise.profiles.synthetic_server import ServerConfig, running_server

SERVICE_MS = 10.0


def md1_mean_ms(rho: float, service_ms: float = SERVICE_MS) -> float:
    return service_ms * (1 + rho / (2 * (1 - rho)))


def lindley_mean_ms(run: ProfileRun, service_ms: float = SERVICE_MS) -> float:
    """The M/D/1 queue's mean sojourn for the send times this run actually had: what a
    perfect measurement of this very sample would give, before the path's overhead."""
    records = sorted(run.results[0].records, key=lambda r: r.scheduled_s + r.send_lag_ms / 1e3)
    free, total = -math.inf, 0.0
    for r in records:
        sent = r.scheduled_s + r.send_lag_ms / 1e3
        free = max(sent, free) + service_ms / 1e3
        total += (free - sent) * 1e3
    return total / len(records)


MD1 = ServerConfig(service_ms=SERVICE_MS, workers=1, tokens=2)
NO_QUEUE = ServerConfig(service_ms=SERVICE_MS, workers=0, tokens=2)  # M/D/∞: D + the path


async def measure(jobs: list[tuple[ServerConfig, float, int]]) -> list[ProfileRun]:
    """One server per job (subprocesses), all profiled at once from this process."""
    async def one(url: str, rate: float, n: int) -> ProfileRun:
        settings = ClientSettings(Endpoint.parse(url), "synthetic", timeout_s=30)
        plans = plan_rates([rate], n, fixed_pool(16), Poisson(), seed=0, max_tokens=2)
        return await run_profile(settings, plans, load=LoadSettings(saturation=None))

    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(running_server(config)) for config, _, _ in jobs]
        return list(await asyncio.gather(*(one(u, r, n) for u, (_, r, n) in
                                           zip(urls, jobs, strict=True))))


def mean_ttft(run: ProfileRun) -> float:
    records = run.results[0].records
    assert all(r.success for r in records), {r.error for r in records}
    return float(np.mean([r.ttft_ms for r in records]))


def path_ms(no_queue: ProfileRun) -> float:
    """The path's mean latency: the no-queue server's mean TTFT less its service time."""
    return mean_ttft(no_queue) - SERVICE_MS


def _report(rho: float, run: ProfileRun, path: float) -> tuple[float, float, float]:
    got, theory, sample = mean_ttft(run), md1_mean_ms(rho), lindley_mean_ms(run)
    print(f"rho {rho}: measured {got:.2f} ms; M/D/1 {theory:.2f} ms + path {path:.2f} ms = "
          f"{theory + path:.2f} ms ({got / (theory + path) - 1:+.1%}; without the path "
          f"{got / theory - 1:+.1%}); this sample's queue {sample:.2f} ms + path "
          f"({got / (sample + path) - 1:+.1%})")
    return got, theory, sample


def test_md1_sample_matches_its_own_queue() -> None:
    """Fast check at ρ = 0.5: the measured mean equals the queue's on this very sample."""
    rate = 0.5 / (SERVICE_MS / 1e3)
    run, no_queue = asyncio.run(measure([(MD1, rate, 300), (NO_QUEUE, rate, 300)]))
    assert len(run.results[0].records) == 300
    path = path_ms(no_queue)
    assert path > 0, "the no-queue server answered faster than its service time"
    got, _, sample = _report(0.5, run, path)
    assert got == pytest.approx(sample + path, rel=0.25)  # a sanity bound; 15% is below


@pytest.mark.slow
def test_md1_mean_ttft_matches_queueing_theory() -> None:
    """ρ = 0.3, 0.5, 0.7: within 15% of the M/D/1 formula (and of this sample's queue), each
    with the path measured at its own rate."""
    rhos = (0.3, 0.5, 0.7)
    rates = [rho / (SERVICE_MS / 1e3) for rho in rhos]
    counts = (900, 1500, 2100)  # 30 s each, all at once
    runs = asyncio.run(measure(
        [(MD1, r, n) for r, n in zip(rates, counts, strict=True)]
        + [(NO_QUEUE, r, n) for r, n in zip(rates, counts, strict=True)]))
    for k, rho in enumerate(rhos):
        path = path_ms(runs[k + len(rhos)])
        assert path > 0, "the no-queue server answered faster than its service time"
        got, theory, sample = _report(rho, runs[k], path)
        assert got == pytest.approx(theory + path, rel=0.15), (rho, got, theory, path)
        assert got == pytest.approx(sample + path, rel=0.15), (rho, got, sample, path)
