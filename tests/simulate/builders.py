"""A small, real plan for simulator tests, written without running the search.

Two catalog models (Llama-3.1-8B as ``a``, Qwen2.5-7B as ``b``) on H100s, a 200-prompt
workload CSV with scores, truth labels and token lengths, routing prices that send traffic
to both, and profiles estimated by the real estimator (cached under ``profile_cache``) for
exactly the shapes placed — so the plan's predictions are what the planner would predict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from routerwise.profiles.estimator import TokenLengths, estimate_profile_cached
from routerwise.simulate.router import routing_probabilities
from routerwise.spec.catalog import get_gpu, get_model
from routerwise.spec.plan import PLAN_VERSION

GPU = "H100-SXM"
CATALOG = {"a": "llama-3.1-8b", "b": "qwen2.5-7b"}
NUM_PROMPTS = 200


@dataclass(frozen=True)
class Placed:
    model: str
    tp: int
    mps_share: float
    gpu_ids: tuple[int, ...]


@dataclass(frozen=True)
class PlanSpec:
    """What to put in the test plan."""

    instances: tuple[Placed, ...]
    prices: dict[str, float]
    rate_rps: float = 6.0
    slo_ms: float = 200.0
    num_gpus: int = 2
    baselines: dict[str, tuple[Placed, ...]] = field(default_factory=dict)


def write_workload(path: Path, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = NUM_PROMPTS
    frame = pd.DataFrame({
        "prompt_id": [f"p{i}" for i in range(n)],
        "a": rng.uniform(0.2, 0.8, n).round(4),
        "b": rng.uniform(0.2, 0.8, n).round(4),
        "truth:a": rng.integers(0, 2, n).astype(float),
        "truth:b": rng.integers(0, 2, n).astype(float),
        "input_tokens": rng.integers(50, 400, n),
        "output_tokens:a": rng.integers(10, 120, n),
        "output_tokens:b": rng.integers(10, 120, n),
    })
    frame.to_csv(path, index=False)
    return frame


def _curve_rows(model: str, tp: int, share: float, lengths: TokenLengths,
                cache: Path) -> pd.DataFrame:
    table = estimate_profile_cached(get_model(CATALOG[model]), get_gpu(GPU), tp, share, None,
                                    lengths, num_requests=400, sweep_points=6, cache_dir=cache)
    frame = table.frame[["rate_rps", "ttft_mean_ms"]].copy()
    frame.insert(0, "model", model)
    frame["gpu"], frame["tp"], frame["mps_share"] = GPU, tp, share
    frame["provenance"] = "estimated"
    return frame


def _predict(frame: pd.DataFrame, model: str, placed: tuple[Placed, ...], rate: float
             ) -> float | None:
    mine = [p for p in placed if p.model == model]
    if not mine or rate <= 0:
        return None
    p = mine[0]
    rows = frame[(frame["model"] == model) & (frame["tp"] == p.tp)
                 & np.isclose(frame["mps_share"], p.mps_share)]
    rates = rows["rate_rps"].to_numpy() * len(mine)
    if rate > rates[-1]:
        return None
    return float(np.interp(rate, rates, rows["ttft_mean_ms"].to_numpy()))


def _setup(placed: tuple[Placed, ...]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    setup = [{"model": p.model, "gpu_type": GPU, "tp": p.tp, "mps_share": p.mps_share,
              "gpu_ids": list(p.gpu_ids)} for p in placed]
    deps: dict[str, dict[str, Any]] = {}
    for p in placed:
        d = deps.setdefault(p.model, {"model": p.model, "gpu_type": GPU, "tp": p.tp,
                                      "mps_share": p.mps_share, "replicas": 0})
        d["replicas"] += 1
    return setup, list(deps.values())


def _routing(frame: pd.DataFrame, prices: dict[str, float]) -> tuple[dict[str, float], float,
                                                                    float]:
    models = tuple(prices)
    scores = frame[list(models)].to_numpy(dtype=float)
    probs = routing_probabilities(scores, np.array([prices[m] for m in models]), 1e-4)
    fractions = dict(zip(models, probs.mean(axis=0).tolist(), strict=True))
    quality = float((probs * scores).sum() / len(frame))
    truth = frame[[f"truth:{m}" for m in models]].to_numpy(dtype=float)
    return fractions, quality, float((probs * truth).sum() / len(frame))


def _profiles(spec: PlanSpec, workload: pd.DataFrame, cache: Path) -> pd.DataFrame:
    shapes = {(p.model, p.tp, p.mps_share) for p in spec.instances}
    for placed in spec.baselines.values():
        shapes |= {(p.model, p.tp, p.mps_share) for p in placed}
    frames = []
    for model, tp, share in sorted(shapes):
        lengths = TokenLengths.pool(workload["input_tokens"], workload[f"output_tokens:{model}"],
                                    f"test ({model})")
        frames.append(_curve_rows(model, tp, share, lengths, cache))
    return pd.concat(frames, ignore_index=True)


def _per_model(profiles: pd.DataFrame, placed: tuple[Placed, ...], fractions: dict[str, float],
               rate: float) -> dict[str, Any]:
    out = {}
    for m in CATALOG:
        dep = [p for p in placed if p.model == m]
        r = rate * fractions.get(m, 0.0)
        out[m] = {"deployment": f"{len(dep)}×tp{dep[0].tp}@{dep[0].mps_share * 100:g}%"
                  if dep else None, "rate_rps": r,
                  "ttft_mean_ms": _predict(profiles, m, placed, r),
                  "capacity_rps": None, "utilisation": None}
    return out


def _baselines(spec: PlanSpec, workload: pd.DataFrame) -> dict[str, Any]:
    out = {}
    for name, placed in spec.baselines.items():
        setup, deps = _setup(placed)
        prices = dict.fromkeys(dict.fromkeys(p.model for p in placed), 0.0)
        fractions, quality, truth = _routing(workload, prices)
        out[name] = {"feasible": True, "quality": quality, "quality_truth": truth,
                     "setup": setup, "deployments": deps, "reason": "test baseline",
                     "fractions": fractions, "prices": prices}
    return out


def write_plan(directory: Path, spec: PlanSpec, cache: Path) -> Path:
    """plan.json, profiles.csv and workload.csv in ``directory``; returns plan.json."""
    directory.mkdir(parents=True, exist_ok=True)
    workload = write_workload(directory / "workload.csv")
    profiles = _profiles(spec, workload, cache)
    profiles.to_csv(directory / "profiles.csv", index=False)
    fractions, quality, truth = _routing(workload, spec.prices)
    per_model = _per_model(profiles, spec.instances, fractions, spec.rate_rps)
    fleet = sum(fractions[m] * (per_model[m]["ttft_mean_ms"] or 0.0) for m in fractions)
    setup, deps = _setup(spec.instances)
    spec_dict = {
        "name": "sim-test", "cluster": {"gpu_type": GPU, "num_gpus": spec.num_gpus,
                                        "gpus_per_node": 8},
        "models": [{"name": m, "catalog_id": c} for m, c in CATALOG.items()],
        "workload": {"path": str((directory / "workload.csv").resolve())},
        "rate_rps": spec.rate_rps, "slo": {"target_ms": spec.slo_ms},
    }
    plan = {
        "plan_version": PLAN_VERSION, "feasible": True, "scenario": "sim-test",
        "rate_rps": spec.rate_rps,
        "slo": {"metric": "ttft", "stat": "mean", "target_ms": spec.slo_ms,
                "per_model_max_ms": None},
        "cluster": {"gpu_type": GPU, "num_gpus": spec.num_gpus, "gpus_per_node": 8},
        "models": list(CATALOG),
        "quality": {"predicted": quality, "truth": truth, "score_source": "predicted",
                    "note": "test"},
        "setup": setup, "deployments": deps,
        "routing": {"prices": {m: spec.prices.get(m) for m in CATALOG},
                    "fractions": {m: fractions.get(m, 0.0) for m in CATALOG},
                    "tie_temperature": 1e-4, "multiplier_per_ms": None},
        "predicted": {"ttft_mean_ms": fleet, "per_model": per_model, "convexified": False},
        "search": {"enumerated": 1, "retained": 1, "dominated": 0, "non_dominated": 1,
                   "evaluated": 1, "pruned_by_bound": 0, "over_capacity": 0,
                   "baselines_evaluated": 0, "sampled_for_spread": 0, "seconds": 0.0,
                   "quality_min": quality, "quality_max": quality, "spread": 0.0,
                   "spread_over": "test", "feasible_evaluated": 1},
        "baselines": _baselines(spec, workload), "infeasible": None, "warnings": [],
        "provenance": {"workload": "measured", "workload_source": "workload.csv",
                       "scores": "predicted", "latency": ["estimated"],
                       "profiles": {"estimated": 1}, "quality_predicted": "test",
                       "quality_truth": "test", "notes": []},
        "inputs": {"spec": spec_dict, "spec_sha256": "0" * 64, "workload_sha256": "0" * 64,
                   "num_prompts": NUM_PROMPTS, "routerwise_version": "test"},
        "profiles_file": "profiles.csv",
    }
    path = directory / "plan.json"
    path.write_text(json.dumps(plan, indent=1), encoding="utf-8")
    return path
