"""Built-in scenarios and their cited data files (shipped as package data).

Stage: scenarios (uses ``spec`` only).
Inputs: a scenario or data-file name. Outputs: :class:`ScenarioData`, :class:`BuiltinScenario`,
the scenario's spec (``data/<scenario>.yaml``, :func:`load_scenario_spec`) and, through
:func:`scenario_workload`, a ``derived`` Workload.
Nothing is read at import time: data files are parsed on first use and cached.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml

from routerwise.errors import InputError
from routerwise.scenarios.derive import derive_workload
from routerwise.scenarios.fine_tune import FineTune, apply_fine_tunes
from routerwise.scenarios.fleet import FLEET_FINE_TUNES, FLEET_MODELS
from routerwise.scenarios.scenario_data import ScenarioData, scenario_data_from_mapping
from routerwise.spec.spec_file import Spec, parse_spec
from routerwise.spec.workload import Workload

#: Data-file name → file in ``routerwise/scenarios/data``.
SCENARIO_DATA: Mapping[str, str] = MappingProxyType(
    {
        "helm-lite-2024": "helm_lite_2024.yaml",
        "llmrouter-open-models": "llmrouter_open_models.yaml",
    }
)


@dataclass(frozen=True, slots=True)
class BuiltinScenario:
    """A named scenario: which cited data file and which models it uses.

    A model is a catalog model of the data file, or one of ``fine_tunes`` (illustrative,
    added to the data before the workload is derived; its architecture is its base's).
    """

    name: str
    data: str
    models: tuple[str, ...]
    description: str
    fine_tunes: tuple[FineTune, ...] = ()

    def catalog_id(self, model: str) -> str:
        """The catalog architecture of ``model``: a fine-tune's base, else the model itself."""
        bases = {t.name: t.base for t in self.fine_tunes}
        return bases.get(model, model)


SCENARIOS: Mapping[str, BuiltinScenario] = MappingProxyType(
    {
        "paper-a100-3m": BuiltinScenario(
            "paper-a100-3m",
            "helm-lite-2024",
            ("mistral-7b", "llama-2-13b", "yi-34b"),
            "The paper's three-model A100 setting: Mistral-7B, WizardLM-13B (Llama-2-13B "
            "architecture) and Yi-34B; accuracies from HELM Lite.",
        ),
        "paper-a100-4m": BuiltinScenario(
            "paper-a100-4m",
            "helm-lite-2024",
            ("mistral-7b", "llama-2-13b", "yi-34b", "llama-2-70b"),
            "The paper's four-model A100 setting: the three-model one plus Llama-2-70B.",
        ),
        "h100-mixed": BuiltinScenario(
            "h100-mixed",
            "llmrouter-open-models",
            ("llama-3.1-8b", "qwen2.5-7b", "qwen2.5-32b", "llama-3.1-70b"),
            "Four current open models from 7B to 70B on LLMRouter's 14 tasks: Llama-3.1-8B and "
            "Qwen2.5-7B measured; Qwen2.5-32B and Llama-3.1-70B transferred via HELM Lite.",
        ),
        "mixed-h100-a100": BuiltinScenario(
            "mixed-h100-a100",
            "llmrouter-open-models",
            ("llama-3.1-8b", "qwen2.5-7b", "qwen2.5-32b", "llama-3.1-70b"),
            "The four models of h100-mixed on a cluster of two node pools: 4 H100 and "
            "4 A100-80GB (each model on one GPU type; different models on different types).",
        ),
        "fleet-16m-64g": BuiltinScenario(
            "fleet-16m-64g",
            "llmrouter-open-models",
            FLEET_MODELS,
            "A shared fleet: 16 models on 64 H100 in 8 nodes. The five open models of "
            "llmrouter-open-models plus 11 named fine-tunes of them (code, math, reasoning, "
            "knowledge, commonsense) whose accuracies are illustrative logit shifts of their "
            "base's (+0.8 on the specialty, -0.3 elsewhere), not measurements.",
            FLEET_FINE_TUNES,
        ),
    }
)
DEFAULT_SCENARIO = "h100-mixed"
#: Prompts drawn for a built-in scenario's workload unless the caller asks otherwise.
DEFAULT_NUM_PROMPTS = 2000


def _parse(text: str, origin: str, suffix: str) -> Any:
    try:
        return json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{origin}: cannot parse scenario data: {exc}") from exc


@cache
def load_scenario_data(name: str) -> ScenarioData:
    """The built-in data file ``name`` (a key of :data:`SCENARIO_DATA`), parsed and validated."""
    if name not in SCENARIO_DATA:
        raise InputError(f"unknown scenario data {name!r}; known: {sorted(SCENARIO_DATA)}")
    filename = SCENARIO_DATA[name]
    resource = resources.files("routerwise.scenarios") / "data" / filename
    origin = f"routerwise/scenarios/data/{filename}"
    raw = _parse(resource.read_text(encoding="utf-8"), origin, Path(filename).suffix)
    return scenario_data_from_mapping(raw, origin)


def load_scenario_data_file(path: Path) -> ScenarioData:
    """A user's own data file in the same YAML/JSON format (same validation, errors name it)."""
    if not path.is_file():
        raise InputError(f"{path}: scenario data file does not exist")
    raw = _parse(path.read_text(encoding="utf-8"), str(path), path.suffix.lower())
    return scenario_data_from_mapping(raw, str(path))


def load_scenario_spec(name: str) -> Spec:
    """The spec (cluster, models, rate, SLO) of built-in scenario ``name``: data/<name>.yaml."""
    get_scenario(name)
    origin = f"routerwise/scenarios/data/{name}.yaml"
    text = (resources.files("routerwise.scenarios") / "data" / f"{name}.yaml").read_text("utf-8")
    return parse_spec(_parse(text, origin, ".yaml"), origin)


@cache
def scenario_data(name: str) -> ScenarioData:
    """The data a built-in scenario's workload is derived from: its cited data file with the
    scenario's fine-tunes (if any) added."""
    scenario = get_scenario(name)
    return apply_fine_tunes(load_scenario_data(scenario.data), scenario.fine_tunes)


def get_scenario(name: str) -> BuiltinScenario:
    """The built-in scenario ``name``; the error lists the known ones."""
    if name not in SCENARIOS:
        raise InputError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}")
    return SCENARIOS[name]


def scenario_workload(
    name: str,
    *,
    num_prompts: int = DEFAULT_NUM_PROMPTS,
    seed: int = 0,
    predictor_noise: float = 1.0,
) -> Workload:
    """The derived workload of built-in scenario ``name`` (deterministic in ``seed``)."""
    return derive_workload(
        scenario_data(name),
        get_scenario(name).models,
        num_prompts,
        np.random.default_rng(seed),
        predictor_noise=predictor_noise,
    )
