"""Correctness of the measurement against a known service law: the synthetic server with one
worker and a fixed service time D per request, fed Poisson arrivals, is an M/D/1 queue, so
its mean time to first token is ``D (1 + ρ / (2 (1 − ρ)))`` at utilisation ``ρ = λ D``.

The server sends a role-only chunk at once: a client that took it for the first token would
measure ~0 and fail here, as would one that timed requests from when it happened to send
them rather than from when they were due (under lag), or that lost or mis-paired rows.
"""

from __future__ import annotations

import asyncio
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
    """The M/D/1 queue's mean TTFT for the send times this run actually had (plus each
    request's send lag): what a perfect measurement of this sample would give."""
    records = sorted(run.results[0].records, key=lambda r: r.scheduled_s + r.send_lag_ms / 1e3)
    free, total = -math.inf, 0.0
    for r in records:
        sent = r.scheduled_s + r.send_lag_ms / 1e3
        free = max(sent, free) + service_ms / 1e3
        total += (free - r.scheduled_s) * 1e3
    return total / len(records)


async def measure(rates_and_counts: list[tuple[float, int]]) -> list[ProfileRun]:
    """One M/D/1 server per rate (subprocesses), all profiled at once from this process."""
    async def one(url: str, rate: float, n: int) -> ProfileRun:
        settings = ClientSettings(Endpoint.parse(url), "synthetic", timeout_s=30)
        plans = plan_rates([rate], n, fixed_pool(16), Poisson(), seed=0, max_tokens=2)
        return await run_profile(settings, plans, load=LoadSettings(saturation=None))

    configs = [ServerConfig(service_ms=SERVICE_MS, workers=1, tokens=2)] * len(rates_and_counts)
    with running_server(configs[0]) as a, running_server(configs[0]) as b, \
            running_server(configs[0]) as c:
        urls = [a, b, c][:len(rates_and_counts)]
        return list(await asyncio.gather(*(one(u, r, n) for u, (r, n) in
                                           zip(urls, rates_and_counts, strict=True))))


def mean_ttft(run: ProfileRun) -> float:
    records = run.results[0].records
    assert all(r.success for r in records), {r.error for r in records}
    return float(np.mean([r.ttft_ms for r in records]))


def test_md1_sample_matches_its_own_queue() -> None:
    """Fast check at ρ = 0.5: the measured mean equals the queue's on this very sample."""
    (run,) = asyncio.run(measure([(0.5 / (SERVICE_MS / 1e3), 300)]))
    assert len(run.results[0].records) == 300
    assert mean_ttft(run) == pytest.approx(lindley_mean_ms(run), rel=0.10)


@pytest.mark.slow
def test_md1_mean_ttft_matches_queueing_theory() -> None:
    """ρ = 0.3, 0.5, 0.7: within 15% of the M/D/1 formula (and of this sample's queue)."""
    rhos = (0.3, 0.5, 0.7)
    runs = asyncio.run(measure([(rho / (SERVICE_MS / 1e3), n)
                                for rho, n in zip(rhos, (900, 1500, 2100), strict=True)]))
    for rho, run in zip(rhos, runs, strict=True):
        got, theory = mean_ttft(run), md1_mean_ms(rho)
        assert got == pytest.approx(theory, rel=0.15), (rho, got, theory)
        assert got == pytest.approx(lindley_mean_ms(run), rel=0.10), rho
