"""Stage 1 — per-step engine times from NVIDIA's measured kernel data (aiconfigurator-core).

Inputs: a ``ModelArch``, an aiconfigurator system name (``a100_sxm``, ``h100_sxm``, …) and
tensor parallelism. Outputs: step times in ms for vLLM-style steps — a decode step of ``n``
sequences at KV length ``kv``, and a mixed step of prefill chunks plus decodes.

aiconfigurator composes a mixed step as three passes (verified on 0.12.0): the non-attention
ops over all tokens of the step, context attention of each chunk (the prompt's attention
divided by ``ceil(isl / chunk)``), and decode attention over the decoding sequences. We query
those passes separately so each chunk uses its own prompt length. Every model is handed to
aiconfigurator as a local HF-style ``config.json`` written from its architecture facts, so
nothing is downloaded; Mistral-style models run as ``LlamaForCausalLM`` (bf16 weights, KV).
Calls are memoised per instance; compiled engines are memoised per (model, system, tp).
The package is imported lazily (it is heavy). A query aiconfigurator has no measured data for
(e.g. attention with 3 KV heads per GPU) raises ``KernelDataError`` naming the model, the
GPU, tp and the missing table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from routerwise.errors import InputError
from routerwise.spec.catalog import GPU_CATALOG, ModelArch

log = logging.getLogger(__name__)

BACKEND = "vllm"
_KV_QUANTUM_TOKENS = 16  # KV/prompt lengths are rounded up to this for memoisation


class KernelDataError(InputError):
    """aiconfigurator's kernel database has no data for a step of this model on this GPU."""

    def __init__(self, model: str, system: str, tp: int, missing: str) -> None:
        self.model, self.system, self.tp, self.missing = model, system, tp, missing
        gpu = next((g.name for g in GPU_CATALOG.values() if g.aic_system == system), system)
        super().__init__(
            f"no kernel data to estimate model {model!r} on {gpu} ({system}) at tp={tp}: "
            f"{missing} (aiconfigurator-core {aic_version()}); only a measured profile "
            "(`routerwise profile`) can describe this shape")


def _missing(exc: BaseException) -> str:
    """aiconfigurator's message without its search trail: which table lacks which key."""
    text = str(exc).strip() or type(exc).__name__
    text = text.removeprefix("perf database error:").strip()
    where = text.rfind(" at /")
    tables = "/".join(Path(text[where + 4:]).parts[-3:]) if where >= 0 else ""
    head = text.split(": tried", 1)[0].splitlines()[0][:300]
    return f"{head} in the tables {tables}" if tables else head


def _is_aic_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("aiconfigurator_core")


