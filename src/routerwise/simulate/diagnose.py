"""Simulate stage — where simulation and plan disagree, say why and how to correct it.

Inputs: a :class:`~routerwise.simulate.run.SimReport`. Outputs: a :class:`Diagnosis` —
warnings (strings an operator reads), per-model corrections (simulated / predicted mean
TTFT), the SLO target to re-plan with so the plan's prediction lands on the simulated value
to first order, and, for every model that misses the fidelity bar, a steady-state reference:
the same engine model serving the model's share of traffic *alone* with exactly the
assumptions of its planned curve (the workload's length pool and an even split over replicas;
or, where the plan's length fixed point re-estimated it, the prompts routed to it and its
replicas behind least-outstanding balancing) for long enough, warm-up excluded. The
reference splits an error in two:

* plan → steady state: the plan's latency curve itself (its profile points are short runs
  from an empty engine; with long outputs the decode batch is still filling when they end,
  so near capacity they understate the steady state, and a burst-measured capacity can lie
  above what the engine sustains under Poisson arrivals);
* steady state → simulated: what only the cluster shows — MPS interference between
  co-runners, the router's length mix (it sends a model the prompts it wins, not the pool),
  least-outstanding balancing over replicas (better than the even split assumed).

Units: ms, req/s, tokens; errors are relative ((simulated − predicted) / predicted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routerwise.errors import InfeasibleError
from routerwise.profiles.engine_sim import simulate_replicas
from routerwise.profiles.estimator import InstanceShape
from routerwise.simulate.inputs import SimTarget
from routerwise.simulate.run import ModelRun, SimReport
from routerwise.simulate.stats import Metrics, relative_error

#: Fidelity bar: simulated mean TTFT within this relative error of the prediction…
TTFT_BAR = 0.10
#: …and quality within this absolute error.
QUALITY_BAR = 0.01
#: Steady-state reference runs: requests (at least, at most) and the warm-up share excluded.
_REF_MIN, _REF_MAX, _REF_WARMUP = 2000, 8000, 0.2
_NEAR_CAPACITY = 0.85
_LENGTH_SHIFT = 0.10


@dataclass(frozen=True, slots=True)
class ModelDiagnosis:
    model: str
    ttft_error: float | None  # relative, simulated vs predicted mean TTFT
    steady_state_ttft_ms: float | None  # reference (None when within the bar)
    correction: float | None  # simulated / predicted mean TTFT
    causes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Diagnosis:
    fleet_ttft_error: float | None
    quality_error: float | None
    quality_truth_error: float | None
    within_bar: bool  # mean TTFT within TTFT_BAR and quality within QUALITY_BAR
    unstable: bool  # latency still growing at the end: the load is not sustained
    per_model: dict[str, ModelDiagnosis]
    warnings: tuple[str, ...]
    replan_slo_ms: float | None  # the SLO target that compensates the fleet error (stable runs)


def steady_state_ttft_ms(shape: InstanceShape, input_tokens: np.ndarray,
                         output_tokens: np.ndarray, rate_rps: float, duration_s: float,
                         seed: int = 0, replicas: int = 1) -> float | None:
    """Mean TTFT of one instance at ``rate_rps`` (Poisson), warm-up excluded, with the step
    times its profile assumes (``InstanceShape.profile_steps``: below a whole GPU, one busy
    co-runner); with ``replicas`` > 1, of that many behind least-outstanding balancing, each
    at ``rate_rps``."""
    if rate_rps <= 0:
        return None
    n = int(min(_REF_MAX * replicas, max(_REF_MIN, rate_rps * replicas * duration_s)))
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0, n)) / (rate_rps * replicas)
    idx = rng.integers(0, len(input_tokens), n)
    try:
        res = simulate_replicas(arrivals, input_tokens[idx], output_tokens[idx],
                                shape.kv_capacity_tokens(), shape.engine,
                                shape.profile_steps(), replicas)
    except InfeasibleError:
        return None
    return float(np.mean(res.ttft_ms[int(_REF_WARMUP * n):]))


def routed_lengths(target: SimTarget, model: str, n: int = 4000, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Input and output lengths (tokens) of ``n`` prompts drawn as the plan's router sends
    them to ``model`` (weighted by its routing probability), not uniformly from the pool."""
    k = target.models.index(model)
    weights = np.asarray(target.rule.probabilities[:, k], dtype=np.float64)
    if weights.sum() <= 0:
        return target.input_tokens, target.output_tokens[:, k]
    idx = np.random.default_rng(seed).choice(len(weights), size=n, p=weights / weights.sum())
    return target.input_tokens[idx], target.output_tokens[idx, k]


