"""Cited scenario data: per-model per-task accuracy, task mix and token-length statistics.

Stage: scenarios (built-in inputs; uses ``spec`` only).
Inputs: a parsed YAML/JSON mapping (see ``scenarios/data/*.yaml``, written by
``scripts/compute_scenario_data.py``). Outputs: a frozen :class:`ScenarioData`.
Units: accuracies are fractions in [0, 1]; lengths are tokens; ``sigma`` is the standard
deviation of log(tokens) of a lognormal length distribution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from routerwise.errors import InputError


@dataclass(frozen=True, slots=True)
class LengthStats:
    """Lognormal token lengths: ``median_tokens`` = exp(mu); ``sigma`` is the log-space sd."""

    median_tokens: float
    sigma: float
    mean_tokens: float
    source: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.median_tokens) and self.median_tokens >= 1.0):
            raise InputError(f"{self.median_tokens=} must be a number of tokens >= 1")
        if not (math.isfinite(self.sigma) and 0.0 <= self.sigma <= 5.0):
            raise InputError(f"{self.sigma=} must be a log-space standard deviation in [0, 5]")


@dataclass(frozen=True, slots=True)
class TaskData:
    """One task: its share of the prompt mix and its prompt-length distribution."""

    name: str
    weight: float
    input_tokens: LengthStats


@dataclass(frozen=True, slots=True)
class ModelData:
    """One model: accuracy per task (fraction in [0, 1]) and its answer-length distribution.

    ``answer_lengths_of`` names the model whose answer lengths this one shares prompt by prompt
    in a derived workload ("" = its own draw); a fine-tune shares its base's.
    """

    name: str
    accuracy: Mapping[str, float]
    output_tokens: LengthStats
    accuracy_source: str
    notes: str = ""
    answer_lengths_of: str = ""

    @property
    def length_group(self) -> str:
        """The name whose per-prompt answer lengths this model uses."""
        return self.answer_lengths_of or self.name


@dataclass(frozen=True, slots=True)
class ScenarioData:
    """Everything a derived workload is computed from, with its citations."""

    name: str
    description: str
    tasks: tuple[TaskData, ...]
    models: Mapping[str, ModelData]
    sources: tuple[str, ...]
    difficulty_sd: float
    origin: str = "<memory>"

    def __post_init__(self) -> None:
        if not self.tasks:
            raise InputError(f"{self.origin}: scenario data {self.name!r} has no tasks")
        if not (math.isfinite(self.difficulty_sd) and self.difficulty_sd > 0):
            raise InputError(f"{self.origin}: {self.difficulty_sd=} must be > 0")
        if abs(sum(t.weight for t in self.tasks) - 1.0) > 1e-2:
            raise InputError(f"{self.origin}: task weights sum to "
                             f"{sum(t.weight for t in self.tasks):.4f}, not 1")
        names = {t.name for t in self.tasks}
        for model in self.models.values():
            missing = sorted(names - set(model.accuracy))
            if missing:
                raise InputError(
                    f"{self.origin}: model {model.name!r} has no accuracy for task(s) {missing}"
                )
            self._check_length_group(model)

    def _check_length_group(self, model: ModelData) -> None:
        """A shared answer-length draw needs a known model with the same length statistics."""
        twin = self.models.get(model.length_group)
        if twin is None or twin.output_tokens != model.output_tokens:
            raise InputError(
                f"{self.origin}: model {model.name!r} shares answer lengths with "
                f"{model.answer_lengths_of!r}, which is not a model here with the same "
                "output_tokens statistics"
            )

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    def model(self, name: str) -> ModelData:
        """The data of model ``name``; the error lists the models this file has."""
        if name not in self.models:
            raise InputError(
                f"{self.origin}: scenario data {self.name!r} has no model {name!r}; "
                f"it has {sorted(self.models)}"
            )
        return self.models[name]


def _field(raw: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(raw, Mapping) or key not in raw:
        raise InputError(f"{where}: missing field {key!r}")
    return raw[key]


def _number(raw: Mapping[str, Any], key: str, where: str) -> float:
    value = _field(raw, key, where)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{where}.{key}: {value!r} is not a finite number")
    return float(value)


def _lengths(raw: Mapping[str, Any], where: str) -> LengthStats:
    return LengthStats(
        median_tokens=_number(raw, "median_tokens", where),
        sigma=_number(raw, "sigma", where),
        mean_tokens=_number(raw, "mean_tokens", where),
        source=str(raw.get("source", "")),
    )


def _accuracy(raw: Mapping[str, Any], where: str) -> Mapping[str, float]:
    if not isinstance(raw, Mapping) or not raw:
        raise InputError(f"{where}: must be a non-empty mapping task -> accuracy")
    out = {str(task): _number(raw, task, where) for task in raw}
    for task, value in out.items():
        if not 0.0 <= value <= 1.0:
            raise InputError(f"{where}.{task}: accuracy {value!r} must be in [0, 1]")
    return MappingProxyType(out)


def _model(name: str, raw: Mapping[str, Any], where: str) -> ModelData:
    return ModelData(
        name=name,
        accuracy=_accuracy(_field(raw, "accuracy", where), f"{where}.accuracy"),
        output_tokens=_lengths(_field(raw, "output_tokens", where), f"{where}.output_tokens"),
        accuracy_source=str(_field(raw, "accuracy_source", where)),
        notes=str(raw.get("notes", "")),
    )


def _task(name: str, raw: Mapping[str, Any], where: str) -> TaskData:
    weight = _number(raw, "weight", where)
    if weight <= 0:
        raise InputError(f"{where}.weight: {weight!r} must be > 0")
    lengths = _lengths(_field(raw, "input_tokens", where), f"{where}.input_tokens")
    return TaskData(name=name, weight=weight, input_tokens=lengths)


def scenario_data_from_mapping(raw: Mapping[str, Any], origin: str) -> ScenarioData:
    """Validate a parsed data file; errors name ``origin`` and the dotted field path."""
    tasks_raw = _field(raw, "tasks", origin)
    models_raw = _field(raw, "models", origin)
    if not isinstance(tasks_raw, Mapping) or not isinstance(models_raw, Mapping):
        raise InputError(f"{origin}: 'tasks' and 'models' must be mappings keyed by name")
    return ScenarioData(
        name=str(_field(raw, "name", origin)),
        description=str(raw.get("description", "")),
        tasks=tuple(_task(str(k), v, f"{origin}: tasks.{k}") for k, v in tasks_raw.items()),
        models=MappingProxyType(
            {str(k): _model(str(k), v, f"{origin}: models.{k}") for k, v in models_raw.items()}
        ),
        sources=tuple(str(s) for s in _field(raw, "sources", origin)),
        difficulty_sd=_number(raw, "difficulty_sd", origin),
        origin=origin,
    )
