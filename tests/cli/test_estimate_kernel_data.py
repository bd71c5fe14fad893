"""A model/GPU that aiconfigurator has no kernel data for is a named error (exit 1) naming
the model, the GPU, tp and the missing table — not a traceback (issue 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiconfigurator_core.sdk.errors import PerfDataNotAvailableError

from routerwise.cli import estimate as estimate_cli
from routerwise.errors import InputError
from routerwise.profiles.aic_steps import KernelDataError, StepTimes
from routerwise.spec.catalog import ModelArch
from tests.cli.conftest import Cli

# SmolLM2-135M: 3 KV heads of 64 dims, which the kernel database has no attention data for
SMOLLM2 = ModelArch(id="smollm2", num_layers=30, hidden_size=576, num_attention_heads=9,
                    num_kv_heads=3, intermediate_size=1536, vocab_size=49152)
AIC_MESSAGE = (
    'perf database error: context attention data missing for ContextKey { n_kv_lookup: 3, '
    'head_size: 64 }: tried lane_order ["fa3", "default"], then fell back through table '
    'lanes [] at /venv/aiconfigurator_core/systems/data/h100_sxm/vllm/0.24.0')


class _NoData:
    def mixed_step_breakdown(self, *_: int) -> Any:
        raise PerfDataNotAvailableError(AIC_MESSAGE)

    def decode_step_latency(self, *_: int) -> Any:
        raise PerfDataNotAvailableError(AIC_MESSAGE)


class _Bug:
    def decode_step_latency(self, *_: int) -> Any:
        raise RuntimeError("not aiconfigurator's")


def test_missing_kernel_data_names_model_gpu_and_table() -> None:
    steps = StepTimes(_NoData(), ("smollm2", "h100_sxm", 2))
    with pytest.raises(KernelDataError) as info:
        steps.mixed_ms([(256, 512)], 4, 600)
    message = str(info.value)
    assert isinstance(info.value, InputError) and info.value.exit_code == 1
    for needle in ("'smollm2'", "H100-SXM", "tp=2", "context attention data missing",
                   "n_kv_lookup: 3", "h100_sxm/vllm/0.24.0"):
        assert needle in message, (needle, message)
    assert "lane_order" not in message  # the search trail is noise to a user
    with pytest.raises(KernelDataError, match=r"'m' on A100-SXM-80GB \(a100_sxm\) at tp=1"):
        StepTimes(_NoData(), ("m", "a100_sxm", 1)).decode_ms(8, 100)


def test_other_errors_are_not_relabelled() -> None:
    with pytest.raises(RuntimeError, match="not aiconfigurator's"):
        StepTimes(_Bug(), ("m", "h100_sxm", 1)).decode_ms(8, 100)


@pytest.mark.usefixtures("profile_cache")
def test_estimate_without_kernel_data_exits_1_with_a_named_error(
        tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estimate_cli, "get_model", lambda _: SMOLLM2)
    out = tmp_path / "p.csv"
    res = cli(["estimate", "--model", "smollm2", "--gpu", "H100-SXM", "--rates-rps", "1",
               "--num-requests", "20", "--out", str(out)])
    assert res.exit_code == 1, res.stderr
    flat = res.stderr_flat
    for needle in ("nokerneldata", "'smollm2'", "H100-SXM", "tp=1", "contextattention",
                   "routerwiseprofile"):
        assert needle in flat, (needle, res.stderr)
    assert "Traceback" not in res.stderr
    assert not out.exists()
