"""Stage deploy — build the deployment description (IR) from a plan.

Inputs: a feasible ``Plan`` (its setup, cluster, routing, predictions and resolved spec),
the plan file's text (for its digest) and :class:`DeployOptions` (images, model paths,
ports, API key variable, context length). Outputs: a :class:`~routerwise.deploy.ir.DeploymentIR`
or an ``InputError`` naming every problem (a setup that does not fit its cluster, a model
without a path, a port out of range).

How the plan's numbers become engine settings (docs/deploy.md):

* compute share → ``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`` = the share in whole percent,
  rounded **down** (so a GPU's percentages never add up to more than 100); an instance with
  share 1 runs without MPS;
* memory → the plan's memory model (``profiles.memory``): a shard may use ``share × GPU
  memory × gpu_memory_utilization`` (0.9, vLLM's default), so ``--gpu-memory-utilization``
  is ``0.9 × share`` (vLLM reads it as a fraction of the whole GPU, per instance) and the
  MPS pinned memory limit is ``share × GPU memory``, both rounded down;
* scheduler flags → the ``EngineConfig`` the latency profiles were estimated with, and a
  context length (``--max-model-len``) that fits the smallest engine's KV cache.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from routerwise import __version__
from routerwise.deploy.checks import fit_problems
from routerwise.deploy.ir import (
    Backend,
    DeploymentIR,
    Engine,
    EngineFlags,
    Gateway,
    GpuTenant,
    GpuUsage,
    MemoryBudget,
    MpsGroup,
    Node,
)
from routerwise.errors import InputError
from routerwise.profiles.engine_sim import EngineConfig
from routerwise.profiles.memory import DEFAULT_MEMORY, MemoryModel, kv_capacity_tokens, weights_gib
from routerwise.spec.catalog import GpuSpec, ModelArch, get_gpu
from routerwise.spec.deployment import Instance
from routerwise.spec.plan import Plan
from routerwise.spec.spec_file import parse_spec

#: vLLM's OpenAI-compatible server image (pin a tag you have tested; ``--image`` overrides).
DEFAULT_IMAGE = "vllm/vllm-openai:v0.11.0"
#: The gateway's image: RouterWise itself (build it from this repository; ``--gateway-image``).
DEFAULT_GATEWAY_IMAGE = f"routerwise:{__version__}"
DEFAULT_GATEWAY_PORT = 8000
PLAN_COPY = "plan.json"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
GIB_MIB = 1024


@dataclass(frozen=True, slots=True)
class DeployOptions:
    """What a deployment needs beyond the plan; ``model_paths`` maps a model to a path or HF id."""

    image: str = DEFAULT_IMAGE
    gateway_image: str = DEFAULT_GATEWAY_IMAGE
    model_paths: Mapping[str, str] = field(default_factory=dict)
    gateway_port: int = DEFAULT_GATEWAY_PORT
    api_key_env: str | None = None
    max_model_len: int | None = None
    memory: MemoryModel = DEFAULT_MEMORY
    engine: EngineConfig = field(default_factory=EngineConfig)

    def __post_init__(self) -> None:
        for what, image in (("--image", self.image), ("--gateway-image", self.gateway_image)):
            if not image.strip() or any(c.isspace() for c in image):
                raise InputError(f"{what} {image!r} must be an image reference without spaces")
        if self.api_key_env is not None and not _ENV_NAME.fullmatch(self.api_key_env):
            raise InputError(f"--api-key-env {self.api_key_env!r} must be an environment "
                             "variable name (letters, digits, underscores)")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise InputError(f"--max-model-len {self.max_model_len} must be >= 1")


def plan_digest(plan_text: str) -> str:
    """The first 16 hex digits of the plan file's SHA-256 (recorded in every artifact)."""
    return hashlib.sha256(plan_text.encode("utf-8")).hexdigest()[:16]


# --- inputs: architectures, paths, the fit ------------------------------------------------


def _spec_models(plan: Plan, source: str) -> dict[str, tuple[ModelArch, str]]:
    """Model name → (architecture, default path: the catalog's HF id or '')."""
    try:
        spec = parse_spec(plan.inputs.spec, f"{source}: inputs.spec")
    except InputError as exc:
        raise InputError(f"{source}: the plan's resolved spec cannot be read: {exc}") from None
    return {m.name: (m.to_arch(), m.to_arch().hf_name if m.catalog_id else "")
            for m in spec.models}


