"""Stage deploy — why each engine got its GPUs, share and memory (``routerwise deploy --check``).

Inputs: the plan, one placed instance's memory budget and MPS percentage (from
:mod:`routerwise.deploy.build`). Outputs: sentences, recorded in the IR (``Engine.reasons``,
``DeploymentIR.notes``) and printed by ``--check``; each says where a plan number had to be
rounded to what a setting can express. Units in the text: GiB, MiB, %, req/s, ms.
"""

from __future__ import annotations

from collections.abc import Sequence

from routerwise.deploy.ir import Engine, EngineFlags, MemoryBudget
from routerwise.profiles.memory import MemoryModel
from routerwise.spec.deployment import Deployment, share_label
from routerwise.spec.plan import Plan

_EXACT = 1e-6


def _why_deployed(plan: Plan, model: str) -> str:
    dep = next((d for d in plan.deployments if d.model == model), None)
    what = dep.describe() if isinstance(dep, Deployment) else "its instances"
    load = plan.predicted.per_model.get(model)
    fraction = plan.routing.fractions.get(model, 0.0)
    text = f"the plan deploys {model} as {what}; routing sends it {fraction:.1%} of requests"
    if load is None:
        return text
    text += f" ({load.rate_rps:.3g} of {plan.rate_rps:g} req/s)"
    if load.ttft_mean_ms is not None:
        text += f", predicted mean TTFT {load.ttft_mean_ms:.1f} ms"
    if load.utilisation is not None and load.capacity_rps is not None:
        text += f" at {load.utilisation:.0%} of its capacity ({load.capacity_rps:.3g} req/s)"
    return text


def _why_gpus(plan: Plan, index: int, names: Sequence[str]) -> str:
    inst = plan.setup[index]
    per_node = plan.cluster.gpus_per_node
    node = inst.gpu_ids[0] // per_node
    local = ",".join(str(g % per_node) for g in inst.gpu_ids)
    gpus = ",".join(map(str, inst.gpu_ids))
    text = (f"GPU(s) {gpus} = node {node} GPU(s) {local}: tp{inst.tp} needs {inst.tp} GPU(s) "
            "on one node, chosen by the plan's first-fit-decreasing placement")
    others = [f"{names[j]} {share_label(o.mps_share)} on GPU(s) "
              f"{','.join(str(g) for g in sorted(set(o.gpu_ids) & set(inst.gpu_ids)))}"
              for j, o in enumerate(plan.setup)
              if j != index and set(o.gpu_ids) & set(inst.gpu_ids)]
    return text + ("; shared with " + "; ".join(others) if others else "; no other engine on them")


def _why_share(share: float, pct: int | None) -> str:
    if pct is None:
        return "compute: whole GPU(s) (share 100%): no MPS, no thread limit"
    exact = abs(pct - share * 100) < _EXACT
    rounding = "exact" if exact else f"rounded down from {share * 100:.4g}%"
    return (f"compute: {share_label(share)} of each GPU's SMs in the plan → "
            f"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={pct} ({rounding}; MPS applies it at SM "
            "granularity)")


def _why_memory(budget: MemoryBudget, share: float, mem: MemoryModel) -> str:
    wanted = share * mem.gpu_memory_utilization
    rounding = ("" if abs(wanted - budget.gpu_memory_utilization) < _EXACT
                else f", rounded down from {wanted:.6g}")
    pinned = ("" if share >= 1 else
              f" = MPS pinned memory limit {budget.pinned_limit_mib} MiB per GPU")
    return (f"memory per GPU: a {budget.slice_gib:.1f} GiB slice ({share_label(share)} of "
            f"{budget.gpu_memory_gib:g} GiB){pinned}; vLLM may use {mem.gpu_memory_utilization:g}"
            f" of it, {budget.usable_gib:.1f} GiB → --gpu-memory-utilization "
            f"{budget.gpu_memory_utilization:g} (a fraction of the whole GPU{rounding}): "
            f"weights {budget.weights_gib:.1f} + reserve {budget.reserve_gib:.1f} + KV cache "
            f"{budget.kv_gib:.1f} GiB, {budget.kv_tokens:,} tokens for the instance")


def engine_reasons(plan: Plan, index: int, names: Sequence[str], budget: MemoryBudget,
                   pct: int | None, mem: MemoryModel) -> tuple[str, ...]:
    """Why instance ``index`` of the plan's setup gets its GPUs, share and memory."""
    inst = plan.setup[index]
    return (_why_deployed(plan, inst.model), _why_gpus(plan, index, names),
            _why_share(inst.mps_share, pct), _why_memory(budget, inst.mps_share, mem))


def _rounded(engines: Sequence[Engine]) -> list[str]:
    return [f"{e.name} {e.mps_share * 100:.4g}% → {e.thread_percentage}%" for e in engines
            if e.thread_percentage is not None
            and abs(e.thread_percentage - e.mps_share * 100) >= _EXACT]


def deployment_notes(plan: Plan, engines: Sequence[Engine], flags: EngineFlags,
                     mem: MemoryModel, length_given: bool) -> tuple[str, ...]:
    """Deployment-wide facts: memory basis, scheduler flags, context length, roundings."""
    rounded = _rounded(engines)
    return (
        f"GPU memory per {plan.cluster.gpu_type} from the catalog; vLLM reads "
        "--gpu-memory-utilization as a fraction of the GPU's real total, so each engine stays "
        "within its share even where the real total is a little lower",
        f"scheduler flags --max-num-seqs {flags.max_num_seqs} --max-num-batched-tokens "
        f"{flags.max_num_batched_tokens} --block-size {flags.block_size}: the engine model the "
        "plan's latency profiles were estimated with, so the engines run as planned",
        f"--max-model-len {flags.max_model_len}: " + (
            "as given; every engine's KV cache holds one request of that length" if length_given
            else f"the plan's memory model guarantees {mem.min_kv_tokens} tokens of KV cache in "
            "every engine (one request of that length always fits)"),
        ("MPS shares rounded down to whole percent: " + "; ".join(rounded)) if rounded else
        "no MPS share had to be rounded: every share is a whole percent",
    )
