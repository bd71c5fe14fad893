"""The engine simulation with a synthetic step model (no aiconfigurator): fast invariants."""

from __future__ import annotations

import numpy as np
import pytest

from routerwise.errors import InfeasibleError
from routerwise.profiles.engine_sim import EngineConfig, simulate


class LinearSteps:
    """Step time = 5 ms + 0.01 ms per token + 0.001 ms per KV token of each decode."""

    def decode_ms(self, seqs: int, kv: int) -> float:
        return 5.0 + 0.01 * seqs + 0.001 * kv * seqs / 100

    def mixed_ms(self, chunks: list[tuple[int, int]], seqs: int, kv: int) -> float:
        return 5.0 + 0.01 * (seqs + sum(c for c, _ in chunks)) + 0.001 * kv * seqs / 100


def _run(rate: float, n: int = 300, cap: int = 100_000, cfg: EngineConfig | None = None):
    rng = np.random.default_rng(0)
    arrivals = np.cumsum(rng.exponential(1.0, n)) / rate
    return simulate(arrivals, np.full(n, 200.0), np.full(n, 50.0), cap, cfg or EngineConfig(),
                    LinearSteps())


def test_single_request_latencies_are_exact() -> None:
    res = simulate(np.array([0.0]), np.array([200.0]), np.array([50.0]), 10_000, EngineConfig(),
                   LinearSteps())
    assert res.ttft_ms[0] == pytest.approx(5.0 + 2.0)
    assert res.tpot_ms[0] == pytest.approx(LinearSteps().decode_ms(1, 226), rel=0.01)
    assert res.e2e_ms[0] == pytest.approx(res.ttft_ms[0] + 49 * res.tpot_ms[0])


def test_every_request_completes_and_latency_grows_with_rate() -> None:
    low, high = _run(5.0), _run(80.0)
    for res in (low, high):
        assert np.all(np.isfinite(res.ttft_ms)) and np.all(res.e2e_ms >= res.ttft_ms)
    assert np.mean(high.ttft_ms) >= np.mean(low.ttft_ms)
    assert np.mean(high.tpot_ms) > np.mean(low.tpot_ms)
    assert high.mean_decode_batch > low.mean_decode_batch


def test_small_kv_cache_preempts_and_still_finishes() -> None:
    res = _run(200.0, cap=2_000)
    assert res.preemptions > 0
    assert np.all(np.isfinite(res.e2e_ms))


def test_chunked_prefill_splits_long_prompts() -> None:
    cfg = EngineConfig(max_num_batched_tokens=64)
    res = simulate(np.array([0.0]), np.array([200.0]), np.array([2.0]), 10_000, cfg, LinearSteps())
    assert res.ttft_ms[0] == pytest.approx(4 * 5.0 + 0.01 * 200)


def test_request_longer_than_kv_cache_is_infeasible() -> None:
    with pytest.raises(InfeasibleError, match="exceeds the KV cache"):
        simulate(np.array([0.0]), np.array([5000.0]), np.array([10.0]), 1000, EngineConfig(),
                 LinearSteps())


def test_replicas_alone_behave_like_one_engine_and_balancing_beats_an_even_split() -> None:
    """``simulate_replicas``: sparse arrivals never meet, so every request sees one idle
    engine; under load, least-outstanding balancing over 4 engines is at least as fast as
    each engine serving a quarter of the traffic alone (and finishes every request)."""
    from routerwise.profiles.engine_sim import simulate_replicas

    n, cfg = 400, EngineConfig(max_num_seqs=8)
    rng = np.random.default_rng(1)
    isl, osl = rng.integers(50, 2000, n).astype(float), rng.integers(5, 200, n).astype(float)
    sparse = np.arange(n) * 100.0
    one = simulate(sparse, isl, osl, 100_000, cfg, LinearSteps())
    four = simulate_replicas(sparse, isl, osl, 100_000, cfg, LinearSteps(), 4)
    np.testing.assert_allclose(four.ttft_ms, one.ttft_ms)
    np.testing.assert_allclose(four.e2e_ms, one.e2e_ms)
    busy = np.cumsum(rng.exponential(1.0, n)) / 4 / 12.0  # 12 req/s per engine: queues
    grouped = simulate_replicas(busy, isl, osl, 100_000, cfg, LinearSteps(), 4)
    assert np.all(np.isfinite(grouped.e2e_ms))
    pick = rng.integers(0, 4, n)  # the plan's even split: each replica a Poisson quarter
    split = np.concatenate([
        simulate(busy[pick == k], isl[pick == k], osl[pick == k], 100_000, cfg,
                 LinearSteps()).ttft_ms for k in range(4)])
    assert float(np.mean(grouped.ttft_ms)) < float(np.mean(split))


class KvBoundSteps:
    """Decode steps dominated by reading the KV cache: 1 ms + 1 ms per 1000 KV tokens."""

    def decode_ms(self, seqs: int, kv: int) -> float:
        return 1.0 + seqs * kv / 1000

    def mixed_ms(self, chunks: list[tuple[int, int]], seqs: int, kv: int) -> float:
        return 2.0 + 0.01 * sum(c for c, _ in chunks) + seqs * kv / 1000


def test_a_decode_jump_does_not_run_past_the_next_arrival() -> None:
    """Regression: a jump was sized with its first step's time and then run at its
    midpoint's, so over a long gap with one long decode (KV growing) it overshot the next
    arrival by seconds — that request waited for its prefill, and an estimated curve's
    lowest-rate point read 245 ms against 54 ms at ten times the rate."""
    arrivals = np.array([0.0, 30.0])
    res = simulate(arrivals, np.array([10.0, 100.0]), np.array([40_000.0, 2.0]), 100_000,
                   EngineConfig(), KvBoundSteps())
    prefill = KvBoundSteps().mixed_ms([(100, 100)], 1, 40_000)  # an upper bound on it
    one_step = KvBoundSteps().decode_ms(1, 40_000)
    assert res.ttft_ms[1] <= prefill + one_step
