"""Derived workloads: cited per-task accuracies → correlated per-prompt outcomes
(docs/architecture.md §5).

Stage: scenarios (pure functions; uses ``spec`` only).
Inputs: :class:`ScenarioData` (per-model per-task accuracy, task mix, length statistics), the
models to include, a prompt count and a ``numpy.random.Generator``.
Outputs: a ``derived`` :class:`~routerwise.spec.workload.Workload` with ``scores`` (a noisy
predictor's probabilities), ``truth`` (0/1 outcomes), ``input_tokens`` (N,),
``output_tokens`` (N, K) and ``tasks``.
Units: scores and truth in [0, 1]; token counts in tokens.

The item-response model (Rasch, one parameter per model and task):

* prompt i has a task t_i drawn from the cited mix and a difficulty b_i ~ N(0, sd²) shared by
  every model — that is what makes models' outcomes correlated (hard prompts are hard for all);
* P(model m answers prompt i correctly) = σ(θ_{m,t} − b_i), with θ_{m,t} solved by 1-D root
  finding so that E_b[σ(θ − b)] equals the cited accuracy of m on t;
* truth[i, m] ~ Bernoulli(that probability);
* score[i, m] = σ(θ_{m,t} − b_i + ε_{i,m}), ε ~ N(0, predictor_noise²): a router's predictor
  that knows the model's skill but estimates the prompt's difficulty with noise;
* lengths are lognormal with the cited medians and log-space sigmas; a model's output
  lengths are correlated across models (a prompt that asks for an essay gets long answers);
  models in one length group (``ModelData.answer_lengths_of``: a fine-tune and its base) share
  one draw per prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy.special import expit

from routerwise.errors import InputError
from routerwise.scenarios.scenario_data import LengthStats, ScenarioData
from routerwise.spec.core import FloatArray, readonly
from routerwise.spec.workload import Workload

#: Accuracies are clipped to this margin before calibration (0 or 1 needs an infinite ability).
ACCURACY_MARGIN = 1e-3
#: Longest prompt or answer drawn, in tokens (the lognormal tail is otherwise unbounded).
MAX_TOKENS = 16_384
_QUADRATURE_NODES = 64


@lru_cache(maxsize=4)
def _quadrature(difficulty_sd: float) -> tuple[FloatArray, FloatArray]:
    """Gauss–Hermite nodes (difficulties) and weights for b ~ N(0, difficulty_sd²)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(_QUADRATURE_NODES)
    return nodes * difficulty_sd, weights / weights.sum()


def expected_accuracy(ability: float, difficulty_sd: float) -> float:
    """E_b[σ(ability − b)] for b ~ N(0, difficulty_sd²)."""
    nodes, weights = _quadrature(difficulty_sd)
    return float(weights @ expit(ability - nodes))


def calibrate_ability(accuracy: float, difficulty_sd: float) -> float:
    """The ability θ whose expected accuracy over the difficulty distribution is ``accuracy``."""
    target = min(max(accuracy, ACCURACY_MARGIN), 1.0 - ACCURACY_MARGIN)
    from scipy.optimize import brentq  # on use: keeps scipy.optimize out of CLI start-up

    root = brentq(lambda t: expected_accuracy(t, difficulty_sd) - target, -40.0, 40.0, xtol=1e-10)
    return float(root)


def ability_matrix(data: ScenarioData, models: Sequence[str]) -> FloatArray:
    """θ[m, t] for the requested models (rows) and the data's tasks (columns)."""
    return np.array(
        [
            [calibrate_ability(data.model(m).accuracy[t], data.difficulty_sd)
             for t in data.task_names]
            for m in models
        ]
    )


def _lognormal(stats: Sequence[LengthStats], z: FloatArray) -> FloatArray:
    """Token counts from standard-normal draws ``z`` (..., len(stats)), clipped to [1, MAX]."""
    median = np.array([s.median_tokens for s in stats])
    sigma = np.array([s.sigma for s in stats])
    tokens: FloatArray = np.clip(np.rint(median * np.exp(sigma * z)), 1.0, MAX_TOKENS)
    return tokens


