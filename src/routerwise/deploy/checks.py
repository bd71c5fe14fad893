"""Stage deploy — does a plan's setup fit the cluster it declares? (checked before rendering)

Inputs: a ``Plan``, the architectures of its models and the cluster's ``GpuSpec``.
Outputs: a list of problems (empty when the setup can be deployed), each naming the
instance or GPU: GPU type, GPU ids outside the cluster, tensor parallelism across nodes,
MPS shares adding up to more than one GPU, shards that do not fit in their share of GPU
memory (the plan's memory model, ``profiles.memory``), routed models without an instance.
Units: shares are fractions, memory GiB.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from routerwise.profiles.memory import DEFAULT_MEMORY, MemoryModel, fits, shard_need_gib
from routerwise.spec.catalog import GpuSpec, ModelArch, get_gpu
from routerwise.spec.deployment import Instance, share_label
from routerwise.spec.plan import Plan

#: Slack on sums of shares (shares are stored to 6 decimals).
SHARE_TOLERANCE = 1e-6


def instance_label(plan: Plan, index: int) -> str:
    """``llama-3.1-8b#1``: the model and its replica number among the plan's instances."""
    inst = plan.setup[index]
    replica = sum(1 for other in plan.setup[:index] if other.model == inst.model)
    return f"{inst.model}#{replica}"


def _gpu_type_problems(plan: Plan, gpu: GpuSpec) -> list[str]:
    out = []
    for i, inst in enumerate(plan.setup):
        try:
            name = get_gpu(inst.gpu_type).name
        except ValueError:
            name = inst.gpu_type
        if name != gpu.name:
            out.append(f"{instance_label(plan, i)}: GPU type {inst.gpu_type!r} is not the "
                       f"cluster's {gpu.name}")
    return out


def _id_problems(plan: Plan) -> list[str]:
    c = plan.cluster
    out = []
    for i, inst in enumerate(plan.setup):
        outside = [g for g in inst.gpu_ids if g >= c.num_gpus]
        if outside:
            out.append(f"{instance_label(plan, i)}: GPU id(s) {outside} outside the cluster "
                       f"({c.num_gpus} GPUs: ids 0-{c.num_gpus - 1})")
        nodes = sorted({g // c.gpus_per_node for g in inst.gpu_ids})
        if len(nodes) > 1:
            out.append(f"{instance_label(plan, i)}: tp={inst.tp} on GPUs {list(inst.gpu_ids)} "
                       f"spans nodes {nodes} ({c.gpus_per_node} GPUs per node); tensor "
                       "parallelism stays inside a node")
    return out


def _share_problems(plan: Plan) -> list[str]:
    tenants: dict[int, list[tuple[str, float]]] = defaultdict(list)
    for i, inst in enumerate(plan.setup):
        for g in inst.gpu_ids:
            tenants[g].append((instance_label(plan, i), inst.mps_share))
    out = []
    for g, items in sorted(tenants.items()):
        total = sum(s for _, s in items)
        if total > 1 + SHARE_TOLERANCE:
            who = ", ".join(f"{name} {share_label(s)}" for name, s in items)
            out.append(f"GPU {g}: MPS shares add up to {share_label(total)} of one GPU ({who})")
    return out


def _memory_problems(
    plan: Plan, archs: Mapping[str, ModelArch], gpu: GpuSpec, mem: MemoryModel
) -> list[str]:
    out = []
    for i, inst in enumerate(plan.setup):
        arch = archs.get(inst.model)
        if arch is None:
            out.append(f"{instance_label(plan, i)}: model {inst.model!r} is not among the "
                       f"plan's models {list(archs)}")
        elif not _fits(arch, gpu, inst, mem):
            need = shard_need_gib(arch, inst.tp, mem)
            have = gpu.memory_gib * inst.mps_share * mem.gpu_memory_utilization
            out.append(f"{instance_label(plan, i)}: tp{inst.tp}@{share_label(inst.mps_share)} "
                       f"does not fit in GPU memory: each shard needs {need:.1f} GiB, its "
                       f"share of a {gpu.name} gives {have:.1f} GiB")
    return out


def _fits(arch: ModelArch, gpu: GpuSpec, inst: Instance, mem: MemoryModel) -> bool:
    try:
        return fits(arch, gpu, inst.tp, inst.mps_share, mem)
    except ValueError:  # a tp the model's heads cannot be split into
        return False


def _routing_problems(plan: Plan) -> list[str]:
    deployed = {inst.model for inst in plan.setup}
    return [f"model {m!r} receives {f:.1%} of requests in the plan's routing but has no "
            "instance" for m, f in plan.routing.fractions.items() if f > 0 and m not in deployed]


def fit_problems(
    plan: Plan, archs: Mapping[str, ModelArch], gpu: GpuSpec, mem: MemoryModel = DEFAULT_MEMORY
) -> list[str]:
    """Every reason the plan's setup cannot be deployed on its declared cluster."""
    if not plan.setup:
        return ["the plan places no instance"]
    return (_gpu_type_problems(plan, gpu) + _id_problems(plan) + _share_problems(plan)
            + _memory_problems(plan, archs, gpu, mem) + _routing_problems(plan))
