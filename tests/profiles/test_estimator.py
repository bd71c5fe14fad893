"""The estimator against its own source (aiconfigurator), physics, bad input and the cache."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from routerwise.errors import InfeasibleError, InputError
from routerwise.profiles.aic_steps import compile_engine
from routerwise.profiles.engine_sim import backlog_throughput
from routerwise.profiles.estimator import (
    PROFILE_COLUMNS,
    SWEEP_HIGH_FRACTION,
    InstanceShape,
    TokenLengths,
    estimate_profile,
    estimate_profile_cached,
    run_rate,
    saturation_rps,
    steady_run,
    sustained_capacity,
)
from routerwise.profiles.memory import MemoryModel
from routerwise.spec.catalog import get_gpu, get_model

ISL, OSL = 512, 128
LENGTHS = TokenLengths.fixed(ISL, OSL)
CASES = [("llama-3.1-8b", "a100"), ("yi-34b", "h100")]


@pytest.mark.parametrize(("model_id", "gpu_name"), CASES)
def test_calibration_against_aiconfigurator(model_id: str, gpu_name: str) -> None:
    model, gpu = get_model(model_id), get_gpu(gpu_name)
    tp = 1 if model_id == "llama-3.1-8b" else 2
    shape = InstanceShape(model, gpu, tp, 1.0)
    steps, cap = shape.step_model(), shape.kv_capacity_tokens()
    handle = compile_engine(model, gpu.aic_system, tp)
    # very low rate: one request at a time
    low = run_rate(shape, steps, cap, 0.001, LENGTHS, 30, seed=0)
    assert np.mean(low.ttft_ms) == pytest.approx(handle.predict_prefill_latency(1, ISL), rel=0.05)
    assert np.nanmean(low.tpot_ms) == pytest.approx(
        handle.decode_step_latency(1, ISL, OSL), rel=0.05
    )
    # saturation: throughput vs aiconfigurator's static batch at the batch size reached
    n = 1200
    burst = run_rate(shape, steps, cap, math.inf, LENGTHS, n, seed=0)
    batch = round(burst.mean_decode_batch)
    _, _, total_ms = handle.run_static(batch_size=batch, isl=ISL, osl=OSL)
    static_rps = batch / (total_ms / 1e3)
    rps, _ = backlog_throughput(burst, np.zeros(n), np.full(n, OSL), OSL, 0.25)
    assert rps == pytest.approx(static_rps, rel=0.15)


def _profile(model_id: str, tp: int = 1, share: float = 1.0, gpu: str = "a100",
             rates: tuple[float, ...] = (0.2, 2.0, 6.0)):
    return estimate_profile(get_model(model_id), get_gpu(gpu), tp, share, rates, LENGTHS,
                            num_requests=300).to_frame()


def test_sweep_columns_and_monotone_curves() -> None:
    frame = estimate_profile(get_model("mistral-7b"), get_gpu("h100"), 1, 1.0, None, LENGTHS,
                             num_requests=300, sweep_points=6).to_frame()
    assert tuple(frame.columns) == PROFILE_COLUMNS
    assert len(frame) == 6 and (frame["provenance"] == "estimated").all()
    for col in ("ttft_mean_ms", "ttft_p90_ms", "ttft_p99_ms", "tpot_mean_ms", "e2e_mean_ms"):
        assert np.all(np.diff(frame[col]) >= 0), col
    assert frame["ttft_mean_ms"].iloc[-1] > frame["ttft_mean_ms"].iloc[0]


def test_physics() -> None:
    base = _profile("mistral-7b")
    assert (_profile("mistral-7b", tp=2)["tpot_mean_ms"].iloc[0] < base["tpot_mean_ms"].iloc[0])
    assert (_profile("mistral-7b", share=0.5)["ttft_mean_ms"].iloc[0]
            > base["ttft_mean_ms"].iloc[0])
    assert (_profile("llama-2-13b")["ttft_mean_ms"] > base["ttft_mean_ms"]).all()
    assert (_profile("llama-2-13b")["tpot_mean_ms"] > base["tpot_mean_ms"]).all()


def test_more_kv_memory_raises_saturation() -> None:
    # Llama-2-13B has no GQA: KV memory is what limits its batch on one A100
    model, gpu, long = get_model("llama-2-13b"), get_gpu("a100"), TokenLengths.fixed(1024, 512)
    small = InstanceShape(model, gpu, 1, 1.0, memory=MemoryModel(gpu_memory_utilization=0.6))
    big = InstanceShape(model, gpu, 1, 1.0)
    assert big.kv_capacity_tokens() > 2 * small.kv_capacity_tokens()
    assert saturation_rps(big, long, 400) > 1.3 * saturation_rps(small, long, 400)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [({"tp": 3}, InputError, r"tp=3 must divide"),
     ({"mps_share": 1.5}, InputError, r"mps_share=1.5 must be a fraction"),
     ({"rates_rps": (1.0, 0.0)}, InputError, r"rate_rps=0.0 must be a positive"),
     ({"model": "llama-2-70b", "gpu": "l40s", "tp": 1}, InfeasibleError, r"needs .* GiB")],
)
def test_bad_input(kwargs: dict[str, object], error: type[Exception], pattern: str) -> None:
    args: dict[str, object] = {"model": "mistral-7b", "gpu": "a100", "tp": 1, "mps_share": 1.0,
                               "rates_rps": (1.0,)}
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        estimate_profile(get_model(str(args["model"])), get_gpu(str(args["gpu"])),
                         args["tp"], args["mps_share"], args["rates_rps"], LENGTHS)  # type: ignore[arg-type]


def test_bad_token_counts() -> None:
    with pytest.raises(InputError, match=r"input_tokens=0 must be a positive"):
        TokenLengths.fixed(0, 10)
    with pytest.raises(InputError, match=r"output_tokens\[1\]=-3.0 must be >= 1"):
        TokenLengths.pool([10, 10], [5, -3], "w.csv")


def test_workload_lengths_and_cache(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pool = TokenLengths.pool(rng.integers(50, 900, 200), rng.integers(10, 300, 200), "pool")
    args = (get_model("qwen2.5-7b"), get_gpu("h200"), 1, 1.0, (1.0, 5.0), pool)
    first = estimate_profile_cached(*args, num_requests=200, cache_dir=tmp_path)
    files = list((tmp_path / "profiles").glob("*.csv"))
    assert len(files) == 1
    again = estimate_profile_cached(*args, num_requests=200, cache_dir=tmp_path)
    np.testing.assert_allclose(again.to_frame()["ttft_mean_ms"], first.to_frame()["ttft_mean_ms"])
    other = estimate_profile_cached(*args, num_requests=200, seed=1, cache_dir=tmp_path)
    assert len(list((tmp_path / "profiles").glob("*.csv"))) == 2
    assert other.to_frame()["ttft_mean_ms"].iloc[0] > 0


def test_sustained_capacity_is_what_a_poisson_stream_sustains() -> None:
    """Below the sustained capacity a long Poisson run is stable; above it the queue runs
    away and the run is flagged; a rate list past it marks that row and every faster one."""
    rng = np.random.default_rng(3)
    pool = TokenLengths.pool(rng.integers(50, 600, 400), rng.pareto(1.5, 400) * 100 + 20, "tail")
    model, gpu = get_model("mistral-7b"), get_gpu("a100")
    shape = InstanceShape(model, gpu, 1, 0.5)
    capacity = sustained_capacity(shape, pool, 800)
    assert capacity.rps > 0 and capacity.lifetime_s > 0
    steps, cap = shape.step_model(), shape.kv_capacity_tokens()
    assert not steady_run(shape, steps, cap, 0.8 * capacity.rps, pool, 3000, 0).unstable
    assert steady_run(shape, steps, cap, 1.3 * capacity.rps, pool, 3000, 0).unstable
    rates = (0.5 * capacity.rps, 1.3 * capacity.rps, 1.5 * capacity.rps)
    frame = estimate_profile(model, gpu, 1, 0.5, rates, pool, num_requests=300).to_frame()
    assert frame["beyond_capacity"].tolist() == [False, True, True]


def test_sweep_ends_below_the_sustained_capacity() -> None:
    model, gpu = get_model("mistral-7b"), get_gpu("h100")
    capacity = sustained_capacity(InstanceShape(model, gpu, 1, 1.0), LENGTHS, 300)
    frame = estimate_profile(model, gpu, 1, 1.0, None, LENGTHS, num_requests=300,
                             sweep_points=4).to_frame()
    assert frame["rate_rps"].iloc[-1] == pytest.approx(SWEEP_HIGH_FRACTION * capacity.rps)
    assert not frame["beyond_capacity"].any()
    # steady state: throughput of a stable rate is the offered rate
    np.testing.assert_allclose(frame["throughput_rps"], frame["rate_rps"], rtol=0.1)


def test_a_shape_below_a_whole_gpu_is_profiled_next_to_a_busy_co_runner() -> None:
    """``profile_steps`` charges the simulator's bandwidth contention of one co-runner whose
    step is like its own: decode (bandwidth-bound) slows by ~bandwidth · (1 − f)²; a whole
    GPU, or no contention model, is profiled alone."""
    from routerwise.profiles.interference import NoInterference

    model, gpu = get_model("mistral-7b"), get_gpu("a100")
    half = InstanceShape(model, gpu, 1, 0.5)
    alone, profiled = half.step_model(), half.profile_steps()
    f = half.mps.compute_fraction(8, gpu.ridge_tokens)
    expected = half.contention.factor(f, 1 - f, f)
    assert profiled.decode_ms(8, 4096) == pytest.approx(alone.decode_ms(8, 4096) * expected)
    assert profiled.decode_ms(8, 4096) > 1.15 * alone.decode_ms(8, 4096)
    whole = InstanceShape(model, gpu, 1, 1.0)
    assert whole.profile_steps().decode_ms(8, 4096) == whole.step_model().decode_ms(8, 4096)
    quiet = InstanceShape(model, gpu, 1, 0.5, contention=NoInterference())
    assert quiet.profile_steps().decode_ms(8, 4096) == alone.decode_ms(8, 4096)
