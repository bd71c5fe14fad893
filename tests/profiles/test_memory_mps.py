"""Memory model (KV capacity, does-not-fit) and the MPS slowdown model."""

from __future__ import annotations

import pytest

from routerwise.errors import InfeasibleError, InputError
from routerwise.profiles.memory import fits, kv_capacity_tokens, weights_gib
from routerwise.profiles.mps import MpsModel
from routerwise.spec.catalog import ModelArch, get_gpu, get_model

A100 = get_gpu("a100")
HUGE = ModelArch("huge-405b", 126, 16384, 128, 8, 53248, 128256)


def test_kv_capacity_grows_with_tp_and_share() -> None:
    m = get_model("llama-2-13b")
    assert weights_gib(m) == pytest.approx(24.3, rel=0.02)
    one = kv_capacity_tokens(m, A100, 1, 1.0)
    assert kv_capacity_tokens(m, A100, 2, 1.0) > 2 * one
    assert kv_capacity_tokens(m, A100, 1, 0.5) < one
    assert fits(m, A100, 1, 0.5) and not fits(m, A100, 1, 0.3)


def test_does_not_fit_names_memory_need() -> None:
    pattern = r"needs 131\.\d GiB.*gives 72\.0 GiB; it fits at tp=2"
    with pytest.raises(InfeasibleError, match=pattern):
        kv_capacity_tokens(get_model("llama-2-70b"), A100, 1, 1.0)
    with pytest.raises(InfeasibleError, match="does not fit even at full share") as info:
        kv_capacity_tokens(HUGE, get_gpu("l40s"), 8, 1.0)
    assert info.value.reachable["need_gib_per_gpu"] > 90
    with pytest.raises(InfeasibleError, match="does not fit at any tp up to 8 at this share"):
        kv_capacity_tokens(get_model("llama-2-70b"), A100, 1, 0.1)


def test_bad_share_and_tp() -> None:
    with pytest.raises(InputError, match=r"mps_share=0 must be a fraction in \(0, 1\]"):
        kv_capacity_tokens(get_model("mistral-7b"), A100, 1, 0)
    with pytest.raises(InputError, match=r"tp=3 must divide"):
        kv_capacity_tokens(get_model("mistral-7b"), A100, 3, 1.0)


def test_mps_slowdown_shape() -> None:
    mps = MpsModel()
    ridge = A100.ridge_tokens
    assert mps.slowdown(1.0, 4096, ridge) == 1.0
    # compute-bound (big prefill): close to 1/share
    assert mps.slowdown(0.5, 100_000, ridge) == pytest.approx(2.0, rel=0.01)
    # bandwidth-bound (one decode) at a share above saturation: barely slower
    assert mps.slowdown(0.5, 1, ridge) < 1.02
    assert mps.slowdown(0.1, 1, ridge) == pytest.approx(5.0, rel=0.05)
    shares = [0.1, 0.2, 0.4, 0.6, 0.8, 1.0]
    values = [mps.slowdown(s, 512, ridge) for s in shares]
    assert values == sorted(values, reverse=True)
