"""Calibrate and check the MPS interference model against the public measurement.

Two vLLM instances on one A100 at 60% SMs / 50% memory each, against dedicated GPUs, showed
TPOT +19.5%, TTFT +1.4%, throughput −7.5% (cited in issue 9). This script simulates the same
experiment with the cluster simulator: two Mistral-7B instances (tp1, 60% share) on one
A100-SXM-80GB, each at the same Poisson rate, against one instance on a dedicated GPU at that
rate (and, for throughput, both saturated by a burst). It prints the three ratios for the
default ``bandwidth`` parameter and for a scan, so the default can be re-fitted.

    .venv/bin/python benchmarks/interference.py [--rate-rps 4] [--duration-s 600]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from routerwise.profiles.engine_sim import EngineConfig
from routerwise.profiles.estimator import InstanceShape, TokenLengths, saturation_rps
from routerwise.simulate.arrivals import Poisson
from routerwise.simulate.cluster import InstanceModel, Requests, run_cluster
from routerwise.simulate.interference import (
    DEFAULT_INTERFERENCE,
    BandwidthContention,
    InterferenceModel,
    NoInterference,
)
from routerwise.spec.catalog import get_gpu, get_model

MEASURED = {"tpot": 1.195, "ttft": 1.014, "throughput": 0.925}
INPUT_TOKENS, OUTPUT_TOKENS = 512, 256


def _instance(share: float, model_index: int) -> InstanceModel:
    shape = InstanceShape(get_model("mistral-7b"), get_gpu("A100-SXM-80GB"), 1, share)
    return InstanceModel(model_index, (0,), shape.kv_capacity_tokens(), shape.step_model(),
                         shape.gpu.ridge_tokens, shape.mps, EngineConfig())


def _requests(rate: float, duration_s: float, pairs: int, burst: int, seed: int) -> Requests:
    rng = np.random.default_rng(seed)
    per = [np.zeros(burst) if burst else Poisson().times_s(rate, duration_s, rng)
           for _ in range(pairs)]
    times = np.concatenate(per)
    models = np.concatenate([np.full(len(t), k) for k, t in enumerate(per)])
    order = np.argsort(times, kind="stable")
    n = len(times)
    return Requests(times[order], models[order].astype(np.int64),
                    np.full(n, INPUT_TOKENS, dtype=np.int64),
                    np.full(n, OUTPUT_TOKENS, dtype=np.int64))


def _run(share: float, pairs: int, itf: InterferenceModel, rate: float, duration_s: float,
         burst: int = 0) -> tuple[float, float, float]:
    """Mean TTFT (ms), mean TPOT (ms) and throughput (req/s per instance)."""
    instances = [_instance(share, k) for k in range(pairs)]
    req = _requests(rate, duration_s, pairs, burst, seed=1)
    res = run_cluster(instances, req, pairs, itf, math.inf)
    keep = req.arrival_s >= (0 if burst else 0.1 * duration_s)
    finish = req.arrival_s + res.e2e_ms / 1e3
    if burst:
        f = np.sort(finish)
        lo, hi = int(0.1 * len(f)), int(0.9 * len(f))
        thr = (hi - lo) / (f[hi] - f[lo]) / pairs
    else:
        thr = float(keep.sum()) / (0.9 * duration_s) / pairs
    return float(np.nanmean(res.ttft_ms[keep])), float(np.nanmean(res.tpot_ms[keep])), thr


def ratios(itf: InterferenceModel, rate: float, duration_s: float, reference_share: float
           ) -> dict[str, float]:
    """Co-located (2 × 60%) over one instance alone at ``reference_share``: TTFT, TPOT (at
    ``rate`` each) and throughput (a burst)."""
    ttft_c, tpot_c, _ = _run(0.6, 2, itf, rate, duration_s)
    ttft_d, tpot_d, _ = _run(reference_share, 1, NoInterference(), rate, duration_s)
    _, _, thr_c = _run(0.6, 2, itf, rate, duration_s, burst=1500)
    _, _, thr_d = _run(reference_share, 1, NoInterference(), rate, duration_s, burst=1500)
    return {"ttft": ttft_c / ttft_d, "tpot": tpot_c / tpot_d, "throughput": thr_c / thr_d}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate-rps", type=float, default=None,
                        help="per-instance rate (default: half the 60%%-share saturation)")
    parser.add_argument("--duration-s", type=float, default=600.0)
    args = parser.parse_args()
    lengths = TokenLengths.fixed(INPUT_TOKENS, OUTPUT_TOKENS)
    shape = InstanceShape(get_model("mistral-7b"), get_gpu("A100-SXM-80GB"), 1, 0.6)
    rate = args.rate_rps or 0.5 * saturation_rps(shape, lengths)
    print(f"Mistral-7B tp1 on A100-SXM-80GB, {INPUT_TOKENS} in / {OUTPUT_TOKENS} out tokens, "
          f"{rate:.3g} req/s per instance, {args.duration_s:g} s")
    candidates: list[InterferenceModel] = [NoInterference(), DEFAULT_INTERFERENCE]
    candidates += [BandwidthContention(b) for b in (0.15, 0.35)]
    for ref, title in ((0.6, "the same instance alone at 60% (interference only)"),
                       (1.0, "a dedicated GPU (SM cap + interference)")):
        print(f"\nco-located 2 × 60% against {title}")
        print(f"{'model':<46} {'TTFT ×':>7} {'TPOT ×':>7} {'thr ×':>7}")
        print(f"{'measured (public, vLLM on A100)':<46} {MEASURED['ttft']:>7.3f} "
              f"{MEASURED['tpot']:>7.3f} {MEASURED['throughput']:>7.3f}")
        for itf in candidates:
            r = ratios(itf, rate, args.duration_s, ref)
            label = itf.describe() + (" [default]" if itf == DEFAULT_INTERFERENCE else "")
            print(f"{label:<46} {r['ttft']:>7.3f} {r['tpot']:>7.3f} {r['throughput']:>7.3f}")


if __name__ == "__main__":
    main()
