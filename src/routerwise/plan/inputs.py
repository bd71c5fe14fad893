"""Resolve a plan's inputs: the spec (built-in scenario or file, with flag overrides), the
workload it names, token lengths per model, and the search options per model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from routerwise.errors import InfeasibleError, SpecError
from routerwise.predict.apply import predicted_workload
from routerwise.profiles.estimator import TokenLengths, lengths_from_workload
from routerwise.profiles.memory import kv_capacity_tokens
from routerwise.scenarios.registry import (
    DEFAULT_SCENARIO,
    load_scenario_spec,
    scenario_workload,
)
from routerwise.search.placement import Layout, layout_of
from routerwise.search.space import GpuTypes, ModelOptions, model_options, pooled_options, shape_of
from routerwise.spec.catalog import GpuSpec, ModelArch, get_gpu, valid_tps
from routerwise.spec.deployment import InstanceShape
from routerwise.spec.spec_file import Spec, load_spec
from routerwise.spec.workload import Workload
from routerwise.spec.workload_io import load_workload

log = logging.getLogger(__name__)

#: Token lengths used when a workload file carries none (e.g. LLMRouter's JSON).
FALLBACK_INPUT_TOKENS, FALLBACK_OUTPUT_TOKENS = 512, 256


@dataclass(frozen=True, slots=True)
class PlanInputs:
    spec: Spec
    source: str  # scenario name or spec path
    workload: Workload  # restricted to the spec's models, in spec order
    gpu: GpuSpec
    archs: dict[str, ModelArch]
    lengths: dict[str, TokenLengths]
    options: list[ModelOptions]
    notes: tuple[str, ...]
    predictor: Path | None = None
    #: the GPU of each node pool (``gpu`` is the first; one entry on a single-type cluster)
    pool_gpus: tuple[GpuSpec, ...] = ()

    @property
    def gpu_types(self) -> GpuTypes:
        """What the search keys curves by: one type, or each pool's."""
        if len(self.pool_gpus) <= 1:
            return self.gpu.name
        return tuple(g.name for g in self.pool_gpus)

    @property
    def layout(self) -> Layout:
        c = self.spec.cluster
        return c.gpus_per_node if c.pools is None else layout_of(c.groups())


def resolve_spec(scenario: str | None, spec_path: Path | None, rate_rps: float | None,
                 slo_ms: float | None) -> tuple[Spec, str, Path | None]:
    """The spec to plan (default: the default built-in scenario), with overrides applied."""
    if scenario is not None and spec_path is not None:
        raise SpecError("give a built-in scenario name or --spec FILE, not both")
    if scenario is None and spec_path is None:
        scenario = DEFAULT_SCENARIO
    spec = load_scenario_spec(scenario) if scenario else load_spec(spec_path)  # type: ignore[arg-type]
    updates: dict[str, object] = {}
    if rate_rps is not None:
        if not (math.isfinite(rate_rps) and rate_rps > 0):
            raise SpecError(f"--rate-rps {rate_rps!r} must be a positive, finite number of "
                            "requests/s")
        updates["rate_rps"] = rate_rps
    if slo_ms is not None:
        if not (math.isfinite(slo_ms) and slo_ms > 0):
            raise SpecError(f"--slo-ms {slo_ms!r} must be a positive, finite number of ms")
        updates["slo"] = spec.slo.model_copy(update={"target_ms": slo_ms})
    ref = spec.workload
    if ref.path is not None and spec_path is not None and not Path(ref.path).is_absolute():
        # the plan records the resolved spec: make it readable from anywhere
        absolute = str((spec_path.parent / ref.path).resolve())
        updates["workload"] = ref.model_copy(update={"path": absolute})
    if updates:
        spec = spec.model_copy(update=updates)
    return spec, scenario or str(spec_path), spec_path


def spec_workload(spec: Spec, spec_path: Path | None) -> Workload:
    ref = spec.workload
    where = f"{spec_path or spec.name}: workload"
    if ref.builtin is not None:
        return scenario_workload(ref.builtin, num_prompts=ref.num_prompts or 2000, seed=ref.seed)
    assert ref.path is not None
    path = Path(ref.path)
    if not path.is_absolute() and spec_path is not None:
        path = spec_path.parent / path
    if not path.exists():
        raise SpecError(f"{where}.path: file {str(path)!r} does not exist")
    workload = load_workload(path, ref.format)
    if ref.num_prompts is not None:
        workload = workload.sample(ref.num_prompts, np.random.default_rng(ref.seed))
    return workload


def restrict_workload(spec: Spec, workload: Workload, where: str) -> Workload:
    names = tuple(m.name for m in spec.models)
    missing = [m for m in names if m not in workload.models]
    if missing:
        raise SpecError(
            f"{where}: models[].name {missing} have no scores in {workload.source} "
            f"(its models: {list(workload.models)})")
    extra = [m for m in workload.models if m not in names and m not in spec.workload.ignore_models]
    if extra:
        raise SpecError(
            f"{where}: {workload.source} has scores for model(s) {extra} that are not in the "
            "spec's models; add them to models or list them in workload.ignore_models")
    return workload.select_models(names)


