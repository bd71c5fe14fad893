"""Built-in scenarios: data files load, cite their sources, and are reproducible from ../shared."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import yaml

from routerwise.errors import InputError
from routerwise.scenarios.registry import (
    DEFAULT_SCENARIO,
    SCENARIO_DATA,
    SCENARIOS,
    get_scenario,
    load_scenario_data,
    load_scenario_data_file,
    load_scenario_spec,
    scenario_data,
    scenario_workload,
)

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
DATA_DIR = REPO / "src" / "routerwise" / "scenarios" / "data"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_has_cited_data_for_its_models(name: str) -> None:
    scenario = get_scenario(name)
    data = scenario_data(name)
    for model in scenario.models:
        md = data.model(model)
        assert md.accuracy_source, model
        assert set(data.task_names) <= set(md.accuracy)
        assert md.output_tokens.source, model
    assert any("HELM Lite" in s for s in data.sources)
    assert any("commit" in s for s in data.sources)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_spec_matches_registry_and_catalog(name: str) -> None:
    spec = load_scenario_spec(name)
    assert spec.workload.builtin == name
    scenario = SCENARIOS[name]
    assert tuple(m.catalog_id for m in spec.models) == tuple(
        scenario.catalog_id(m) for m in scenario.models)
    assert tuple(m.name for m in spec.models) == scenario.models


def test_required_scenarios_and_models() -> None:
    assert DEFAULT_SCENARIO == "h100-mixed"
    assert SCENARIOS["paper-a100-3m"].models == ("mistral-7b", "llama-2-13b", "yi-34b")
    assert SCENARIOS["paper-a100-4m"].models[-1] == "llama-2-70b"
    assert {"llama-3.1-8b", "llama-3.1-70b"} <= set(SCENARIOS["h100-mixed"].models)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_workload_is_derived_and_deterministic(name: str) -> None:
    a = scenario_workload(name, num_prompts=300, seed=5)
    b = scenario_workload(name, num_prompts=300, seed=5)
    assert a.provenance == "derived" and a.models == SCENARIOS[name].models
    assert np.array_equal(a.scores, b.scores)


def test_unknown_names_list_known_ones() -> None:
    with pytest.raises(InputError, match=r"unknown scenario 'nope'; known: \["):
        get_scenario("nope")
    with pytest.raises(InputError, match=r"unknown scenario data 'nope'"):
        load_scenario_data("nope")


def _raw(name: str) -> dict[str, Any]:
    raw = yaml.safe_load((DATA_DIR / SCENARIO_DATA[name]).read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def test_user_data_file_errors_name_the_field(tmp_path: Path) -> None:
    raw = _raw("helm-lite-2024")
    raw["models"]["yi-34b"]["accuracy"]["gsm8k"] = 1.7
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(InputError, match=r"mine.yaml: models.yi-34b.accuracy.gsm8k: .*1.7"):
        load_scenario_data_file(path)
    del raw["models"]["yi-34b"]["accuracy"]["gsm8k"]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(InputError, match=r"'yi-34b' has no accuracy for task\(s\) \['gsm8k'"):
        load_scenario_data_file(path)
    del raw["tasks"]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(InputError, match=r"mine.yaml: missing field 'tasks'"):
        load_scenario_data_file(path)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "compute_scenario_data", REPO / "scripts" / "compute_scenario_data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_data_files_are_reproducible_from_shared_data() -> None:
    if not (SHARED / "llmrouter").is_dir() or not (SHARED / "alpaca_eval").is_dir():
        pytest.skip(f"real data not present at {SHARED} (../shared/data is optional)")
    script = _script()
    rows = script._llmrouter_rows(SHARED / "llmrouter")
    assert script.helm_lite_file(SHARED, rows) == _raw("helm-lite-2024")
    assert script.llmrouter_file(SHARED, rows) == _raw("llmrouter-open-models")
