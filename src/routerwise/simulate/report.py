"""Simulate stage — the report of ``routerwise simulate --json`` (the simulation contract).

Inputs: a :class:`~routerwise.simulate.run.SimReport` and its
:class:`~routerwise.simulate.diagnose.Diagnosis`. Output: JSON-ready data (strict JSON:
non-finite numbers are ``null``). Keys (units in names; errors are relative for latency,
absolute for quality; every mean is over requests that *arrived* after the warm-up and
before the end of the duration, averaged over replications):

* ``simulated`` (``plan`` or ``baseline NAME``), ``plan_file``, ``setup``, ``arrivals``,
  ``rate_rps`` (offered), ``duration_s``, ``warmup_s``, ``seed``, ``replications``,
  ``interference`` {``model``, ``params``};
* ``requests``, ``completed`` (measured requests that finished before the end);
* ``quality`` {``predicted``, ``truth``, ``score_source``} — the same reading as plan.json's;
* ``ttft_mean_ms``, ``ttft_p50_ms``, ``ttft_p90_ms``, ``ttft_p99_ms``, ``tpot_mean_ms``,
  ``e2e_mean_ms``, ``slo`` {``target_ms``, ``met``}, ``slo_attainment`` (share of requests
  with their own TTFT ≤ target);
* ``per_model`` {model: ``deployment``, ``requests``, ``rate_rps``, ``fraction``, the latency
  metrics, ``utilisation`` (busy share of its instances), ``preemptions``,
  ``interference_slowdown``, ``predicted`` {``rate_rps``, ``ttft_mean_ms``}, ``error``
  {``rate``, ``ttft_mean``}, ``steady_state_ttft_ms``, ``correction``, ``causes``};
* ``predicted`` {``rate_rps``, ``ttft_mean_ms``, ``quality``, ``quality_truth``};
* ``errors`` {``ttft_mean``, ``quality``, ``quality_truth``}, ``fidelity``
  {``ttft_bar``, ``quality_bar``, ``within_bar``, ``unstable``};
* ``ci95`` {``method``, metric: [low, high] | null};
* ``corrections`` {``ttft_factor`` per model (simulated / predicted mean TTFT),
  ``replan_slo_ms`` (the SLO target that offsets the fleet error, for a stable run),
  ``sustainable_rate_rps`` (with ``--find-max-rate``: the highest rate this setup and
  routing sustain in simulation within the SLO; else null)};
* ``warnings``, ``wall_s``, ``steps``.
"""

from __future__ import annotations

import math
from typing import Any

from routerwise.simulate.diagnose import QUALITY_BAR, TTFT_BAR, Diagnosis
from routerwise.simulate.run import SimReport
from routerwise.simulate.stats import Metrics


def num(value: float | None, digits: int = 6) -> float | None:
    """A finite number rounded to ``digits`` significant digits, else None."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def _latency(m: Metrics) -> dict[str, Any]:
    return {"ttft_mean_ms": num(m.ttft_mean_ms), "ttft_p50_ms": num(m.ttft_p50_ms),
            "ttft_p90_ms": num(m.ttft_p90_ms), "ttft_p99_ms": num(m.ttft_p99_ms),
            "tpot_mean_ms": num(m.tpot_mean_ms), "e2e_mean_ms": num(m.e2e_mean_ms),
            "slo_attainment": num(m.slo_attainment)}


def _per_model(report: SimReport, diag: Diagnosis) -> dict[str, Any]:
    out: dict[str, Any] = {}
    total = max(report.fleet.requests, 1)
    for m in report.target.models:
        met = report.per_model[m]
        runs = [r.per_model[m] for r in report.runs]
        dep = report.target.setup.deployment(m)
        pred_rate = report.predicted.fractions.get(m, 0.0) * report.predicted.rate_rps
        rate = sum(r.rate_rps for r in runs) / len(runs)
        d = diag.per_model.get(m)
        out[m] = {
            "deployment": None if dep is None else dep.describe(),
            "requests": met.requests,
            "completed": met.completed,
            "rate_rps": num(rate),
            "fraction": num(met.requests / total),
            **_latency(met),
            "utilisation": num(sum(r.utilisation for r in runs) / len(runs)),
            "preemptions": sum(r.preemptions for r in runs),
            "interference_slowdown": num(sum(r.interference_slowdown for r in runs) / len(runs)),
            "predicted": {"rate_rps": num(pred_rate),
                          "ttft_mean_ms": num(report.predicted.per_model_ttft_ms.get(m))},
            "error": {"rate": num((rate - pred_rate) / pred_rate if pred_rate else None, 4),
                      "ttft_mean": num(None if d is None else d.ttft_error, 4)},
            "steady_state_ttft_ms": num(None if d is None else d.steady_state_ttft_ms),
            "correction": num(None if d is None else d.correction, 4),
            "causes": [] if d is None else list(d.causes),
        }
    return out


def report_dict(report: SimReport, diag: Diagnosis,
                sustainable_rps: float | None = None) -> dict[str, Any]:
    """The JSON contract of ``routerwise simulate`` (module docstring); ``sustainable_rps``:
    the result of ``capacity.sustainable_rate_rps`` when it was searched for."""
    t, o, f = report.target, report.options, report.fleet
    slo = t.plan.slo.target_ms
    return {
        "simulated": t.name,
        "plan_file": str(t.plan_file),
        "setup": t.setup.describe(),
        "arrivals": o.arrivals.describe(),
        "rate_rps": num(report.offered_rps),
        "duration_s": o.duration_s,
        "warmup_s": o.warmup,
        "seed": o.seed,
        "replications": o.replications,
        "interference": {"model": o.interference.describe(),
                         "params": o.interference.params()},
        "requests": f.requests,
        "completed": f.completed,
        "quality": {"predicted": num(f.quality), "truth": num(f.quality_truth),
                    "score_source": t.workload.score_source},
        **_latency(f),
        "slo": {"metric": "ttft", "stat": "mean", "target_ms": slo,
                "met": f.ttft_mean_ms is not None and f.ttft_mean_ms <= slo},
        "per_model": _per_model(report, diag),
        "predicted": {"rate_rps": num(report.predicted.rate_rps),
                      "ttft_mean_ms": num(report.predicted.ttft_mean_ms),
                      "quality": num(report.predicted.quality),
                      "quality_truth": num(report.predicted.quality_truth)},
        "errors": {"ttft_mean": num(diag.fleet_ttft_error, 4),
                   "quality": num(diag.quality_error, 4),
                   "quality_truth": num(diag.quality_truth_error, 4)},
        "fidelity": {"ttft_bar": TTFT_BAR, "quality_bar": QUALITY_BAR,
                     "within_bar": diag.within_bar, "unstable": diag.unstable},
        "ci95": {"method": report.ci_method,
                 **{k: None if v is None else [num(v[0]), num(v[1])]
                    for k, v in report.ci.items()}},
        "corrections": {"ttft_factor": {m: num(d.correction, 4)
                                        for m, d in diag.per_model.items()},
                        "replan_slo_ms": num(diag.replan_slo_ms, 4),
                        "sustainable_rate_rps": num(sustainable_rps, 4)},
        "warnings": list(diag.warnings),
        "wall_s": round(report.wall_s, 3),
        "steps": sum(r.steps for r in report.runs),
    }