def _lengths(workload: Workload, names: tuple[str, ...]) -> tuple[dict[str, TokenLengths],
                                                                  tuple[str, ...]]:
    """Per-model token lengths from what the workload has; a fixed fallback only for what it
    lacks, and a note that says which lengths came from where."""
    inp, out = workload.input_tokens, workload.output_tokens
    if inp is not None and out is not None:
        return {m: lengths_from_workload(workload, m) for m in names}, (
            (f"token lengths from {workload.source}: input from "
             f"{workload.input_tokens_from or 'the file'}, output per model from the file"),)
    n = workload.num_prompts
    inputs = inp if inp is not None else np.full(n, float(FALLBACK_INPUT_TOKENS))
    lengths = {}
    for k, m in enumerate(names):
        outputs = out[:, k] if out is not None else np.full(n, float(FALLBACK_OUTPUT_TOKENS))
        lengths[m] = TokenLengths.pool(inputs, outputs, f"{workload.source} ({m})")
    in_txt = (f"input from {workload.input_tokens_from or 'the file'}" if inp is not None
              else f"no input lengths: {FALLBACK_INPUT_TOKENS} input tokens assumed")
    out_txt = ("output per model from the file" if out is not None
               else f"no output lengths: {FALLBACK_OUTPUT_TOKENS} output tokens assumed")
    note = f"token lengths of {workload.source}: {in_txt}; {out_txt}"
    log.warning(note)
    return lengths, (note,)


def plan_inputs(spec: Spec, source: str, spec_path: Path | None,
                predictor: Path | None = None) -> PlanInputs:
    """Everything the search needs, validated; a model that fits nowhere is infeasible.

    With ``predictor`` (a ``train-predictor`` directory) the workload is routed on its
    predictions (out of fold on its own training data) and scored on its labels.
    """
    where = str(spec_path or spec.name)
    if spec.slo.metric != "ttft" or spec.slo.stat != "mean":
        raise SpecError(f"{where}: slo: the planner optimises mean TTFT (metric: ttft, "
                        f"stat: mean); got metric={spec.slo.metric}, stat={spec.slo.stat}")
    groups = spec.cluster.groups()
    pool_gpus = tuple(get_gpu(g) for g, _, _ in groups)
    archs = {m.name: m.to_arch() for m in spec.models}
    workload = restrict_workload(spec, spec_workload(spec, spec_path), where)
    if predictor is not None:
        workload = predicted_workload(workload, predictor)
    lengths, notes = _lengths(workload, tuple(archs))
    options = [pooled_options([
        model_options(m.name, archs[m.name], gpu, count, per_node, max_tp=m.max_tp or 8,
                      pool=p) for p, (gpu, (_, count, per_node)) in
        enumerate(zip(pool_gpus, groups, strict=True))]) for m in spec.models]
    for o in options:
        if not o.options:
            _raise_does_not_fit(o.arch, pool_gpus, groups, o.model)
    return PlanInputs(spec=spec, source=source, workload=workload, gpu=pool_gpus[0],
                      archs=archs, lengths=lengths, options=options, notes=notes,
                      predictor=None if predictor is None else predictor.resolve(),
                      pool_gpus=pool_gpus)


def drop_unusable(inputs: PlanInputs, unusable: Mapping[InstanceShape, str]) -> PlanInputs:
    """Remove deployments whose instance shape cannot serve the workload (noted in the plan)."""
    options = []
    gpu = inputs.gpu_types
    for o in inputs.options:
        keep = tuple(d for d in o.options if shape_of(o.model, d, gpu) not in unusable)
        if not keep:
            reasons = {v for s, v in unusable.items() if s.model == o.model}
            names = "/".join(sorted({g.name for g in inputs.pool_gpus or (inputs.gpu,)}))
            raise InfeasibleError(f"model {o.model!r} has no instance shape that can serve this "
                                  f"workload on {names}: {sorted(reasons)[0]}")
        options.append(ModelOptions(o.model, o.arch, keep, o.enumerated))
    shapes = sorted(f"{s.model} {s.describe()}" for s in unusable)
    more = ", …" if len(shapes) > 6 else ""
    why = sorted({_reason_kind(v) for v in unusable.values()})
    note = (f"{len(unusable)} instance shape(s) dropped ({'; '.join(why)}): "
            f"{', '.join(shapes[:6])}{more}")
    return replace(inputs, options=options, notes=(*inputs.notes, note))


def _reason_kind(reason: str) -> str:
    if "per_model_max_ms" in reason:
        return "slower than slo.per_model_max_ms at zero load"
    if "no kernel data" in reason:
        return "the estimator has no kernel data for the architecture"
    return "KV cache cannot hold the workload's longest request"


def _raise_does_not_fit(arch: ModelArch, gpus: tuple[GpuSpec, ...],
                        groups: tuple[tuple[str, int, int], ...], name: str) -> None:
    where = " + ".join(f"{n}× {g.name} ({per} per node)"
                       for g, (_, n, per) in zip(gpus, groups, strict=True))
    verb = "fits on no pool of" if len(groups) > 1 else "fits nowhere on"
    for gpu, (_, num_gpus, per_node) in zip(gpus, groups, strict=True):
        tps = [t for t in valid_tps(arch) if t <= min(num_gpus, per_node)]
        try:
            kv_capacity_tokens(arch, gpu, max(tps) if tps else 1, 1.0)
        except InfeasibleError as exc:
            last = exc
            continue
        raise InfeasibleError(f"model {name!r} has no deployment on {where}")
    raise InfeasibleError(f"cluster: model {name!r} {verb} {where}: {last}",
                          reachable=last.reachable) from None