def _round_up(tokens: int) -> int:
    return max(_KV_QUANTUM_TOKENS, -(-tokens // _KV_QUANTUM_TOKENS) * _KV_QUANTUM_TOKENS)


def hf_config(model: ModelArch) -> dict[str, Any]:
    """An HF-style ``config.json`` for ``model`` that aiconfigurator can parse."""
    return {
        "architectures": [model.aic_architecture],
        "model_type": "qwen2" if model.aic_architecture == "Qwen2ForCausalLM" else "llama",
        "num_hidden_layers": model.num_layers,
        "hidden_size": model.hidden_size,
        "num_attention_heads": model.num_attention_heads,
        "num_key_value_heads": model.num_kv_heads,
        "head_dim": model.head_dim,
        "intermediate_size": model.intermediate_size,
        "vocab_size": model.vocab_size,
        "max_position_embeddings": 32768,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": model.tie_word_embeddings,
        "torch_dtype": "bfloat16",
    }


def _config_dir(model: ModelArch) -> Path:
    """Write ``config.json`` once into a directory named by its content hash."""
    text = json.dumps(hf_config(model), sort_keys=True, indent=1)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    root = Path(tempfile.gettempdir()) / f"routerwise-aic-{os.getuid()}" / digest
    target = root / "config.json"
    if not target.is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".config.{os.getpid()}.json"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return root


def aic_version() -> str:
    """Installed aiconfigurator-core version (part of every profile's cache key)."""
    return version("aiconfigurator-core")


@lru_cache(maxsize=64)
def compile_engine(model: ModelArch, system: str, tp: int) -> Any:
    """Compile (once per process) aiconfigurator's engine for ``model`` on ``system`` at ``tp``."""
    from aiconfigurator_core.sdk.engine import EngineHandle

    logging.getLogger("aiconfigurator_core").setLevel(logging.ERROR)
    log.debug("compiling aiconfigurator: %s on %s, tp %s (%s)", model.id, system, tp, asdict(model))
    try:
        return EngineHandle.compile(str(_config_dir(model)), system, BACKEND, tp_size=tp)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise InputError(
            f"aiconfigurator cannot build model {model.id!r} on system {system!r} at {tp=}: {exc}"
        ) from exc


class StepTimes:
    """Memoised step times (ms) of one compiled engine at the full GPU; ``label``
    ``(model, system, tp)`` names the engine in a ``KernelDataError``."""

    def __init__(self, handle: Any, label: tuple[str, str, int] = ("?", "?", 0)) -> None:
        self._h = handle
        self._label = label
        self._shared: dict[int, float] = {}
        self._ctx: dict[tuple[int, int], float] = {}
        self._dec_attn: dict[tuple[int, int], float] = {}
        self._decode: dict[tuple[int, int], float] = {}

    def _query(self, call: Callable[..., Any], *args: int) -> Any:
        try:
            return call(*args)
        except (RuntimeError, ValueError) as exc:
            if not _is_aic_error(exc):
                raise
            raise KernelDataError(*self._label, _missing(exc)) from exc

    def _breakdown(self, *args: int) -> Any:
        return self._query(self._h.mixed_step_breakdown, *args)

    def shared_ms(self, tokens: int) -> float:
        """Non-attention ops (GEMMs, norms, communication) over ``tokens`` tokens."""
        v = self._shared.get(tokens)
        if v is None:
            v = self._shared[tokens] = float(self._breakdown(tokens, 0, tokens, 2)[1])
        return v

    def context_attention_ms(self, chunk: int, prompt: int) -> float:
        """Attention of a ``chunk``-token prefill chunk of a ``prompt``-token prompt."""
        key = (chunk, _round_up(prompt))
        v = self._ctx.get(key)
        if v is None:
            v = self._ctx[key] = float(self._breakdown(chunk, 0, key[1], 2)[2])
        return v

    def decode_attention_ms(self, seqs: int, kv: int) -> float:
        """Decode attention of ``seqs`` sequences at KV length ``kv`` (inside a mixed step)."""
        key = (seqs, _round_up(kv))
        v = self._dec_attn.get(key)
        if v is None:
            v = self._dec_attn[key] = float(self._breakdown(0, seqs, key[1] - 1, 0)[3])
        return v

    def decode_ms(self, seqs: int, kv: int) -> float:
        """A decode-only step of ``seqs`` sequences at mean KV length ``kv``."""
        key = (seqs, _round_up(kv))
        v = self._decode.get(key)
        if v is None:
            v = self._decode[key] = float(self._query(
                self._h.decode_step_latency, seqs, key[1] - 1, 0))
        return v

    def mixed_ms(self, chunks: list[tuple[int, int]], seqs: int, kv: int) -> float:
        """A step with prefill ``chunks`` ``(chunk_tokens, prompt_tokens)`` and ``seqs`` decodes."""
        tokens = seqs + sum(c for c, _ in chunks)
        total = self.shared_ms(tokens) + sum(self.context_attention_ms(c, p) for c, p in chunks)
        if seqs:
            total += self.decode_attention_ms(seqs, kv)
        return total


@lru_cache(maxsize=64)
def step_times(model: ModelArch, system: str, tp: int) -> StepTimes:
    """Shared memoised step times for one (model, system, tp) in this process."""
    return StepTimes(compile_engine(model, system, tp), (model.id, system, tp))
