"""Stage 1 — the per-shard GPU memory model: how many KV-cache tokens fit.

Inputs: a ``ModelArch``, a ``GpuSpec``, tensor parallelism ``tp`` and an MPS share in (0, 1].
Outputs: KV-cache capacity in tokens (per instance; each shard holds ``1/tp`` of every
token's KV). Units: GiB.

Model (as vLLM budgets memory): a shard may use ``mps_share × memory_gib ×
gpu_memory_utilization``; it holds ``weights/tp``, an activation/CUDA-graph reserve (plus
NCCL buffers when ``tp > 1``), and the rest is KV cache. A shape is feasible when at least
``min_kv_tokens`` tokens of KV fit (one long request).
"""

from __future__ import annotations

from dataclasses import dataclass

from routerwise.errors import InfeasibleError, InputError
from routerwise.spec.catalog import GpuSpec, ModelArch, check_tp, valid_tps

GIB = float(1 << 30)


@dataclass(frozen=True, slots=True)
class MemoryModel:
    """Parameters of the memory budget (defaults follow vLLM 0.x and aiconfigurator)."""

    gpu_memory_utilization: float = 0.9  # vLLM's default fraction of GPU memory
    activation_reserve_gib: float = 2.0  # activations, CUDA graphs, sampler buffers
    nccl_reserve_gib: float = 0.4  # aiconfigurator's nccl_mem for tp > 1
    min_kv_tokens: int = 4096  # smallest useful KV cache: one 4k-token request

    def __post_init__(self) -> None:
        if not 0 < self.gpu_memory_utilization <= 1:
            raise InputError(f"{self.gpu_memory_utilization=} must be in (0, 1]")
        if self.min_kv_tokens < 1:
            raise InputError(f"{self.min_kv_tokens=} must be >= 1")


DEFAULT_MEMORY = MemoryModel()


def check_share(mps_share: float) -> None:
    """MPS shares are fractions in (0, 1]."""
    if not 0 < mps_share <= 1:
        raise InputError(f"{mps_share=} must be a fraction in (0, 1] (0.5 = 50% of the SMs)")


def weights_gib(model: ModelArch) -> float:
    """Memory of all weights of ``model`` in GiB (before sharding)."""
    return model.params_b * 1e9 * model.dtype_bytes / GIB


def shard_need_gib(model: ModelArch, tp: int, mem: MemoryModel = DEFAULT_MEMORY) -> float:
    """GiB one shard needs: its weights, the reserves and ``min_kv_tokens`` of KV."""
    reserve = mem.activation_reserve_gib + (mem.nccl_reserve_gib if tp > 1 else 0.0)
    min_kv = mem.min_kv_tokens * model.kv_bytes_per_token() / tp / GIB
    return weights_gib(model) / tp + reserve + min_kv


def _kv_tokens(model: ModelArch, gpu: GpuSpec, tp: int, mps_share: float, mem: MemoryModel) -> int:
    usable = gpu.memory_gib * mps_share * mem.gpu_memory_utilization
    reserve = mem.activation_reserve_gib + (mem.nccl_reserve_gib if tp > 1 else 0.0)
    free_gib = usable - weights_gib(model) / tp - reserve
    return max(0, int(free_gib * GIB * tp // model.kv_bytes_per_token()))


def kv_capacity_tokens(
    model: ModelArch, gpu: GpuSpec, tp: int, mps_share: float, mem: MemoryModel = DEFAULT_MEMORY
) -> int:
    """KV-cache tokens one instance (``tp`` shards) holds; InfeasibleError when too few fit."""
    check_tp(model, tp)
    check_share(mps_share)
    tokens = _kv_tokens(model, gpu, tp, mps_share, mem)
    if tokens < mem.min_kv_tokens:
        need = shard_need_gib(model, tp, mem)
        have = gpu.memory_gib * mps_share * mem.gpu_memory_utilization
        ok = [t for t in valid_tps(model) if _kv_tokens(model, gpu, t, mps_share, mem)
              >= mem.min_kv_tokens]
        hint = f"; it fits at tp={ok[0]}" if ok else (
            "; it does not fit at any tp up to 8 at this share"
            if mps_share < 1 else "; it does not fit even at full share and tp up to 8")
        raise InfeasibleError(
            f"model {model.id!r} does not fit on {gpu.name} at {tp=}, {mps_share=}: each shard "
            f"needs {need:.1f} GiB (weights {weights_gib(model) / tp:.1f} GiB + reserve + "
            f"{mem.min_kv_tokens} tokens of KV) but the share gives {have:.1f} GiB{hint}",
            reachable={"need_gib_per_gpu": need, "have_gib_per_gpu": have, "kv_tokens": tokens,
                       "fits_at_tp": ok[0] if ok else None},
        )
    return tokens


def fits(
    model: ModelArch, gpu: GpuSpec, tp: int, mps_share: float, mem: MemoryModel = DEFAULT_MEMORY
) -> bool:
    """Whether the shape holds the weights, the reserves and ``min_kv_tokens`` of KV."""
    check_tp(model, tp)
    check_share(mps_share)
    return _kv_tokens(model, gpu, tp, mps_share, mem) >= mem.min_kv_tokens
