"""Monotone piecewise-linear latency curves."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from routerwise.errors import InputError
from routerwise.latency.curve import PiecewiseLinearCurve, fit_curve, isotonic_increasing
from routerwise.profiles.table import ProfilePoints
from routerwise.routing.supply import Supply
from tests.routing.builders import make_curve


def test_interpolates_and_is_flat_below_and_infinite_above() -> None:
    c = make_curve("m", [2.0, 4.0, 8.0], [10.0, 20.0, 60.0])
    assert c(3.0) == pytest.approx(15.0)
    assert c(0.5) == pytest.approx(10.0)
    assert c(8.0) == pytest.approx(60.0)
    assert np.isinf(c(8.5))
    assert c.capacity_rps_ == 8.0


def test_decreasing_points_are_pooled_with_a_warning_naming_them(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        c = make_curve("noisy", [1, 2, 3, 4], [10.0, 30.0, 20.0, 40.0])
    assert np.all(np.diff(c.values_) >= 0)
    assert c.values_.tolist() == [10.0, 25.0, 25.0, 40.0]
    assert [a.rate_rps for a in c.adjustments_] == [2.0, 3.0]
    assert "noisy" in caplog.text and "rate_rps=3" in caplog.text and "row 4" in caplog.text


@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=40))
def test_isotonic_is_monotone_and_mean_preserving(values: list[float]) -> None:
    arr = np.array(values)
    fit = isotonic_increasing(arr)
    assert np.all(np.diff(fit) >= -1e-9)
    assert fit.sum() == pytest.approx(arr.sum(), rel=1e-9, abs=1e-9)


def points_of(c: PiecewiseLinearCurve) -> ProfilePoints:
    return ProfilePoints("m", c.rates_, c.values_, "ttft_mean_ms", (), "<test>")


def test_unknown_latency_model_is_named() -> None:
    c = make_curve("m", [1, 2], [1, 2])
    with pytest.raises(InputError, match="unknown latency model 'spline'"):
        fit_curve(points_of(c), kind="spline")


def test_supply_conjugate_is_the_integral_of_the_load() -> None:
    s = Supply.from_knots(np.array([0.0, 1.0, 2.0, 5.0]), np.array([0.0, 0.1, 0.5, 0.7]))
    h = 1e-6
    for a in (-1.0, 0.3, 1.0, 1.7, 3.0, 7.0):
        deriv = (s.conjugate(a + h) - s.conjugate(a - h)) / (2 * h)
        assert deriv == pytest.approx(s.load(a), abs=1e-6)
