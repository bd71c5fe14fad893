"""Illustrative fine-tunes: a base model's cited accuracies shifted in logit space.

Stage: scenarios (pure functions; uses ``spec`` only through ``errors``).
Inputs: a :class:`ScenarioData` and :class:`FineTune` definitions (name, base, specialty tasks,
logit gain and loss). Outputs: the same data with one added :class:`ModelData` per fine-tune.
Units: ``gain_logit`` and ``loss_logit`` are in logit units (log-odds of a correct answer).

A fine-tune's accuracy on task t is ``σ(logit(a_base,t) + gain_logit)`` on its specialty tasks
and ``σ(logit(a_base,t) − loss_logit)`` on every other task (the base's accuracy is first
clipped to [ACCURACY_MARGIN, 1 − ACCURACY_MARGIN], as the derivation does), so it stays in
(0, 1). These numbers are *illustrative*, not measured: no fine-tune was evaluated. Its answer
lengths are its base's (same distribution, and in a derived workload the same length per prompt,
see :attr:`ModelData.answer_lengths_of`), so a latency estimate for the base's architecture and
lengths serves it too. Each fine-tune's ``accuracy_source`` states exactly how it was made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from scipy.special import expit, logit

from routerwise.errors import InputError
from routerwise.scenarios.derive import ACCURACY_MARGIN
from routerwise.scenarios.scenario_data import ModelData, ScenarioData


@dataclass(frozen=True, slots=True)
class FineTune:
    """A named fine-tune of ``base``: ``+gain_logit`` on ``specialty_tasks``, ``−loss_logit``
    on the other tasks (both >= 0, logit units)."""

    name: str
    base: str
    specialty_tasks: tuple[str, ...]
    gain_logit: float
    loss_logit: float

    def __post_init__(self) -> None:
        if not self.name or self.name == self.base:
            raise InputError(f"fine-tune {self.name!r}: needs a name of its own "
                             f"(base {self.base!r})")
        if not self.specialty_tasks or len(set(self.specialty_tasks)) != len(self.specialty_tasks):
            raise InputError(f"fine-tune {self.name!r}: specialty_tasks {self.specialty_tasks!r} "
                             "must be non-empty and distinct")
        for field in ("gain_logit", "loss_logit"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"fine-tune {self.name!r}: {field}={value!r} must be finite "
                                 "and >= 0 (logit units)")

    def shift_logit(self, task: str) -> float:
        """The logit shift this fine-tune applies on ``task``."""
        return self.gain_logit if task in self.specialty_tasks else -self.loss_logit

    def describe(self, base: ModelData) -> str:
        """The accuracy_source of the fine-tune: how its numbers were made, and from what."""
        return (
            f"illustrative fine-tune of {self.base} (not measured): accuracy = "
            f"σ(logit(base) + {self.gain_logit:g}) on {', '.join(self.specialty_tasks)}; "
            f"σ(logit(base) − {self.loss_logit:g}) on the other tasks; base accuracy "
            f"clipped to [{ACCURACY_MARGIN:g}, {1 - ACCURACY_MARGIN:g}] first. "
            f"Base: {base.accuracy_source}"
        )


def _shifted(accuracy: float, shift: float) -> float:
    clipped = min(max(accuracy, ACCURACY_MARGIN), 1.0 - ACCURACY_MARGIN)
    return float(expit(logit(clipped) + shift))


def fine_tune_model(data: ScenarioData, tune: FineTune) -> ModelData:
    """The fine-tune's model data: its base's, with accuracies shifted and provenance stated."""
    base = data.model(tune.base)
    unknown = sorted(set(tune.specialty_tasks) - set(data.task_names))
    if unknown:
        raise InputError(f"{data.origin}: fine-tune {tune.name!r}: unknown specialty task(s) "
                         f"{unknown}; tasks: {list(data.task_names)}")
    accuracy = {t: _shifted(a, tune.shift_logit(t)) for t, a in base.accuracy.items()}
    return ModelData(
        name=tune.name,
        accuracy=MappingProxyType(accuracy),
        output_tokens=base.output_tokens,
        accuracy_source=tune.describe(base),
        notes=f"illustrative: a named fine-tune of {tune.base} that shares its architecture and "
              "answer lengths; its accuracies are a stated shift of the base's, not a measurement",
        answer_lengths_of=base.length_group,
    )


def apply_fine_tunes(data: ScenarioData, tunes: Sequence[FineTune]) -> ScenarioData:
    """``data`` with one model per fine-tune added (bases must be in ``data``; names new)."""
    if not tunes:
        return data
    models: dict[str, ModelData] = dict(data.models)
    for tune in tunes:
        if tune.name in models:
            raise InputError(f"{data.origin}: fine-tune {tune.name!r} clashes with a model "
                             f"already in scenario data {data.name!r}")
        models[tune.name] = fine_tune_model(data, tune)
    names = ", ".join(t.name for t in tunes)
    return replace(
        data,
        models=MappingProxyType(models),
        sources=(*data.sources, f"illustrative fine-tunes (not measured), logit shifts of their "
                 f"bases' accuracies (routerwise.scenarios.fine_tune): {names}"),
    )


def bases_of(tunes: Sequence[FineTune]) -> Mapping[str, str]:
    """Fine-tune name → base model name."""
    return MappingProxyType({t.name: t.base for t in tunes})
