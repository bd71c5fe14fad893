"""Stage deploy — the intermediate description of a deployment (the IR every target renders).

Inputs: none (types only; :mod:`routerwise.deploy.build` fills them from a plan).
Outputs: frozen, slotted dataclasses: one :class:`Engine` per placed instance of the plan
(a vLLM server), its :class:`MemoryBudget`, the :class:`MpsGroup` s of GPUs shared through
MPS, the :class:`Node` s, the :class:`Gateway` and the whole :class:`DeploymentIR`.

Targets read only this description, never the plan, so every target deploys the same
thing and the consistency tests check one set of numbers. Units: shares are fractions of a
GPU, ``*_gib`` GiB, ``*_mib`` MiB, percentages are integers in [1, 100], GPU ids are the
plan's cluster indices (node = id // gpus_per_node) unless named ``local_*`` (index on the
node).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MemoryBudget:
    """One shard's memory (per GPU of the engine), as the plan's memory model counts it.

    ``slice_gib = share × GPU memory`` is the engine's part of each GPU (the MPS pinned
    memory limit); vLLM may use ``usable_gib = slice × gpu_memory_utilization(model)``
    of it, which holds the weights, the reserve and the KV cache.
    """

    gpu_memory_gib: float
    slice_gib: float
    usable_gib: float
    weights_gib: float
    reserve_gib: float
    kv_gib: float
    kv_tokens: int
    gpu_memory_utilization: float  # vLLM's --gpu-memory-utilization: a fraction of one GPU
    pinned_limit_mib: int  # CUDA_MPS_PINNED_DEVICE_MEM_LIMIT per GPU (rounded down)


@dataclass(frozen=True, slots=True)
class Engine:
    """One vLLM server: a placed instance of the plan."""

    name: str  # DNS-1123 label, unique in the deployment (service / process name)
    model: str  # the plan's model name (``--served-model-name``, the gateway's backend name)
    replica: int  # 0-based index among the model's instances
    replicas: int
    model_path: str  # Hugging Face id or local path given to ``vllm serve``
    node: int
    gpu_ids: tuple[int, ...]
    local_gpu_ids: tuple[int, ...]
    tp: int
    mps_share: float  # the plan's share of each of its GPUs
    thread_percentage: int | None  # CUDA_MPS_ACTIVE_THREAD_PERCENTAGE; None: whole GPUs
    memory: MemoryBudget
    port: int
    after: tuple[str, ...]  # engines on one of its GPUs that must be healthy first
    group: str | None  # name of its MPS group (None: whole GPUs, no MPS)
    group_positions: tuple[int, ...]  # positions of its GPUs in the group's GPU list
    reasons: tuple[str, ...]  # why it got its GPUs, share and memory (``deploy --check``)

    @property
    def mps(self) -> bool:
        return self.group is not None

    @property
    def gpu_label(self) -> str:
        """``4,5``: its cluster GPU ids."""
        return ",".join(map(str, self.gpu_ids))

    @property
    def local_gpu_label(self) -> str:
        """``4,5``: its GPU indices on its node."""
        return ",".join(map(str, self.local_gpu_ids))


@dataclass(frozen=True, slots=True)
class MpsGroup:
    """GPUs of one node linked by engines that share them: one MPS daemon (or claim) serves them.

    Two engines that share any GPU are in the same group, so every MPS client of a group
    needs exactly one daemon (a CUDA process connects to one MPS control daemon).
    """

    name: str
    node: int
    gpu_ids: tuple[int, ...]
    local_gpu_ids: tuple[int, ...]
    engines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GpuTenant:
    engine: str
    model: str
    share: float
    thread_percentage: int | None
    gpu_memory_utilization: float
    pinned_limit_mib: int


@dataclass(frozen=True, slots=True)
class GpuUsage:
    """Everything placed on one GPU, and the totals that must stay within one GPU."""

    gpu_id: int
    node: int
    local_id: int
    tenants: tuple[GpuTenant, ...]

    @property
    def share(self) -> float:
        return sum(t.share for t in self.tenants)

    @property
    def thread_percentage(self) -> int:
        return sum(t.thread_percentage or 100 for t in self.tenants)

    @property
    def memory_fraction(self) -> float:
        return sum(t.gpu_memory_utilization for t in self.tenants)

    @property
    def pinned_mib(self) -> int:
        return sum(t.pinned_limit_mib for t in self.tenants)


@dataclass(frozen=True, slots=True)
class Node:
    index: int
    gpu_ids: tuple[int, ...]  # GPUs of the node that host an engine
    engines: tuple[Engine, ...]  # in start order
    groups: tuple[MpsGroup, ...]

    @property
    def shared_local_gpu_ids(self) -> tuple[int, ...]:
        return tuple(sorted(i for g in self.groups for i in g.local_gpu_ids))


@dataclass(frozen=True, slots=True)
class Backend:
    """One ``--backend MODEL=URL`` of the gateway (a model with replicas repeats MODEL)."""

    model: str
    engine: str
    node: int
    port: int


@dataclass(frozen=True, slots=True)
class EngineFlags:
    """vLLM scheduler settings, the ones the plan's latency profiles were estimated with."""

    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    block_size: int


@dataclass(frozen=True, slots=True)
class Gateway:
    """``routerwise serve --plan PLAN --backend MODEL=URL ... [--port P] [--api-key-env VAR]``."""

    image: str
    port: int
    api_key_env: str | None
    backends: tuple[Backend, ...]
    plan_file: str  # name of the plan file written beside the artifacts


@dataclass(frozen=True, slots=True)
class DeploymentIR:
    """A whole deployment: what every target renders."""

    name: str  # DNS-1123 label: compose project name, Kubernetes app label
    plan_source: str
    plan_sha256: str
    routerwise_version: str
    gpu_type: str
    gpu_memory_gib: float
    num_gpus: int
    gpus_per_node: int
    image: str
    flags: EngineFlags
    engines: tuple[Engine, ...]
    groups: tuple[MpsGroup, ...]
    nodes: tuple[Node, ...]
    gpus: tuple[GpuUsage, ...]
    gateway: Gateway
    notes: tuple[str, ...]  # deployment-wide facts and roundings (``deploy --check``)

    def engine(self, name: str) -> Engine:
        return next(e for e in self.engines if e.name == name)

    @property
    def multi_node(self) -> bool:
        return len(self.nodes) > 1
