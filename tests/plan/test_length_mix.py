"""The plan warns when the router's prompt mix for a model is not the one its latency curve
was estimated with (the simulator found this to be the main source of error)."""

from __future__ import annotations

import numpy as np

from routerwise.plan.build import length_mix_warnings


def test_long_prompts_routed_to_one_model_are_named() -> None:
    tokens = np.array([100.0, 100.0, 400.0, 400.0])
    shares = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # short | long
    out = length_mix_warnings(("a", "b", "c"), (0, 2), shares, tokens,
                              {"a": 250.0, "b": 250.0, "c": 250.0})
    assert len(out) == 2
    assert out[0].startswith("a: ") and "100 input tokens" in out[0] and "lower" in out[0]
    assert out[1].startswith("c: ") and "400 input tokens" in out[1] and "higher" in out[1]


def test_a_mix_like_the_workloads_is_quiet() -> None:
    tokens = np.array([100.0, 300.0, 100.0, 300.0])
    shares = np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0], [1.0, 0.0]])  # a: 200 on average
    assert length_mix_warnings(("a", "b"), (0, 1), shares, tokens,
                               {"a": 200.0, "b": 200.0}) == []
    unused = np.array([[0.0, 1.0]] * 4)  # a model with no traffic says nothing
    assert length_mix_warnings(("a", "b"), (0, 1), unused, tokens,
                               {"a": 200.0, "b": 200.0}) == []
