"""Placing shards on GPUs: first fit, models in decreasing size, one shard per model per GPU.

GPU loads are in tenths of a GPU (MPS share units); memory follows the share (a shard with
share s may use s of the GPU's memory), so ≤ 10 units per GPU is also the memory check.
Each instance's ``tp`` shards stay inside one node.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from routerwise.search.space import (
    SHARE_UNITS,
    DeploymentOption,
    GpuTypes,
    SetupOption,
    deployment_of,
    gpu_of,
)
from routerwise.spec.deployment import Instance, Setup


@dataclass(frozen=True, slots=True)
class UnitInstance:
    """One placed instance: ``tp`` GPUs, each giving ``share_units`` tenths."""

    model: str
    tp: int
    share_units: int
    gpu_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PoolLayout:
    """GPUs ``first .. first + count − 1`` of one GPU type, in nodes of ``per_node``."""

    first: int
    count: int
    per_node: int


#: GPUs per node of a single-type cluster, or the layout of each node pool.
Layout = int | tuple[PoolLayout, ...]


def layout_of(groups: Sequence[tuple[str, int, int]]) -> tuple[PoolLayout, ...]:
    """Pools from ``(gpu_type, num_gpus, gpus_per_node)`` groups, GPU ids in order."""
    out, first = [], 0
    for _, count, per_node in groups:
        out.append(PoolLayout(first, count, per_node))
        first += count
    return tuple(out)


def nodes(layout: Layout, num_gpus: int, pool: int) -> Iterator[range]:
    """The GPU ids of each node of ``pool``."""
    p = PoolLayout(0, num_gpus, layout) if isinstance(layout, int) else layout[pool]
    end = p.first + p.count
    for start in range(p.first, end, p.per_node):
        yield range(start, min(start + p.per_node, end))


def pool_sizes(layout: Layout, num_gpus: int) -> tuple[int, ...]:
    return (num_gpus,) if isinstance(layout, int) else tuple(p.count for p in layout)


def place_deployment(loads: list[int], model: str, dep: DeploymentOption, gpus_per_node: Layout
                     ) -> tuple[list[int], tuple[UnitInstance, ...]] | None:
    """First-fit the instances of ``dep`` onto its pool's GPUs; new loads and instances, or
    None."""
    new = loads.copy()
    used: set[int] = set()
    placed: list[UnitInstance] = []
    for _ in range(dep.replicas):
        group: list[int] | None = None
        for node in nodes(gpus_per_node, len(loads), dep.pool):
            free = [g for g in node if g not in used and new[g] + dep.share_units <= SHARE_UNITS]
            if len(free) >= dep.tp:
                group = free[: dep.tp]
                break
        if group is None:
            return None
        for g in group:
            new[g] += dep.share_units
            used.add(g)
        placed.append(UnitInstance(model, dep.tp, dep.share_units, tuple(group)))
    return new, tuple(placed)


def typed_setup(option: SetupOption, instances: tuple[UnitInstance, ...], gpu_type: GpuTypes
                ) -> Setup:
    """The spec's typed setup (shares as fractions) of a placed setup option."""
    deployments = tuple(deployment_of(m, d, gpu_type)
                        for m, d in zip(option.models, option.deployments, strict=True) if d)
    pools = {m: d.pool for m, d in zip(option.models, option.deployments, strict=True) if d}
    placed = tuple(Instance(i.model, gpu_of(gpu_type, pools[i.model]), i.tp,
                            i.share_units / SHARE_UNITS, i.gpu_ids) for i in instances)
    return Setup(deployments, placed)