def resolve_paths(
    deployed: Sequence[str], defaults: Mapping[str, str], overrides: Mapping[str, str],
    known: Sequence[str],
) -> dict[str, str]:
    """Model → path: ``overrides`` (``--model-path``) first, then the catalog's HF id."""
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise InputError(f"--model-path names model(s) {unknown} that the plan does not have; "
                         f"its models: {', '.join(known)}")
    empty = sorted(m for m, p in overrides.items() if not p.strip())
    if empty:
        raise InputError(f"--model-path for {empty}: the path or Hugging Face id is empty")
    paths = {m: overrides.get(m) or defaults.get(m, "") for m in deployed}
    missing = [m for m in deployed if not paths[m]]
    if missing:
        raise InputError(
            "no model path for " + ", ".join(repr(m) for m in missing) + ": not a catalog model "
            "with a Hugging Face id; give --model-path " + " ".join(f"{m}=PATH_OR_HF_ID"
                                                                    for m in missing))
    return paths


def _check_fit(plan: Plan, source: str, archs: Mapping[str, ModelArch], gpu: GpuSpec,
               mem: MemoryModel) -> None:
    if not plan.feasible:
        raise InputError(f"{source}: the plan is infeasible (no setup meets its SLO); there is "
                         "nothing to deploy — re-plan at a reachable rate or SLO")
    problems = fit_problems(plan, archs, gpu, mem)
    if problems:
        c = plan.cluster
        raise InputError(
            f"{source}: the plan's setup does not fit its cluster ({c.num_gpus}× {c.gpu_type}, "
            f"{c.gpus_per_node} per node):\n" + "\n".join(f"  - {p}" for p in problems))


# --- names, groups, memory ----------------------------------------------------------------


def dns_label(text: str, limit: int = 63) -> str:
    """A DNS-1035 label (lower case, digits, '-', starting with a letter) derived from ``text``."""
    label = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
    if not label[0].isalpha():
        label = f"m-{label}"
    return label[:limit].rstrip("-")


def engine_names(plan: Plan) -> list[str]:
    """``llama-3-1-8b-0`` per instance; distinct even when two model names clean up alike."""
    names: list[str] = []
    replica: dict[str, int] = defaultdict(int)
    for inst in plan.setup:
        base = dns_label(inst.model, 50)
        name = f"{base}-{replica[inst.model]}"
        if name in names:  # two model names that map to one label
            name = f"{base}-{hashlib.sha256(inst.model.encode()).hexdigest()[:6]}-" \
                   f"{replica[inst.model]}"
        names.append(name)
        replica[inst.model] += 1
    return names


def mps_groups(instances: Sequence[Instance], names: Sequence[str],
               gpus_per_node: int) -> list[MpsGroup]:
    """Connected components of GPUs linked by instances that run below a whole GPU."""
    parent: dict[int, int] = {}

    def find(g: int) -> int:
        while parent.setdefault(g, g) != g:
            g = parent[g]
        return g

    members: list[int] = [i for i, inst in enumerate(instances) if inst.mps_share < 1]
    for i in members:
        first, *rest = instances[i].gpu_ids
        for g in rest:
            parent[find(g)] = find(first)
        find(first)
    comps: dict[int, set[int]] = defaultdict(set)
    for g in list(parent):
        comps[find(g)].add(g)
    groups = []
    for gpus in sorted(comps.values(), key=min):
        ids = tuple(sorted(gpus))
        node = ids[0] // gpus_per_node
        local = tuple(g % gpus_per_node for g in ids)
        engines = tuple(names[i] for i in members if set(instances[i].gpu_ids) <= gpus)
        label = f"{local[0]}" if len(local) == 1 else f"{local[0]}-{local[-1]}" \
            if local == tuple(range(local[0], local[-1] + 1)) else "-".join(map(str, local))
        groups.append(MpsGroup(f"mps-node{node}-gpu{label}", node, ids, local, engines))
    return groups