def curve_assumptions(target: SimTarget, model: str, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray, int]:
    """The lengths (tokens) and balanced replicas ``model``'s planned curve was estimated
    with: the prompts routed to it and its replicas behind least-outstanding balancing when
    the plan's length fixed point re-estimated it (``plan.json``: ``lengths``), else the
    workload's pool and one instance (the search's curves, and a baseline's)."""
    k = target.models.index(model)
    load = target.plan.predicted.per_model.get(model) if target.name == "plan" else None
    basis = None if load is None else load.lengths
    if basis is None or basis.basis != "routed":
        return target.input_tokens, target.output_tokens[:, k], 1
    isl, osl = routed_lengths(target, model, seed=seed)
    return isl, osl, basis.curve_replicas


#: A run is overloaded when more than this share of its measured requests never finished.
UNFINISHED_SHARE = 0.01


def unstable(report: SimReport) -> bool:
    """In every run: mean TTFT of the last third of the window > 2× the first third's, or
    more than ``UNFINISHED_SHARE`` of the measured requests unfinished at the end."""
    flags = []
    for run in report.runs:
        if run.fleet.requests and \
                run.fleet.completed < (1 - UNFINISHED_SHARE) * run.fleet.requests:
            flags.append(True)
            continue
        means = [b.ttft_mean_ms for b in run.batches if b.ttft_mean_ms is not None]
        if len(means) < 6:
            flags.append(False)
            continue
        third = len(means) // 3
        flags.append(float(np.mean(means[-third:])) > 2.0 * float(np.mean(means[:third])))
    return all(flags) and bool(flags)


def _mean_run(report: SimReport, model: str) -> ModelRun:
    return report.runs[0].per_model[model]


def _length_cause(report: SimReport, model: str) -> str | None:
    """The routed length mix, when it differs from the pool the profile assumed, and what
    the same engine gives at steady state with it."""
    text = _length_shift(report, model)
    if text is None:
        return None
    t = report.target
    dep = t.setup.deployment(model)
    assert dep is not None
    rate = report.predicted.fractions.get(model, 0.0) * report.predicted.rate_rps / dep.replicas
    isl, osl = routed_lengths(t, model, seed=report.options.seed)
    steady = steady_state_ttft_ms(t.engine_shape(model), isl, osl, rate,
                                  report.options.duration_s, report.options.seed)
    if steady is None:
        return text
    return (f"{text}; with that mix the same engine at steady state gives {steady:.4g} ms "
            f"at {rate:.3g} req/s per replica")


def _length_shift(report: SimReport, model: str) -> str | None:
    t = report.target
    isl, osl, _ = curve_assumptions(t, model, report.options.seed)
    pool_in, pool_out = float(isl.mean()), float(osl.mean())
    runs = [r.per_model[model] for r in report.runs]
    ins = [r.mean_input_tokens for r in runs if r.mean_input_tokens is not None]
    outs = [r.mean_output_tokens for r in runs if r.mean_output_tokens is not None]
    if not ins or not outs:
        return None
    got_in, got_out = float(np.mean(ins)), float(np.mean(outs))
    shift = max(abs(got_in / pool_in - 1), abs(got_out / pool_out - 1))
    if shift <= _LENGTH_SHIFT:
        return None
    return (f"the router sends it prompts of {got_in:.0f} input / {got_out:.0f} output tokens "
            f"on average; its profile assumed {pool_in:.0f} / {pool_out:.0f}")


def _causes(report: SimReport, model: str, predicted: float, simulated: float,
            steady: float | None) -> tuple[str, ...]:
    t = report.target
    dep = t.setup.deployment(model)
    assert dep is not None
    run = _mean_run(report, model)
    rate = report.predicted.fractions.get(model, 0.0) * report.predicted.rate_rps
    out: list[str] = []
    plan_err = relative_error(steady, predicted)
    if steady is not None and plan_err is not None and abs(plan_err) > TTFT_BAR:
        why = ("the curve's profile points are short runs from an empty engine, which "
               "understate a long run near capacity" if plan_err > 0 else
               "the curve interpolates linearly between profile points of a convex curve "
               "(or a profile point is noisy), which overstates between them")
        out.append(
            f"its latency curve: run alone to steady state at {rate / dep.replicas:.3g} req/s "
            f"per replica the same engine model gives {steady:.4g} ms, the plan's curve "
            f"{predicted:.4g} ms ({plan_err:+.0%}); {why}")
    cap = report.predicted.capacity_rps.get(model)
    if cap:
        util = rate / cap
        if util >= _NEAR_CAPACITY:
            out.append(f"it is planned at {util:.0%} of its estimated capacity ({cap:.3g} "
                       "req/s), where mean TTFT is queue-dominated and sensitive to any error")
    slow = float(np.mean([r.per_model[model].interference_slowdown for r in report.runs]))
    if slow > 1.01:
        out.append(f"interference: co-runners on its GPUs slowed its steps by {slow - 1:.1%} "
                   f"on average ({report.options.interference.describe()}); an estimated "
                   "curve below a whole GPU assumes one busy co-runner (decode steps about "
                   "+20%), a measured curve or a whole GPU none")
    if (length := _length_cause(report, model)) is not None:
        out.append(length)
    if dep.replicas > 1 and simulated < predicted and \
            curve_assumptions(t, model)[2] != dep.replicas:
        out.append(f"least-outstanding balancing over {dep.replicas} replicas beats the "
                   "plan's even split")
    if run.preemptions > 0:
        out.append(f"{run.preemptions} KV-cache preemptions (recomputed prefills)")
    return tuple(out)


