"""Built-in scenario fleet-16m-64g: 16 models (5 open + 11 illustrative fine-tunes) on
64 H100 in 8 nodes, with a derived 16-column workload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routerwise.scenarios.fleet import FLEET_FINE_TUNES, FLEET_MODELS
from routerwise.scenarios.registry import (
    get_scenario,
    load_scenario_data,
    load_scenario_spec,
    scenario_data,
    scenario_workload,
)
from routerwise.spec.catalog import get_model

NAME = "fleet-16m-64g"
BASES = ("llama-3.1-8b", "qwen2.5-7b", "mistral-7b", "qwen2.5-32b", "llama-3.1-70b")


def test_spec_has_16_models_on_64_h100_in_8_nodes() -> None:
    spec = load_scenario_spec(NAME)
    assert spec.name == NAME and spec.workload.builtin == NAME
    assert len(spec.models) == 16 and len({m.name for m in spec.models}) == 16
    assert spec.cluster.gpu_type == "H100-SXM"
    assert spec.cluster.num_gpus == 64 and spec.cluster.gpus_per_node == 8
    assert spec.cluster.num_gpus // spec.cluster.gpus_per_node == 8
    assert spec.slo.metric == "ttft" and spec.rate_rps > 0


def test_every_catalog_id_exists_and_fine_tunes_use_their_base() -> None:
    spec = load_scenario_spec(NAME)
    bases = {t.name: t.base for t in FLEET_FINE_TUNES}
    for entry in spec.models:
        assert entry.catalog_id is not None
        assert get_model(entry.catalog_id).id == entry.catalog_id
        assert entry.catalog_id == bases.get(entry.name, entry.name)
    assert {m.catalog_id for m in spec.models} == set(BASES)


def test_models_are_the_five_open_ones_and_eleven_named_fine_tunes() -> None:
    scenario = get_scenario(NAME)
    assert scenario.models == FLEET_MODELS
    assert set(BASES) <= set(scenario.models)
    assert set(BASES) <= set(load_scenario_data(scenario.data).models)
    assert len(FLEET_FINE_TUNES) == 11
    for tune in FLEET_FINE_TUNES:
        assert tune.name.startswith(f"{tune.base}-")
        assert (tune.gain_logit, tune.loss_logit) == (0.8, 0.3)
    assert "illustrative" in scenario.description and "not measurements" in scenario.description


def test_every_fine_tune_says_it_is_illustrative() -> None:
    data = scenario_data(NAME)
    for tune in FLEET_FINE_TUNES:
        md = data.model(tune.name)
        made = f"illustrative fine-tune of {tune.base} (not measured)"
        assert md.accuracy_source.startswith(made)
        assert md.output_tokens == data.model(tune.base).output_tokens


def test_derived_workload_has_16_columns_and_cites_every_model() -> None:
    w = scenario_workload(NAME, num_prompts=400, seed=0)
    assert w.provenance == "derived" and w.models == FLEET_MODELS
    assert w.scores.shape == (400, 16)
    assert w.truth is not None and w.truth.shape == (400, 16)
    assert w.output_tokens is not None and w.output_tokens.shape == (400, 16)
    for tune in FLEET_FINE_TUNES:  # same per-prompt lengths: the profile cache is shared
        i, j = w.models.index(tune.name), w.models.index(tune.base)
        assert np.array_equal(w.output_tokens[:, i], w.output_tokens[:, j])
    for model in FLEET_MODELS:
        assert any(n.startswith(f"{model}: accuracy from ") for n in w.notes), model


@pytest.mark.scale  # cold cache: every H100 shape of 5 architectures, then a 16×64 search
def test_fleet_plans_within_the_slo_with_a_small_gap(profile_cache: Path) -> None:
    from routerwise.plan.run import make_plan
    from routerwise.search.search import SearchConfig

    spec = load_scenario_spec(NAME)
    run = make_plan(spec, NAME, None, cache_dir=profile_cache,
                    config=SearchConfig(executor="process", workers=2))
    plan = run.built.plan
    assert plan.feasible, plan.infeasible
    assert plan.predicted.ttft_mean_ms is not None
    assert plan.predicted.ttft_mean_ms <= spec.slo.target_ms * (1 + 1e-7)
    assert all(0 <= g < 64 for inst in plan.setup for g in inst.gpu_ids)
    assert plan.search.upper_bound is not None and plan.search.gap is not None
    assert plan.quality.predicted is not None
    # the bound is on the search's curves; quality.predicted is after the length fixed point
    assert plan.search.chosen_quality is not None
    assert plan.search.chosen_quality <= plan.search.upper_bound + 1e-9
    assert plan.provenance.workload == "derived"
