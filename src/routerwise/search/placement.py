"""Placing shards on GPUs: first fit, models in decreasing size, one shard per model per GPU.

GPU loads are in tenths of a GPU (MPS share units); memory follows the share (a shard with
share s may use s of the GPU's memory), so ≤ 10 units per GPU is also the memory check.
Each instance's ``tp`` shards stay inside one node.
"""

from __future__ import annotations

from dataclasses import dataclass

from routerwise.search.space import SHARE_UNITS, DeploymentOption, SetupOption, deployment_of
from routerwise.spec.deployment import Instance, Setup


@dataclass(frozen=True, slots=True)
class UnitInstance:
    """One placed instance: ``tp`` GPUs, each giving ``share_units`` tenths."""

    model: str
    tp: int
    share_units: int
    gpu_ids: tuple[int, ...]


def place_deployment(loads: list[int], model: str, dep: DeploymentOption, gpus_per_node: int
                     ) -> tuple[list[int], tuple[UnitInstance, ...]] | None:
    """First-fit the instances of ``dep`` onto GPUs; new loads and instances, or None."""
    new = loads.copy()
    used: set[int] = set()
    placed: list[UnitInstance] = []
    num_gpus = len(loads)
    for _ in range(dep.replicas):
        group: list[int] | None = None
        for node_start in range(0, num_gpus, gpus_per_node):
            free = [g for g in range(node_start, min(node_start + gpus_per_node, num_gpus))
                    if g not in used and new[g] + dep.share_units <= SHARE_UNITS]
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


def typed_setup(option: SetupOption, instances: tuple[UnitInstance, ...], gpu_type: str
                ) -> Setup:
    """The spec's typed setup (shares as fractions) of a placed setup option."""
    deployments = tuple(deployment_of(m, d, gpu_type)
                        for m, d in zip(option.models, option.deployments, strict=True) if d)
    placed = tuple(Instance(i.model, gpu_type, i.tp, i.share_units / SHARE_UNITS, i.gpu_ids)
                   for i in instances)
    return Setup(deployments, placed)