def _model(report: SimReport, model: str, sim: Metrics) -> ModelDiagnosis:
    predicted = report.predicted.per_model_ttft_ms.get(model)
    simulated = sim.ttft_mean_ms
    err = relative_error(simulated, predicted)
    if err is None or abs(err) <= TTFT_BAR or predicted is None or simulated is None:
        correction = None if err is None else 1.0 + err
        return ModelDiagnosis(model, err, None, correction, ())
    t = report.target
    dep = t.setup.deployment(model)
    assert dep is not None
    rate = report.predicted.fractions.get(model, 0.0) * report.predicted.rate_rps
    isl, osl, group = curve_assumptions(t, model, report.options.seed)
    steady = steady_state_ttft_ms(t.engine_shape(model), isl, osl, rate / dep.replicas,
                                  report.options.duration_s, report.options.seed, group)
    causes = _causes(report, model, predicted, simulated, steady)
    return ModelDiagnosis(model, err, steady, simulated / predicted, causes)


def diagnose(report: SimReport) -> Diagnosis:
    """Compare every predicted number with its simulated value; explain the misses."""
    fleet_err = relative_error(report.fleet.ttft_mean_ms, report.predicted.ttft_mean_ms)
    q_err = _abs(report.fleet.quality, report.predicted.quality)
    qt_err = _abs(report.fleet.quality_truth, report.predicted.quality_truth)
    per_model = {m: _model(report, m, report.per_model[m]) for m in report.target.models
                 if report.per_model[m].requests > 0}
    growing = unstable(report)
    within = (fleet_err is not None and abs(fleet_err) <= TTFT_BAR
              and (q_err is None or abs(q_err) <= QUALITY_BAR))
    warnings = _warnings(report, fleet_err, q_err, per_model, growing)
    replan = None
    if fleet_err is not None and fleet_err > TTFT_BAR and not growing:
        replan = report.target.plan.slo.target_ms / (1.0 + fleet_err)
    return Diagnosis(fleet_err, q_err, qt_err, within, growing, per_model, warnings, replan)


def _abs(simulated: float | None, predicted: float | None) -> float | None:
    return None if simulated is None or predicted is None else simulated - predicted


def _warnings(report: SimReport, fleet_err: float | None, q_err: float | None,
              per_model: dict[str, ModelDiagnosis], unstable: bool) -> tuple[str, ...]:
    out: list[str] = []
    slo = report.target.plan.slo.target_ms
    sim = report.fleet.ttft_mean_ms
    if unstable:
        out.append("UNSTABLE: mean TTFT grows through the run (last third > 2× first third) "
                   "or requests were left unfinished: the offered load exceeds what this "
                   "setup sustains, so every mean here depends on the duration (and leaves "
                   "out requests that never got a token); the plan's capacity is optimistic")
    if sim is not None and sim > slo:
        out.append(f"the SLO is NOT met in simulation: fleet mean TTFT {sim:.4g} ms > "
                   f"target {slo:g} ms")
    if fleet_err is not None and abs(fleet_err) > TTFT_BAR:
        pred = report.predicted.ttft_mean_ms
        out.append(f"fleet mean TTFT {sim:.4g} ms is {fleet_err:+.0%} off the plan's "
                   f"{pred:.4g} ms (fidelity bar ±{TTFT_BAR:.0%})")
    for d in per_model.values():
        if d.causes:
            out.append(f"{d.model}: mean TTFT {d.ttft_error:+.0%} vs the plan — "
                       + "; ".join(d.causes))
    if q_err is not None and abs(q_err) > QUALITY_BAR:
        out.append(f"quality {report.fleet.quality:.4f} is {q_err:+.4f} off the plan's "
                   f"{report.predicted.quality:.4f} (bar ±{QUALITY_BAR}): sampling noise of "
                   f"{report.fleet.requests} requests, or a workload that no longer matches "
                   "the plan's")
    fracs = report.target.rule.fractions()
    for k, m in enumerate(report.target.models):
        planned = report.predicted.fractions.get(m, 0.0)
        if abs(float(fracs[k]) - planned) > 0.01:
            out.append(f"{m}: the rebuilt workload routes {float(fracs[k]):.3f} of requests "
                       f"to it, the plan {planned:.3f}: the workload changed since planning")
    return tuple(out)
