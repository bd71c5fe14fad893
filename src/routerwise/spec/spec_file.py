"""Stage 0 — the YAML spec file: pydantic models at the edge, frozen catalog types inside.

Inputs: a YAML file (``load_spec``). Outputs: a validated, frozen ``Spec``; its JSON schema
(``spec_json_schema``, printed by ``routerwise schema``). Units: rates in requests/s, SLO
targets in ms, MPS shares as fractions in (0, 1].

Errors name the file and the field path, e.g.
``spec.yaml: models[1].catalog_id: unknown model 'foo'; known: ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from routerwise.errors import InputError, SpecError
from routerwise.spec.catalog import MODEL_CATALOG, ModelArch, get_gpu, get_model
from routerwise.spec.core import validation_lines

_ARCH_FIELDS = (
    "num_layers", "hidden_size", "num_attention_heads", "num_kv_heads", "intermediate_size",
    "vocab_size",
)


class _Edge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _catalog_gpu(value: str) -> str:
    try:
        return get_gpu(value).name
    except InputError as exc:
        raise ValueError(str(exc)) from None


class PoolSpec(_Edge):
    """Identical nodes of one GPU type."""

    gpu_type: str = Field(description="GPU type from the catalog (e.g. H100-SXM).")
    nodes: int = Field(ge=1, description="Number of nodes in the pool.")
    gpus_per_node: int = Field(
        default=8, ge=1, description="GPUs per node (tensor parallelism stays inside a node).")

    @field_validator("gpu_type")
    @classmethod
    def _known_gpu(cls, value: str) -> str:
        return _catalog_gpu(value)

    @property
    def num_gpus(self) -> int:
        return self.nodes * self.gpus_per_node


class ClusterSpec(_Edge):
    """The GPUs available to serve all models: one GPU type (``gpu_type``, ``num_gpus``,
    ``gpus_per_node``) or node pools of several (``pools``)."""

    gpu_type: str | None = Field(
        default=None, description="GPU type from the catalog (e.g. A100-SXM-80GB, H100-SXM); "
        "omit with pools.")
    num_gpus: int | None = Field(
        default=None, ge=1, description="Number of GPUs in the cluster (with pools: filled in "
        "as their total).")
    gpus_per_node: int = Field(
        default=8, ge=1, description="GPUs per node (tensor parallelism stays inside a node).")
    pools: tuple[PoolSpec, ...] | None = Field(
        default=None, min_length=1, description="Node pools, each of one GPU type; GPU ids "
        "count up through the pools in this order.")

    @field_validator("gpu_type")
    @classmethod
    def _known_gpu(cls, value: str | None) -> str | None:
        return None if value is None else _catalog_gpu(value)

    @model_validator(mode="before")
    @classmethod
    def _one_form(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("pools") is None:
            if isinstance(data, dict) and data.get("gpu_type") is None:
                raise ValueError("give gpu_type and num_gpus, or pools")
            if isinstance(data, dict) and data.get("num_gpus") is None:
                raise ValueError("num_gpus is required with gpu_type")
            return data
        if data.get("gpu_type") is not None or data.get("num_gpus") is not None:
            raise ValueError("give either pools or gpu_type/num_gpus, not both")
        return data

    @model_validator(mode="after")
    def _totals(self) -> ClusterSpec:
        if self.pools is not None:
            object.__setattr__(self, "num_gpus", sum(p.num_gpus for p in self.pools))
            if len({p.gpu_type for p in self.pools}) == 1:
                object.__setattr__(self, "gpu_type", self.pools[0].gpu_type)
            object.__setattr__(self, "gpus_per_node", max(p.gpus_per_node for p in self.pools))
        return self

    @model_serializer(mode="wrap")
    def _without_derived(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """With pools, the totals filled in on validation are not written back (the dump
        must validate again as it was written); without, no ``pools: null``."""
        data: dict[str, Any] = handler(self)
        derived = ("gpu_type", "num_gpus", "gpus_per_node") if self.pools is not None else (
            "pools",)  # the single-type form dumps as it always did
        for key in derived:
            data.pop(key, None)
        return data

    def groups(self) -> tuple[tuple[str, int, int], ...]:
        """``(gpu_type, num_gpus, gpus_per_node)`` per pool, in GPU-id order (the single-type
        form is one group; its last node may be partial)."""
        if self.pools is not None:
            return tuple((p.gpu_type, p.num_gpus, p.gpus_per_node) for p in self.pools)
        assert self.gpu_type is not None and self.num_gpus is not None
        return ((self.gpu_type, self.num_gpus, self.gpus_per_node),)

    @property
    def total_gpus(self) -> int:
        assert self.num_gpus is not None
        return self.num_gpus

    @property
    def mixed(self) -> bool:
        return self.pools is not None and len({p.gpu_type for p in self.pools}) > 1


class ModelEntry(_Edge):
    """A model to serve: a catalog id, or its architecture facts."""

    name: str = Field(
        min_length=1, description="Name of the model (a score column of the workload)."
    )
    catalog_id: str | None = Field(
        default=None,
        description="Model catalog id (e.g. llama-3.1-8b); omit to give architecture facts.",
    )
    num_layers: int | None = Field(default=None, ge=1, description="Transformer layers.")
    hidden_size: int | None = Field(default=None, ge=1, description="Hidden size.")
    num_attention_heads: int | None = Field(default=None, ge=1, description="Attention heads.")
    num_kv_heads: int | None = Field(default=None, ge=1, description="Key/value heads (GQA).")
    intermediate_size: int | None = Field(default=None, ge=1, description="MLP intermediate size.")
    vocab_size: int | None = Field(default=None, ge=1, description="Vocabulary size.")
    dtype_bytes: int = Field(default=2, ge=1, le=4, description="Bytes per weight/KV element.")
    max_tp: int | None = Field(default=None, ge=1, description="Largest tensor parallelism to try.")

    @field_validator("catalog_id")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return get_model(value).id
        except InputError:
            known = ", ".join(MODEL_CATALOG)
            raise ValueError(f"unknown model {value!r}; known: {known}") from None

    @model_validator(mode="after")
    def _catalog_or_facts(self) -> ModelEntry:
        given = [f for f in _ARCH_FIELDS if getattr(self, f) is not None]
        if self.catalog_id is not None and given:
            raise ValueError(f"give catalog_id or architecture facts, not both (got {given})")
        if self.catalog_id is None and len(given) != len(_ARCH_FIELDS):
            missing = [f for f in _ARCH_FIELDS if getattr(self, f) is None]
            raise ValueError(f"no catalog_id: architecture facts needed; missing {missing}")
        if self.catalog_id is None:
            try:
                self.to_arch()
            except InputError as exc:
                raise ValueError(str(exc)) from None
        return self

    def to_arch(self) -> ModelArch:
        """The frozen architecture (from the catalog, or built from the facts)."""
        if self.catalog_id is not None:
            return get_model(self.catalog_id)
        facts: dict[str, Any] = {f: getattr(self, f) for f in _ARCH_FIELDS}
        return ModelArch(
            id=self.name, dtype_bytes=self.dtype_bytes, source="spec file architecture facts",
            notes="mapped onto the Llama architecture for aiconfigurator", **facts,
        )


class WorkloadRef(_Edge):
    """Where the prompts come from: a built-in scenario workload or a file."""

    builtin: str | None = Field(default=None, description="Name of a built-in workload.")
    path: str | None = Field(default=None, description="Path of a workload file.")
    format: Literal["auto", "csv", "parquet", "routerbench", "llmrouter", "long"] = Field(
        default="auto", description="File format of `path` (auto: from the file name)."
    )
    ignore_models: tuple[str, ...] = Field(
        default=(),
        description="Score columns of the workload file that are not served here (dropped); "
        "any other column without a model in `models` is an error.",
    )
    num_prompts: int | None = Field(default=None, ge=1, description="Sample this many prompts.")
    seed: int = Field(default=0, description="Seed of the prompt sample.")

    @model_validator(mode="after")
    def _one_source(self) -> WorkloadRef:
        if (self.builtin is None) == (self.path is None):
            raise ValueError("give exactly one of builtin or path")
        return self


class SloSpec(_Edge):
    """The latency target."""

    metric: Literal["ttft", "tpot", "e2e"] = Field(
        default="ttft",
        description="Latency metric: time to first token, per output token, end-to-end.",
    )
    stat: Literal["mean", "p50", "p90", "p99"] = Field(
        default="mean", description="Statistic of the metric over requests (fleet-wide)."
    )
    target_ms: float = Field(gt=0, allow_inf_nan=False,
                             description="Target value of the statistic in ms.")
    per_model_max_ms: float | None = Field(
        default=None, gt=0, allow_inf_nan=False,
        description="Optional bound on every deployed model's own mean TTFT in ms (a model "
        "then takes only the load its curve serves within it).")


class Spec(_Edge):
    """A RouterWise planning problem."""

    name: str = Field(default="spec", description="Name of this spec.")
    cluster: ClusterSpec = Field(description="The GPU cluster.")
    models: tuple[ModelEntry, ...] = Field(min_length=1, description="Models to serve.")
    workload: WorkloadRef = Field(description="The prompts (scores and token lengths).")
    rate_rps: float = Field(gt=0, allow_inf_nan=False,
                            description="Total arrival rate in requests/s.")
    slo: SloSpec = Field(description="The latency SLO.")

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: tuple[ModelEntry, ...]) -> tuple[ModelEntry, ...]:
        names = [m.name for m in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate model names {dupes}")
        return models


def parse_spec(data: Any, source: str = "<spec>") -> Spec:
    """Validate a parsed YAML/JSON document; errors name ``source`` and each field path."""
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(validation_lines(exc, source, most=50)) from None


def load_spec(path: Path | str) -> Spec:
    """Read and validate a YAML spec file."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"{path}: is a directory, not a spec file")
    if not path.is_file():
        raise SpecError(f"{path}: spec file does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save the spec as UTF-8"
        ) from exc
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec must be a YAML mapping, not {type(data).__name__}")
    return parse_spec(data, str(path))


def spec_json_schema() -> dict[str, Any]:
    """JSON schema of the spec file."""
    return Spec.model_json_schema()