def memory_budget(arch: ModelArch, gpu: GpuSpec, inst: Instance, mem: MemoryModel) -> MemoryBudget:
    """The plan's memory model for one shard, and the settings that enforce it (rounded down)."""
    slice_gib = gpu.memory_gib * inst.mps_share
    usable = slice_gib * mem.gpu_memory_utilization
    reserve = mem.activation_reserve_gib + (mem.nccl_reserve_gib if inst.tp > 1 else 0.0)
    weights = weights_gib(arch) / inst.tp
    return MemoryBudget(
        gpu_memory_gib=gpu.memory_gib, slice_gib=slice_gib, usable_gib=usable,
        weights_gib=weights, reserve_gib=reserve, kv_gib=usable - weights - reserve,
        kv_tokens=kv_capacity_tokens(arch, gpu, inst.tp, inst.mps_share, mem),
        gpu_memory_utilization=math.floor(inst.mps_share * mem.gpu_memory_utilization * 1e4
                                          + 1e-6) / 1e4,
        pinned_limit_mib=math.floor(slice_gib * GIB_MIB + 1e-6),
    )


def thread_percentage(share: float) -> int:
    """Whole percent of the SMs, rounded down (at least 1)."""
    return max(1, math.floor(share * 100 + 1e-6))


# --- engines ------------------------------------------------------------------------------


def _after(instances: Sequence[Instance], names: Sequence[str]) -> list[tuple[str, ...]]:
    """For each instance, the instances started before it on one of its GPUs (latest per GPU).

    vLLM measures free memory while it starts, so engines that share a GPU start one after
    another, each once the previous one is healthy.
    """
    last: dict[int, str] = {}
    out = []
    for inst, name in zip(instances, names, strict=True):
        out.append(tuple(dict.fromkeys(last[g] for g in inst.gpu_ids if g in last)))
        for g in inst.gpu_ids:
            last[g] = name
    return out


@dataclass(frozen=True, slots=True)
class _Context:
    plan: Plan
    gpu: GpuSpec
    archs: Mapping[str, ModelArch]
    paths: Mapping[str, str]
    names: Sequence[str]
    groups: Sequence[MpsGroup]
    options: DeployOptions


def _group_of(ctx: _Context, inst: Instance) -> MpsGroup | None:
    if inst.mps_share >= 1:
        return None
    return next(g for g in ctx.groups if set(inst.gpu_ids) <= set(g.gpu_ids))


def _engine(ctx: _Context, i: int, after: tuple[str, ...]) -> Engine:
    from routerwise.deploy.explain import engine_reasons

    inst, name = ctx.plan.setup[i], ctx.names[i]
    per_node = ctx.plan.cluster.gpus_per_node
    group = _group_of(ctx, inst)
    budget = memory_budget(ctx.archs[inst.model], ctx.gpu, inst, ctx.options.memory)
    pct = thread_percentage(inst.mps_share) if group else None
    replica = sum(1 for other in ctx.plan.setup[:i] if other.model == inst.model)
    replicas = sum(1 for other in ctx.plan.setup if other.model == inst.model)
    reasons = engine_reasons(ctx.plan, i, ctx.names, budget, pct, ctx.options.memory)
    return Engine(
        name=name, model=inst.model, replica=replica, replicas=replicas,
        model_path=ctx.paths[inst.model], node=inst.gpu_ids[0] // per_node,
        gpu_ids=inst.gpu_ids, local_gpu_ids=tuple(g % per_node for g in inst.gpu_ids),
        tp=inst.tp, mps_share=inst.mps_share, thread_percentage=pct, memory=budget,
        port=ctx.options.gateway_port + 1 + i, after=after,
        group=group.name if group else None,
        group_positions=tuple(group.gpu_ids.index(g) for g in inst.gpu_ids) if group else (),
        reasons=reasons,
    )


