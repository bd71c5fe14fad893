"""Illustrative fine-tunes: logit shifts on specialty tasks only, accuracies in (0, 1),
names and provenance, shared answer lengths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logit

from routerwise.errors import InputError
from routerwise.scenarios.derive import ACCURACY_MARGIN, derive_workload
from routerwise.scenarios.fine_tune import FineTune, apply_fine_tunes, bases_of, fine_tune_model
from routerwise.scenarios.registry import load_scenario_data
from routerwise.scenarios.scenario_data import ScenarioData

CODE = FineTune("llama-3.1-8b-code", "llama-3.1-8b", ("human_eval", "mbpp"), 0.8, 0.3)


@pytest.fixture(scope="module")
def data() -> ScenarioData:
    return load_scenario_data("llmrouter-open-models")


def _clipped_logit(a: float) -> float:
    return float(logit(min(max(a, ACCURACY_MARGIN), 1 - ACCURACY_MARGIN)))


def test_shift_applies_gain_to_specialty_tasks_and_loss_elsewhere(data: ScenarioData) -> None:
    base = data.model("llama-3.1-8b")
    tuned = fine_tune_model(data, CODE)
    assert set(tuned.accuracy) == set(base.accuracy)
    for task, acc in tuned.accuracy.items():
        shift = 0.8 if task in ("human_eval", "mbpp") else -0.3
        assert float(logit(acc)) == pytest.approx(_clipped_logit(base.accuracy[task]) + shift)
        assert (acc > base.accuracy[task]) == (task in CODE.specialty_tasks)


@pytest.mark.parametrize("base_acc", [0.0, 1e-9, 0.5, 1.0 - 1e-9, 1.0])
def test_accuracy_stays_strictly_inside_zero_one(base_acc: float) -> None:
    from routerwise.scenarios.fine_tune import _shifted

    for shift in (-5.0, 0.0, 5.0):
        assert 0.0 < _shifted(base_acc, shift) < 1.0


def test_name_lengths_and_provenance(data: ScenarioData) -> None:
    tuned = fine_tune_model(data, CODE)
    base = data.model("llama-3.1-8b")
    assert tuned.name == "llama-3.1-8b-code"
    assert tuned.output_tokens == base.output_tokens
    assert tuned.length_group == "llama-3.1-8b"
    src = tuned.accuracy_source
    assert src.startswith("illustrative fine-tune of llama-3.1-8b (not measured)")
    assert "+ 0.8) on human_eval, mbpp" in src and "− 0.3) on the other tasks" in src
    assert base.accuracy_source in src
    assert "illustrative" in tuned.notes


def test_apply_adds_models_and_cites_them(data: ScenarioData) -> None:
    math = FineTune("qwen2.5-7b-math", "qwen2.5-7b", ("gsm8k", "math"), 0.8, 0.3)
    out = apply_fine_tunes(data, (CODE, math))
    assert set(out.models) == set(data.models) | {CODE.name, math.name}
    assert out.model("qwen2.5-7b") == data.model("qwen2.5-7b")
    assert "illustrative fine-tunes (not measured)" in out.sources[-1]
    assert apply_fine_tunes(data, ()) is data
    assert bases_of((CODE, math)) == {CODE.name: "llama-3.1-8b", math.name: "qwen2.5-7b"}


def test_fine_tune_shares_its_base_answer_lengths_per_prompt(data: ScenarioData) -> None:
    out = apply_fine_tunes(data, (CODE,))
    models = ("llama-3.1-8b", "qwen2.5-7b", CODE.name)
    w = derive_workload(out, models, 500, np.random.default_rng(3))
    assert w.output_tokens is not None
    assert np.array_equal(w.output_tokens[:, 0], w.output_tokens[:, 2])
    assert not np.array_equal(w.output_tokens[:, 0], w.output_tokens[:, 1])
    alone = derive_workload(out, (CODE.name,), 500, np.random.default_rng(3))
    assert alone.output_tokens is not None and alone.output_tokens.shape == (500, 1)


def test_without_fine_tunes_the_draw_is_unchanged(data: ScenarioData) -> None:
    """Length groups must not move the random stream of scenarios without fine-tunes."""
    models = ("llama-3.1-8b", "qwen2.5-7b")
    a = derive_workload(data, models, 300, np.random.default_rng(11))
    b = derive_workload(apply_fine_tunes(data, (CODE,)), models, 300, np.random.default_rng(11))
    assert a.output_tokens is not None and b.output_tokens is not None
    assert np.array_equal(a.output_tokens, b.output_tokens)
    assert np.array_equal(a.scores, b.scores)


def test_bad_fine_tunes_are_named_errors(data: ScenarioData) -> None:
    with pytest.raises(InputError, match="needs a name of its own"):
        FineTune("llama-3.1-8b", "llama-3.1-8b", ("mbpp",), 0.8, 0.3)
    with pytest.raises(InputError, match="must be non-empty and distinct"):
        FineTune("x", "llama-3.1-8b", (), 0.8, 0.3)
    with pytest.raises(InputError, match=r"gain_logit=-0.5 must be finite and >= 0"):
        FineTune("x", "llama-3.1-8b", ("mbpp",), -0.5, 0.3)
    with pytest.raises(InputError, match=r"loss_logit=nan"):
        FineTune("x", "llama-3.1-8b", ("mbpp",), 0.8, float("nan"))
    with pytest.raises(InputError, match=r"unknown specialty task\(s\) \['poetry'\]"):
        fine_tune_model(data, FineTune("x", "llama-3.1-8b", ("poetry",), 0.8, 0.3))
    with pytest.raises(InputError, match="has no model 'gpt-9'"):
        fine_tune_model(data, FineTune("x", "gpt-9", ("mbpp",), 0.8, 0.3))
    with pytest.raises(InputError, match="clashes with a model"):
        apply_fine_tunes(data, (CODE, CODE))
