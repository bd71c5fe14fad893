"""Stage 0 — GPU and model catalogs: frozen facts the memory model and estimator use.

Inputs: none (the catalogs are literals with their sources). Outputs: ``GpuSpec`` and
``ModelArch`` objects. Units: memory in GiB, compute in dense bf16 TFLOPS, bandwidth in
TB/s (HBM) and GB/s (NVLink, per GPU, bidirectional), parameter counts in billions.

GPU figures are NVIDIA datasheet numbers, cross-checked with the system files that
``aiconfigurator-core`` 0.12.0 ships (``systems/<aic_system>.yaml``). Model figures are
the fields of each model's Hugging Face ``config.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from routerwise.errors import InputError

AicArchitecture = Literal["LlamaForCausalLM", "Qwen2ForCausalLM"]


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """One GPU type. ``aic_system`` is aiconfigurator's system name for its kernel data."""

    name: str
    memory_gib: float
    bf16_tflops: float  # dense (no sparsity)
    hbm_bandwidth_tbps: float
    nvlink_gbps: float  # per GPU, bidirectional; 0 = PCIe only
    aic_system: str
    source: str

    def __post_init__(self) -> None:
        for field_name in ("memory_gib", "bf16_tflops", "hbm_bandwidth_tbps"):
            value = getattr(self, field_name)
            if not value > 0:
                raise InputError(f"GPU {self.name!r}: {field_name}={value!r} must be > 0")

    @property
    def ridge_tokens(self) -> float:
        """Tokens per step at which a bf16 GEMM turns compute-bound (FLOPs/byte ridge point)."""
        return self.bf16_tflops / self.hbm_bandwidth_tbps


