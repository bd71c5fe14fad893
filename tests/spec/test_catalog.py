"""GPU and model catalogs: lookups, aliases, derived facts."""

from __future__ import annotations

import pytest

from routerwise.errors import InputError
from routerwise.spec.catalog import (
    GPU_CATALOG,
    MODEL_CATALOG,
    PAPER_MODELS,
    check_tp,
    get_gpu,
    get_model,
    valid_tps,
)


@pytest.mark.parametrize(
    ("alias", "name"),
    [("a100", "A100-SXM-80GB"), ("H100", "H100-SXM"), ("h200-sxm", "H200-SXM"),
     ("b200", "B200"), ("l40s", "L40S")],
)
def test_gpu_aliases(alias: str, name: str) -> None:
    assert get_gpu(alias).name == name


def test_unknown_gpu_lists_known() -> None:
    with pytest.raises(InputError, match=r"unknown GPU 'tpu-v5'.*A100-SXM-80GB"):
        get_gpu("tpu-v5")


def test_required_models_present_with_plausible_sizes() -> None:
    expected = {"mistral-7b": 7.2, "llama-2-13b": 13.0, "yi-34b": 34.4, "llama-2-70b": 69.0,
                "llama-3.1-8b": 8.0, "llama-3.1-70b": 70.6, "qwen2.5-7b": 7.6,
                "qwen2.5-32b": 32.8, "qwen2.5-72b": 72.7}
    for model_id, params_b in expected.items():
        assert get_model(model_id).params_b == pytest.approx(params_b, rel=0.02)
        assert MODEL_CATALOG[model_id].source
    assert set(PAPER_MODELS) <= set(MODEL_CATALOG)
    assert all(g.aic_system for g in GPU_CATALOG.values())


def test_model_lookup_aliases_and_errors() -> None:
    assert get_model("WizardLM-13B").id == "llama-2-13b"
    assert get_model("meta-llama/Llama-3.1-8B").id == "llama-3.1-8b"
    with pytest.raises(InputError, match=r"unknown model 'foo'; known: .*yi-34b"):
        get_model("foo")


def test_valid_tps_divide_heads() -> None:
    assert valid_tps(get_model("qwen2.5-7b")) == (1, 2, 4)  # 28 heads, 4 KV heads
    assert valid_tps(get_model("yi-34b")) == (1, 2, 4, 8)
    with pytest.raises(InputError, match=r"tp=3 must divide num_heads=56"):
        check_tp(get_model("yi-34b"), 3)


def test_kv_bytes_per_token_llama_8b() -> None:
    # 2 (K,V) x 32 layers x 8 KV heads x 128 dims x 2 bytes = 128 KiB
    assert get_model("llama-3.1-8b").kv_bytes_per_token() == 131072
