"""Stage 0 — the deployment vocabulary every later stage speaks (docs/architecture.md §3).

* :class:`InstanceShape` — one serving engine's hardware: model, GPU type, tensor parallelism
  and MPS compute share (a **fraction** in (0, 1]; the only representation outside the
  search's internals). A latency profile belongs to a shape.
* :class:`Deployment` — a shape × replicas (the replicas share the model's traffic).
* :class:`Instance` — one placed replica: its shape and the GPU ids it runs on.
* :class:`Setup` — the deployments of every deployed model and their placement.

Frozen, slotted, validated at construction; pydantic reads and writes them at the edges
(plan.json) without a second definition. Units: shares are fractions, GPU ids are indices
into the cluster's GPUs (node = id // gpus_per_node).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field

from routerwise.errors import InputError

#: MPS shares are stored rounded to this many decimals, so a share read back from a CSV
#: or JSON file is the same key as the one computed (0.6 == 6 / 10).
SHARE_DECIMALS = 6
_EDGE = ConfigDict(extra="forbid")


def normalise_share(value: float, what: str = "mps_share") -> float:
    """A share as a canonical fraction in (0, 1]; rejects anything else by name."""
    share = float(value)
    if not (math.isfinite(share) and 0.0 < share <= 1.0 + 1e-9):
        raise InputError(f"{what}={value!r} must be a fraction in (0, 1]")
    return round(min(share, 1.0), SHARE_DECIMALS)


def share_label(share: float) -> str:
    """``0.6`` → ``"60%"`` (no trailing zeros)."""
    return f"{share * 100:.4g}%"


@dataclass(frozen=True, slots=True, order=True)
class InstanceShape:
    """The hardware of one engine instance: what a latency profile is measured for."""

    __pydantic_config__ = _EDGE

    model: Annotated[str, Field(min_length=1, description="Model name (the workload's column).")]
    gpu_type: Annotated[str, Field(min_length=1, description="GPU type from the catalog.")]
    tp: Annotated[int, Field(ge=1, description="Tensor-parallel degree (GPUs per instance).")]
    mps_share: Annotated[float, Field(gt=0, le=1, description="MPS compute share of each of "
                                      "its GPUs, a fraction in (0, 1].")]

    def __post_init__(self) -> None:
        if self.tp < 1 or self.tp & (self.tp - 1):
            raise InputError(f"{self.model}: tp={self.tp!r} must be a power of two >= 1")
        object.__setattr__(self, "mps_share", normalise_share(self.mps_share))

    def describe(self) -> str:
        """``tp4@60%``."""
        return f"tp{self.tp}@{share_label(self.mps_share)}"


@dataclass(frozen=True, slots=True, order=True)
class Deployment:
    """``replicas`` identical instances of one shape, sharing the model's traffic evenly."""

    __pydantic_config__ = _EDGE

    model: Annotated[str, Field(min_length=1, description="Model name.")]
    gpu_type: Annotated[str, Field(min_length=1, description="GPU type from the catalog.")]
    tp: Annotated[int, Field(ge=1, description="Tensor-parallel degree of each replica.")]
    mps_share: Annotated[float, Field(gt=0, le=1, description="MPS share of each GPU used.")]
    replicas: Annotated[int, Field(ge=1, description="Number of identical instances.")]

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise InputError(f"{self.model}: replicas={self.replicas!r} must be >= 1")
        object.__setattr__(self, "mps_share", self.shape.mps_share)

    @classmethod
    def of(cls, shape: InstanceShape, replicas: int) -> Deployment:
        return cls(shape.model, shape.gpu_type, shape.tp, shape.mps_share, replicas)

    @property
    def shape(self) -> InstanceShape:
        return InstanceShape(self.model, self.gpu_type, self.tp, self.mps_share)

    @property
    def gpu_share(self) -> float:
        """GPUs' worth of compute share used by all replicas together."""
        return self.tp * self.replicas * self.mps_share

    def describe(self) -> str:
        """``2×tp1@50%``."""
        return f"{self.replicas}×{self.shape.describe()}"


@dataclass(frozen=True, slots=True)
class Instance:
    """One placed replica: a shape on ``tp`` distinct GPUs of one node."""

    __pydantic_config__ = _EDGE

    model: Annotated[str, Field(min_length=1, description="Model name.")]
    gpu_type: Annotated[str, Field(min_length=1, description="GPU type from the catalog.")]
    tp: Annotated[int, Field(ge=1, description="Tensor-parallel degree.")]
    mps_share: Annotated[float, Field(gt=0, le=1, description="MPS share of each of its GPUs.")]
    gpu_ids: Annotated[tuple[int, ...], Field(min_length=1, description="Cluster GPU indices "
                                              "it runs on (node = id // gpus_per_node).")]

    def __post_init__(self) -> None:
        shape = self.shape  # validates tp and share
        object.__setattr__(self, "mps_share", shape.mps_share)
        if len(self.gpu_ids) != self.tp or len(set(self.gpu_ids)) != self.tp:
            raise InputError(f"{self.model}: gpu_ids={list(self.gpu_ids)} must be {self.tp} "
                             "distinct GPUs (one per tensor-parallel rank)")
        if min(self.gpu_ids) < 0:
            raise InputError(f"{self.model}: gpu_ids={list(self.gpu_ids)} must be >= 0")

    @property
    def shape(self) -> InstanceShape:
        return InstanceShape(self.model, self.gpu_type, self.tp, self.mps_share)


@dataclass(frozen=True, slots=True)
class Setup:
    """Deployments (at most one per model) and the placement of their instances."""

    deployments: tuple[Deployment, ...]
    instances: tuple[Instance, ...]

    def __post_init__(self) -> None:
        names = [d.model for d in self.deployments]
        if len(set(names)) != len(names):
            raise InputError(f"a setup deploys each model once; got {names}")
        for d in self.deployments:
            mine = [i for i in self.instances if i.model == d.model]
            if len(mine) != d.replicas or any(i.shape != d.shape for i in mine):
                raise InputError(f"{d.model}: {len(mine)} placed instance(s) do not match "
                                 f"its deployment {d.describe()}")

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(d.model for d in self.deployments)

    def deployment(self, model: str) -> Deployment | None:
        return next((d for d in self.deployments if d.model == model), None)

    def describe(self) -> str:
        return ", ".join(f"{d.model}: {d.describe()}" for d in self.deployments) or "nothing"

    def gpu_loads(self) -> dict[int, float]:
        """Compute share used on each GPU id that hosts something."""
        loads: dict[int, float] = {}
        for inst in self.instances:
            for g in inst.gpu_ids:
                loads[g] = loads.get(g, 0.0) + inst.mps_share
        return loads


def setup_from_instances(instances: Iterable[Instance]) -> Setup:
    """Group placed instances into one deployment per model (they must share a shape)."""
    by_model: dict[str, list[Instance]] = {}
    for inst in instances:
        by_model.setdefault(inst.model, []).append(inst)
    deployments = []
    for model, group in by_model.items():
        shapes = {i.shape for i in group}
        if len(shapes) != 1:
            raise InputError(f"{model}: instances of different shapes "
                             f"{sorted(s.describe() for s in shapes)}; one shape per model")
        deployments.append(Deployment.of(group[0].shape, len(group)))
    return Setup(tuple(deployments), tuple(i for g in by_model.values() for i in g))
