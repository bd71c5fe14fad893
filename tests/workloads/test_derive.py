"""Item-response derivation: calibrated accuracies, correlation, predictor quality, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from routerwise.errors import InputError
from routerwise.scenarios.derive import calibrate_ability, derive_workload, expected_accuracy
from routerwise.scenarios.registry import load_scenario_data
from routerwise.scenarios.scenario_data import ScenarioData
from routerwise.spec.workload import Workload

N = 20_000


@pytest.fixture(scope="module")
def data() -> ScenarioData:
    return load_scenario_data("llmrouter-open-models")


@pytest.fixture(scope="module")
def workload(data: ScenarioData) -> Workload:
    models = ("llama-3.1-8b", "qwen2.5-7b", "qwen2.5-32b", "llama-3.1-70b")
    return derive_workload(data, models, N, np.random.default_rng(7))


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    pos, neg = score[label == 1], score[label == 0]
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@pytest.mark.parametrize("acc", [0.001, 0.05, 0.3, 0.5, 0.8, 0.999])
@pytest.mark.parametrize("sd", [0.5, 1.5, 3.0])
def test_calibration_inverts_expected_accuracy(acc: float, sd: float) -> None:
    assert expected_accuracy(calibrate_ability(acc, sd), sd) == pytest.approx(acc, abs=1e-6)


def test_per_task_truth_matches_cited_accuracy(data: ScenarioData, workload: Workload) -> None:
    assert workload.tasks is not None and workload.truth is not None
    tasks = np.array(workload.tasks)
    for j, model in enumerate(workload.models):
        for task in data.task_names:
            rows = tasks == task
            cited = min(max(data.model(model).accuracy[task], 1e-3), 1 - 1e-3)
            tol = 4.5 * np.sqrt(cited * (1 - cited) / rows.sum()) + 1e-3
            assert workload.truth[rows, j].mean() == pytest.approx(cited, abs=tol), (model, task)


def test_task_mix_follows_weights(data: ScenarioData, workload: Workload) -> None:
    assert workload.tasks is not None
    for task in data.tasks:
        share = workload.tasks.count(task.name) / N
        assert share == pytest.approx(task.weight, abs=4.5 * np.sqrt(task.weight / N))


def test_outcomes_correlate_across_models(workload: Workload) -> None:
    assert workload.truth is not None
    corr = np.asarray(np.corrcoef(workload.truth.T))
    assert (corr[np.triu_indices(workload.num_models, 1)] > 0.15).all()


def test_scores_are_probabilities_that_predict_truth(workload: Workload) -> None:
    assert workload.truth is not None
    assert ((workload.scores >= 0) & (workload.scores <= 1)).all()
    assert set(np.unique(workload.truth)) <= {0.0, 1.0}
    for j in range(workload.num_models):
        assert _auc(workload.scores[:, j], workload.truth[:, j]) > 0.6
    # calibrated on average: mean score close to mean truth per model
    np.testing.assert_allclose(workload.scores.mean(0), workload.truth.mean(0), atol=0.03)


def test_predictor_noise_lowers_auc(data: ScenarioData) -> None:
    def auc(noise: float) -> float:
        w = derive_workload(data, ("qwen2.5-7b",), 5000, np.random.default_rng(1),
                            predictor_noise=noise)
        assert w.truth is not None
        return _auc(w.scores[:, 0], w.truth[:, 0])

    assert auc(0.0) > auc(1.0) > auc(3.0) > 0.5


def test_lengths_follow_cited_medians(data: ScenarioData, workload: Workload) -> None:
    assert workload.output_tokens is not None and workload.input_tokens is not None
    assert workload.tasks is not None
    for j, model in enumerate(workload.models):
        cited = data.model(model).output_tokens.median_tokens
        assert np.median(workload.output_tokens[:, j]) == pytest.approx(cited, rel=0.05)
    gsm = np.array(workload.tasks) == "gsm8k"
    cited_in = next(t for t in data.tasks if t.name == "gsm8k").input_tokens.median_tokens
    assert np.median(workload.input_tokens[gsm]) == pytest.approx(cited_in, rel=0.1)
    assert (workload.input_tokens >= 1).all() and (workload.output_tokens >= 1).all()
    log_out = np.log(workload.output_tokens)
    assert np.corrcoef(log_out.T)[0, 1] > 0.3  # a long-answer prompt is long for every model


def test_deterministic_given_seed(data: ScenarioData) -> None:
    models = ("llama-3.1-8b", "qwen2.5-7b")
    a = derive_workload(data, models, 500, np.random.default_rng(3))
    b = derive_workload(data, models, 500, np.random.default_rng(3))
    c = derive_workload(data, models, 500, np.random.default_rng(4))
    for x, y in [(a.scores, b.scores), (a.truth, b.truth), (a.output_tokens, b.output_tokens),
                 (a.input_tokens, b.input_tokens)]:
        assert x is not None and y is not None and np.array_equal(x, y)
    assert a.tasks == b.tasks
    assert not np.array_equal(a.scores, c.scores)


def test_provenance_and_citations(workload: Workload) -> None:
    assert workload.provenance == "derived"
    text = " ".join(workload.notes)
    assert "HELM Lite" in text and "LLMRouter" in text and "AlpacaEval" in text
    assert all(any(n.startswith(f"{m}: accuracy from") for n in workload.notes)
               for m in workload.models)


def test_bad_requests_are_named(data: ScenarioData) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match=r"no model 'gpt-9'.*it has"):
        derive_workload(data, ("gpt-9",), 10, rng)
    with pytest.raises(InputError, match="num_prompts=0"):
        derive_workload(data, ("qwen2.5-7b",), 0, rng)
    with pytest.raises(InputError, match="predictor_noise=-1"):
        derive_workload(data, ("qwen2.5-7b",), 10, rng, predictor_noise=-1.0)
    with pytest.raises(InputError, match="duplicate models"):
        derive_workload(data, ("qwen2.5-7b", "qwen2.5-7b"), 10, rng)