def gpu_usage(engines: Sequence[Engine], gpus_per_node: int) -> tuple[GpuUsage, ...]:
    """Per GPU id: its tenants, whose shares, percentages and memory must fit one GPU."""
    tenants: dict[int, list[GpuTenant]] = defaultdict(list)
    for e in engines:
        for g in e.gpu_ids:
            tenants[g].append(GpuTenant(e.name, e.model, e.mps_share, e.thread_percentage,
                                        e.memory.gpu_memory_utilization,
                                        e.memory.pinned_limit_mib))
    return tuple(GpuUsage(g, g // gpus_per_node, g % gpus_per_node, tuple(ts))
                 for g, ts in sorted(tenants.items()))


def start_order(engines: Sequence[Engine]) -> list[Engine]:
    """Engines that wait for no other first, then each wave after the ones it waits for."""
    level: dict[str, int] = {}
    for e in engines:  # ``after`` only names engines placed earlier
        level[e.name] = 1 + max((level[a] for a in e.after), default=-1)
    return sorted(engines, key=lambda e: level[e.name])


def _nodes(engines: Sequence[Engine], groups: Sequence[MpsGroup]) -> tuple[Node, ...]:
    out = []
    for n in sorted({e.node for e in engines}):
        mine = tuple(start_order([e for e in engines if e.node == n]))
        gpus = tuple(sorted({g for e in mine for g in e.gpu_ids}))
        out.append(Node(n, gpus, mine, tuple(g for g in groups if g.node == n)))
    return tuple(out)


def _check_ports(options: DeployOptions, count: int) -> None:
    last = options.gateway_port + count
    if options.gateway_port < 1 or last > 65535:
        raise InputError(f"--gateway-port {options.gateway_port}: the gateway and {count} "
                         f"engine(s) need ports {options.gateway_port}-{last}, within 1-65535")


def _flags(options: DeployOptions, engines: Sequence[Engine]) -> EngineFlags:
    smallest = min(engines, key=lambda e: e.memory.kv_tokens)
    length = options.max_model_len or min(options.memory.min_kv_tokens,
                                          smallest.memory.kv_tokens)
    too_small = [f"{e.name} ({e.memory.kv_tokens} tokens)" for e in engines
                 if e.memory.kv_tokens < length]
    if too_small:
        raise InputError(f"--max-model-len {length}: one request of that length does not fit "
                         f"the KV cache of {', '.join(too_small)}")
    eng = options.engine
    return EngineFlags(length, eng.max_num_seqs, eng.max_num_batched_tokens, eng.block_size_tokens)


def _gateway(options: DeployOptions, engines: Sequence[Engine]) -> Gateway:
    backends = tuple(Backend(e.model, e.name, e.node, e.port) for e in engines)
    return Gateway(options.gateway_image, options.gateway_port, options.api_key_env, backends,
                   PLAN_COPY)


def build_ir(plan: Plan, plan_text: str, source: str, options: DeployOptions) -> DeploymentIR:
    """The deployment description of ``plan``, read from ``source`` whose text is ``plan_text``."""
    from routerwise.deploy.explain import deployment_notes

    if plan.cluster.mixed:
        raise InputError(f"{source}: the plan spans node pools of several GPU types "
                         f"({', '.join(p.gpu_type for p in plan.cluster.pools)}); deploying "
                         "mixed clusters is not supported yet")
    gpu = get_gpu(plan.cluster.gpu_type)
    models = _spec_models(plan, source)
    archs = {m: arch for m, (arch, _) in models.items()}
    _check_fit(plan, source, archs, gpu, options.memory)
    deployed = list(dict.fromkeys(inst.model for inst in plan.setup))
    paths = resolve_paths(deployed, {m: p for m, (_, p) in models.items()},
                          options.model_paths, list(plan.models))
    _check_ports(options, len(plan.setup))
    names = engine_names(plan)
    groups = mps_groups(plan.setup, names, plan.cluster.gpus_per_node)
    ctx = _Context(plan, gpu, archs, paths, names, groups, options)
    engines = tuple(_engine(ctx, i, after)
                    for i, after in enumerate(_after(plan.setup, names)))
    flags = _flags(options, engines)
    return DeploymentIR(
        name=dns_label(f"routerwise-{plan.scenario.rsplit('/', 1)[-1].removesuffix('.yaml')}",
                       40),
        plan_source=source, plan_sha256=plan_digest(plan_text), routerwise_version=__version__,
        gpu_type=gpu.name, gpu_memory_gib=gpu.memory_gib, num_gpus=plan.cluster.num_gpus,
        gpus_per_node=plan.cluster.gpus_per_node, image=options.image, flags=flags,
        engines=engines, groups=tuple(groups), nodes=_nodes(engines, groups),
        gpus=gpu_usage(engines, plan.cluster.gpus_per_node), gateway=_gateway(options, engines),
        notes=deployment_notes(plan, engines, flags, options.memory,
                               options.max_model_len is not None),
    )