def _check_request(data: ScenarioData, models: Sequence[str], num_prompts: int) -> None:
    if num_prompts < 1:
        raise InputError(f"{num_prompts=} must be >= 1")
    if not models:
        raise InputError(f"{data.origin}: no models requested")
    if len(set(models)) != len(models):
        raise InputError(f"{data.origin}: duplicate models in {list(models)}")
    for m in models:
        data.model(m)


def _input_tokens(data: ScenarioData, task_idx: np.ndarray, rng: np.random.Generator) -> FloatArray:
    """One lognormal prompt length per prompt, with its task's median and sigma."""
    stats = [data.tasks[int(i)].input_tokens for i in task_idx]
    return _lognormal(stats, rng.standard_normal(len(task_idx)))


def _output_tokens(
    data: ScenarioData, models: Sequence[str], n: int, rho: float, rng: np.random.Generator
) -> FloatArray:
    """One answer length per prompt and length group (a model, or a base with its fine-tunes:
    they share the draw), correlated across groups by ``rho``; columns in ``models`` order."""
    groups = list(dict.fromkeys(data.model(m).length_group for m in models))
    shared = rng.standard_normal((n, 1))
    own = rng.standard_normal((n, len(groups)))
    z = np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * own
    first = {g: next(m for m in models if data.model(m).length_group == g) for g in groups}
    drawn = _lognormal([data.model(first[g]).output_tokens for g in groups], z)
    columns = [groups.index(data.model(m).length_group) for m in models]
    return drawn[:, columns]


def _notes(data: ScenarioData, models: Sequence[str], predictor_noise: float) -> tuple[str, ...]:
    notes = [
        f"derived workload from scenario data {data.name!r}: Rasch item-response model, "
        f"difficulty sd {data.difficulty_sd}, predictor noise sd {predictor_noise} (logit)",
        *(f"source: {s}" for s in data.sources),
    ]
    for m in models:
        md = data.model(m)
        extra = f" — {md.notes}" if md.notes else ""
        notes.append(f"{m}: accuracy from {md.accuracy_source}{extra}")
    return tuple(notes)


def derive_workload(
    data: ScenarioData,
    models: Sequence[str],
    num_prompts: int,
    rng: np.random.Generator,
    *,
    predictor_noise: float = 1.0,
    length_correlation: float = 0.5,
) -> Workload:
    """Draw a ``derived`` workload of ``num_prompts`` prompts for ``models`` (deterministic in rng).

    ``predictor_noise`` is the standard deviation (logit units) of the predictor's error;
    0 gives an oracle of the outcome probabilities. ``length_correlation`` in [0, 1] is the
    correlation of log output lengths between two models on the same prompt.
    """
    _check_request(data, models, num_prompts)
    if not (np.isfinite(predictor_noise) and predictor_noise >= 0):
        raise InputError(f"{predictor_noise=} must be >= 0")
    if not 0.0 <= length_correlation <= 1.0:
        raise InputError(f"{length_correlation=} must be in [0, 1]")
    weights = np.array([t.weight for t in data.tasks])
    task_idx = rng.choice(len(data.tasks), size=num_prompts, p=weights / weights.sum())
    difficulty = rng.normal(0.0, data.difficulty_sd, size=num_prompts)
    logits = ability_matrix(data, models)[:, task_idx].T - difficulty[:, None]  # (N, K)
    truth = (rng.random(logits.shape) < expit(logits)).astype(np.float64)
    scores = expit(logits + rng.normal(0.0, 1.0, logits.shape) * predictor_noise)
    names = data.task_names
    return Workload(
        prompt_ids=tuple(f"{data.name}-{i:06d}" for i in range(num_prompts)),
        models=tuple(models),
        scores=readonly(scores),
        truth=readonly(truth),
        input_tokens=readonly(_input_tokens(data, task_idx, rng)),
        output_tokens=readonly(_output_tokens(data, models, num_prompts, length_correlation, rng)),
        tasks=tuple(names[int(i)] for i in task_idx),
        provenance="derived",
        source=f"scenario data {data.name!r} ({data.origin})",
        notes=_notes(data, models, predictor_noise),
        score_source="derived",
        input_tokens_from="drawn from the scenario's published length statistics",
    )
