"""The search space: per-model deployment options and setups built from them.

Internal to the search: a *deployment option* of one model is ``replicas`` identical
instances of shape ``(tp, share)`` where ``share`` is an MPS compute share counted in tenths
of a GPU (``share_units`` 1..10), the grid the search walks; a *setup option* picks one
deployment option (or none) per model. These compact integer units never leave the search:
:func:`to_setup` turns a placed option into the spec's typed :class:`Setup` (shares as
fractions) and :func:`option_of` turns a typed setup back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from routerwise.errors import InputError
from routerwise.profiles.memory import fits
from routerwise.spec.catalog import GpuSpec, ModelArch, valid_tps
from routerwise.spec.deployment import Deployment, InstanceShape, Setup

SHARE_UNITS = 10  # a GPU is 10 units of 10% each
TP_CHOICES = (1, 2, 4, 8)


@dataclass(frozen=True, slots=True, order=True)
class DeploymentOption:
    """``replicas`` instances of ``tp`` GPUs each, every shard at ``share_units`` tenths, on
    the GPUs of node pool ``pool`` (0 on a single-type cluster)."""

    tp: int
    share_units: int
    replicas: int
    pool: int = 0

    def __post_init__(self) -> None:
        if self.tp not in TP_CHOICES:
            raise InputError(f"{self.tp=} must be one of {TP_CHOICES}")
        if not 1 <= self.share_units <= SHARE_UNITS:
            raise InputError(f"{self.share_units=} must be in 1..{SHARE_UNITS}")
        if self.replicas < 1:
            raise InputError(f"{self.replicas=} must be >= 1")
        if self.pool < 0:
            raise InputError(f"{self.pool=} must be >= 0")

    @property
    def mps_share(self) -> float:
        return self.share_units / SHARE_UNITS

    @property
    def shards(self) -> int:
        return self.tp * self.replicas

    @property
    def units(self) -> int:
        """GPU share used, in tenths of a GPU."""
        return self.shards * self.share_units

    def describe(self) -> str:
        return f"{self.replicas}×tp{self.tp}@{self.share_units * 10}%"


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """Every deployment of one model that fits in memory, and how many were enumerated."""

    model: str
    arch: ModelArch
    options: tuple[DeploymentOption, ...]
    enumerated: int  # including shapes that do not fit in memory


def model_options(name: str, arch: ModelArch, gpu: GpuSpec, num_gpus: int, gpus_per_node: int,
                  max_tp: int = 8, pool: int = 0) -> ModelOptions:
    """Deployments of ``arch`` on ``gpu``: tp dividing its heads, 10%-steps, replicas ≤ GPUs/tp.

    Shards of one model go to distinct GPUs, so ``tp · replicas ≤ num_gpus``; tp stays inside
    a node.
    """
    tps = [tp for tp in valid_tps(arch, max_tp=min(max_tp, 8)) if tp <= gpus_per_node]
    opts: list[DeploymentOption] = []
    enumerated = 0
    for tp in tps:
        for units in range(1, SHARE_UNITS + 1):
            reps = num_gpus // tp
            enumerated += reps
            if not fits(arch, gpu, tp, units / SHARE_UNITS):
                continue
            opts.extend(DeploymentOption(tp, units, r, pool) for r in range(1, reps + 1))
    return ModelOptions(model=name, arch=arch, options=tuple(opts), enumerated=enumerated)


def pooled_options(per_pool: Sequence[ModelOptions]) -> ModelOptions:
    """One model's options on every pool together (a deployment uses one pool)."""
    first = per_pool[0]
    return ModelOptions(first.model, first.arch, tuple(d for o in per_pool for d in o.options),
                        sum(o.enumerated for o in per_pool))


#: The GPU type of each pool (a single string on a single-type cluster).
GpuTypes = str | tuple[str, ...]


def gpu_of(gpu_types: GpuTypes, pool: int) -> str:
    return gpu_types if isinstance(gpu_types, str) else gpu_types[pool]


@dataclass(frozen=True, slots=True)
class SetupOption:
    """One deployment (or ``None``: not deployed) per model, in the spec's model order."""

    models: tuple[str, ...]
    deployments: tuple[DeploymentOption | None, ...]

    @property
    def deployed(self) -> tuple[str, ...]:
        return tuple(m for m, d in zip(self.models, self.deployments, strict=True) if d)

    @property
    def units(self) -> int:
        return sum(d.units for d in self.deployments if d is not None)

    def describe(self) -> str:
        return ", ".join(f"{m}: {d.describe() if d else '—'}"
                         for m, d in zip(self.models, self.deployments, strict=True))


def shape_of(model: str, dep: DeploymentOption, gpu_types: GpuTypes) -> InstanceShape:
    """The typed instance shape of one option (share as a fraction) on its pool's GPU."""
    return InstanceShape(model, gpu_of(gpu_types, dep.pool), dep.tp, dep.mps_share)


def deployment_of(model: str, dep: DeploymentOption, gpu_types: GpuTypes) -> Deployment:
    return Deployment(model, gpu_of(gpu_types, dep.pool), dep.tp, dep.mps_share, dep.replicas)


def option_from(dep: Deployment, gpu_types: GpuTypes = ()) -> DeploymentOption:
    """A typed deployment on the search's grid (its share must be a multiple of 10%), on the
    first pool of its GPU type (curves depend on the type only)."""
    units = round(dep.mps_share * SHARE_UNITS)
    if abs(units - dep.mps_share * SHARE_UNITS) > 1e-6:
        raise InputError(f"{dep.model}: mps_share={dep.mps_share:g} is not on the search's "
                         f"grid of 1/{SHARE_UNITS} steps")
    pools = () if isinstance(gpu_types, str) else gpu_types
    pool = pools.index(dep.gpu_type) if dep.gpu_type in pools else 0
    return DeploymentOption(dep.tp, units, dep.replicas, pool)


def option_of(setup: Setup, models: tuple[str, ...], gpu_types: GpuTypes = ()) -> SetupOption:
    """The setup option of a typed setup, over ``models`` (absent ones not deployed)."""
    unknown = [m for m in setup.models if m not in models]
    if unknown:
        raise InputError(f"setup deploys model(s) {unknown} that are not among {list(models)}")
    deps = tuple(None if (d := setup.deployment(m)) is None else option_from(d, gpu_types)
                 for m in models)
    return SetupOption(models, deps)
