"""The ``fleet-16m-64g`` scenario's models: LLMRouter's five open models and eleven
illustrative fine-tunes of them (docs/architecture.md §5).

Stage: scenarios (constants only; nothing is computed at import).
Each fine-tune is ``+FLEET_GAIN_LOGIT`` on its specialty tasks and ``−FLEET_LOSS_LOGIT`` on the
others (see :mod:`routerwise.scenarios.fine_tune`). The sizes are a choice, not a measurement:
+0.8 logit turns a 55% task into 73%, a specialist that beats its base clearly but not the
70B on most tasks; −0.3 logit (55% → 48%) is the forgetting elsewhere that makes the base
still worth routing to. The specialties group LLMRouter's 14 tasks by skill.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from routerwise.scenarios.fine_tune import FineTune

#: Logit gain of a fleet fine-tune on its specialty tasks.
FLEET_GAIN_LOGIT = 0.8
#: Logit loss of a fleet fine-tune on every other task.
FLEET_LOSS_LOGIT = 0.3

#: Specialty → LLMRouter tasks it covers.
SPECIALTIES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "code": ("human_eval", "mbpp"),
    "math": ("gsm8k", "math", "agentverse-mgsm"),
    "reasoning": ("agentverse-logicgrid", "gpqa", "arc_challenge"),
    "knowledge": ("mmlu", "natural_qa", "trivia_qa"),
    "commonsense": ("commonsense_qa", "openbook_qa", "commongen"),
})

#: The five open models of ``llmrouter-open-models`` → their fine-tunes' specialties (11).
_FLEET_TUNED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("llama-3.1-8b", ("code", "math", "knowledge")),
    ("qwen2.5-7b", ("code", "math", "reasoning")),
    ("mistral-7b", ("code", "commonsense")),
    ("qwen2.5-32b", ("math", "knowledge")),
    ("llama-3.1-70b", ("reasoning",)),
)


def _tune(base: str, specialty: str) -> FineTune:
    return FineTune(
        name=f"{base}-{specialty}",
        base=base,
        specialty_tasks=SPECIALTIES[specialty],
        gain_logit=FLEET_GAIN_LOGIT,
        loss_logit=FLEET_LOSS_LOGIT,
    )


FLEET_FINE_TUNES: tuple[FineTune, ...] = tuple(
    _tune(base, s) for base, specialties in _FLEET_TUNED for s in specialties
)

#: The scenario's 16 model names: each base followed by its fine-tunes.
FLEET_MODELS: tuple[str, ...] = tuple(
    name
    for base, specialties in _FLEET_TUNED
    for name in (base, *(f"{base}-{s}" for s in specialties))
)