@dataclass(frozen=True, slots=True)
class ModelArch:
    """Architecture facts of a dense decoder-only transformer (Llama/Qwen2 family)."""

    id: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    dtype_bytes: int = 2
    hf_name: str = ""
    notes: str = ""
    source: str = ""
    aic_architecture: AicArchitecture = "LlamaForCausalLM"
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    stated_params_b: float | None = None

    def __post_init__(self) -> None:
        for field_name in (
            "num_layers", "hidden_size", "num_attention_heads", "num_kv_heads",
            "intermediate_size", "vocab_size", "dtype_bytes",
        ):
            value = getattr(self, field_name)
            if not (isinstance(value, int) and value > 0):
                raise InputError(
                    f"model {self.id!r}: {field_name}={value!r} must be a positive integer"
                )
        heads, kv = self.num_attention_heads, self.num_kv_heads
        if heads % kv:
            raise InputError(
                f"model {self.id!r}: num_kv_heads={kv} must divide num_attention_heads={heads}"
            )
        if self.hidden_size % heads:
            raise InputError(
                f"model {self.id!r}: num_attention_heads={heads} must divide "
                f"hidden_size={self.hidden_size}"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def params_b(self) -> float:
        """Parameters in billions: the stated figure, else computed from the shapes."""
        if self.stated_params_b is not None:
            return self.stated_params_b
        return self.computed_params() / 1e9

    def computed_params(self) -> int:
        """Embedding + per-layer attention, MLP (gate, up, down) and norms + LM head."""
        h, kv_dim = self.hidden_size, self.num_kv_heads * self.head_dim
        attn = 2 * h * h + 2 * h * kv_dim + (h + 2 * kv_dim if self.attention_bias else 0)
        mlp = 3 * h * self.intermediate_size
        per_layer = attn + mlp + 2 * h
        embed = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * per_layer + embed + h

    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes per token for the whole model (keys and values, every layer)."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.dtype_bytes


_HF = "Hugging Face config.json of "
_AIC = "aiconfigurator-core 0.12.0 systems/{}.yaml; NVIDIA datasheet"

_GPUS = (
    GpuSpec("A100-SXM-80GB", 80.0, 312.0, 2.039, 600.0, "a100_sxm", _AIC.format("a100_sxm")),
    GpuSpec("H100-SXM", 80.0, 989.0, 3.35, 900.0, "h100_sxm", _AIC.format("h100_sxm")),
    GpuSpec("H200-SXM", 141.0, 989.0, 4.8, 900.0, "h200_sxm", _AIC.format("h200_sxm")),
    GpuSpec("B200", 180.0, 2250.0, 7.7, 1800.0, "b200_sxm", _AIC.format("b200_sxm")),
    GpuSpec("L40S", 44.99, 362.05, 0.864, 0.0, "l40s", _AIC.format("l40s") + " (46068 MiB)"),
)

GPU_CATALOG: Mapping[str, GpuSpec] = MappingProxyType({g.name: g for g in _GPUS})

_GPU_ALIASES: Mapping[str, str] = MappingProxyType({
    "a100": "A100-SXM-80GB", "a100-sxm": "A100-SXM-80GB", "a100_sxm": "A100-SXM-80GB",
    "a100-80gb": "A100-SXM-80GB", "h100": "H100-SXM", "h100_sxm": "H100-SXM",
    "h200": "H200-SXM", "h200_sxm": "H200-SXM", "b200_sxm": "B200", "l40s": "L40S",
})

_MODELS = (
    ModelArch(
        "mistral-7b", 32, 4096, 32, 8, 14336, 32000, hf_name="mistralai/Mistral-7B-v0.1",
        source=_HF + "mistralai/Mistral-7B-v0.1",
        notes="Mistral architecture mapped onto Llama for aiconfigurator (sliding window ignored)",
    ),
    ModelArch(
        "llama-2-13b", 40, 5120, 40, 40, 13824, 32000, hf_name="meta-llama/Llama-2-13b-hf",
        source=_HF + "meta-llama/Llama-2-13b-hf",
        notes="also the architecture of WizardLM-13B (a Llama-2-13B fine-tune)",
    ),
    ModelArch(
        "yi-34b", 60, 7168, 56, 8, 20480, 64000, hf_name="01-ai/Yi-34B",
        source=_HF + "01-ai/Yi-34B", notes="Llama architecture",
    ),
    ModelArch(
        "llama-2-70b", 80, 8192, 64, 8, 28672, 32000, hf_name="meta-llama/Llama-2-70b-hf",
        source=_HF + "meta-llama/Llama-2-70b-hf",
    ),
    ModelArch(
        "llama-3.1-8b", 32, 4096, 32, 8, 14336, 128256, hf_name="meta-llama/Llama-3.1-8B",
        source=_HF + "meta-llama/Llama-3.1-8B",
    ),
    ModelArch(
        "llama-3.1-70b", 80, 8192, 64, 8, 28672, 128256, hf_name="meta-llama/Llama-3.1-70B",
        source=_HF + "meta-llama/Llama-3.1-70B",
    ),
    ModelArch(
        "qwen2.5-7b", 28, 3584, 28, 4, 18944, 152064, hf_name="Qwen/Qwen2.5-7B",
        source=_HF + "Qwen/Qwen2.5-7B", aic_architecture="Qwen2ForCausalLM", attention_bias=True,
    ),
    ModelArch(
        "qwen2.5-32b", 64, 5120, 40, 8, 27648, 152064, hf_name="Qwen/Qwen2.5-32B",
        source=_HF + "Qwen/Qwen2.5-32B", aic_architecture="Qwen2ForCausalLM", attention_bias=True,
    ),
    ModelArch(
        "qwen2.5-72b", 80, 8192, 64, 8, 29568, 152064, hf_name="Qwen/Qwen2.5-72B",
        source=_HF + "Qwen/Qwen2.5-72B", aic_architecture="Qwen2ForCausalLM", attention_bias=True,
    ),
)

MODEL_CATALOG: Mapping[str, ModelArch] = MappingProxyType({m.id: m for m in _MODELS})

#: The four models of the RouterWise paper (WizardLM-13B runs as the Llama-2-13B architecture).
PAPER_MODELS: tuple[str, ...] = ("mistral-7b", "llama-2-13b", "yi-34b", "llama-2-70b")

_MODEL_ALIASES: Mapping[str, str] = MappingProxyType({
    "wizardlm-13b": "llama-2-13b", "mistral-7b-v0.1": "mistral-7b", "llama-3-8b": "llama-3.1-8b",
    "llama-3-70b": "llama-3.1-70b",
})


def _norm(name: str) -> str:
    return name.strip().lower()


def get_gpu(name: str) -> GpuSpec:
    """Look up a GPU by catalog name or alias, case-insensitively."""
    key = _norm(name)
    by_lower = {n.lower(): n for n in GPU_CATALOG}
    canonical = by_lower.get(key) or _GPU_ALIASES.get(key)
    if canonical is None:
        raise InputError(f"unknown GPU {name!r}; known: {', '.join(GPU_CATALOG)}")
    return GPU_CATALOG[canonical]


def get_model(model_id: str) -> ModelArch:
    """Look up a model by catalog id (lowercase, e.g. ``llama-3.1-8b``), alias or HF name."""
    key = _norm(model_id)
    if key in MODEL_CATALOG:
        return MODEL_CATALOG[key]
    if key in _MODEL_ALIASES:
        return MODEL_CATALOG[_MODEL_ALIASES[key]]
    for arch in MODEL_CATALOG.values():
        if arch.hf_name.lower() == key:
            return arch
    raise InputError(f"unknown model {model_id!r}; known: {', '.join(MODEL_CATALOG)}")


def valid_tps(model: ModelArch, max_tp: int = 8) -> tuple[int, ...]:
    """Powers of two up to ``max_tp`` that divide both the attention and the KV heads."""
    out: list[int] = []
    tp = 1
    while tp <= max_tp:
        if model.num_attention_heads % tp == 0 and model.num_kv_heads % tp == 0:
            out.append(tp)
        tp *= 2
    return tuple(out)


def check_tp(model: ModelArch, tp: int) -> None:
    """Raise naming the valid choices when ``tp`` cannot shard ``model``'s heads."""
    heads, kv = model.num_attention_heads, model.num_kv_heads
    if tp < 1 or heads % tp or kv % tp:
        raise InputError(
            f"{tp=} must divide num_heads={heads} and num_kv_heads={kv} of model "
            f"{model.id!r}; valid: {', '.join(map(str, valid_tps(model)))}"
        )
