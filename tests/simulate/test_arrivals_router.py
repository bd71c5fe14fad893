"""Arrival processes (rates, burstiness, traces and their bad rows) and the routing rule."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from routerwise.errors import InputError
from routerwise.simulate.arrivals import GammaRenewal, Poisson, load_trace, parse_arrivals
from routerwise.simulate.router import RoutingRule, routing_probabilities


def _cv(times: np.ndarray) -> float:
    gaps = np.diff(times)
    return float(np.std(gaps) / np.mean(gaps))


def test_poisson_rate_and_window() -> None:
    times = Poisson().times_s(20.0, 500.0, np.random.default_rng(1))
    assert abs(len(times) - 10_000) < 5 * np.sqrt(10_000)
    assert times.min() >= 0 and times.max() < 500.0 and np.all(np.diff(times) >= 0)
    assert _cv(times) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("cv", [0.5, 2.0])
def test_gamma_has_its_coefficient_of_variation(cv: float) -> None:
    times = GammaRenewal(cv).times_s(10.0, 2000.0, np.random.default_rng(2))
    assert abs(len(times) / 2000.0 - 10.0) < 0.6
    assert _cv(times) == pytest.approx(cv, rel=0.1)


def test_same_seed_same_arrivals() -> None:
    a = Poisson().times_s(5.0, 100.0, np.random.default_rng(7))
    b = Poisson().times_s(5.0, 100.0, np.random.default_rng(7))
    c = Poisson().times_s(5.0, 100.0, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)


def test_trace_csv_is_shifted_rescaled_and_cut(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("arrival_s,other\n10,x\n11,y\n12,z\n14,w\n", encoding="utf-8")
    trace = load_trace(path)
    np.testing.assert_allclose(trace.times_s(None, 100.0, np.random.default_rng()),
                               [0, 1, 2, 4])
    assert trace.recorded_rate_rps() == pytest.approx(1.0)
    np.testing.assert_allclose(trace.times_s(2.0, 100.0, np.random.default_rng()),
                               [0, 0.5, 1, 2])
    np.testing.assert_allclose(trace.times_s(None, 2.0, np.random.default_rng()), [0, 1])


def test_trace_plain_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("0.5\n0.7\n\n1.5\n", encoding="utf-8")
    np.testing.assert_allclose(load_trace(path).offsets_s, [0, 0.2, 1.0])


@pytest.mark.parametrize(("text", "message"), [
    ("arrival_s\n1\nabc\n", "line 3: 'abc' is not a number"),
    ("arrival_s\n1\n-2\n", "line 3: -2 must be a finite time >= 0"),
    ("arrival_s\n1\nnan\n", "line 3: nan must be a finite time"),
    ("arrival_s\n3\n2\n", "line 3: 2 s is before the previous arrival 3 s"),
    ("time,x\n1,2\n", "line 1: expected a header with an 'arrival_s' column"),
    ("arrival_s\n", "no arrivals after the header"),
    ("", "the file is empty"),
    ("x,arrival_s\n1,2\n2\n", "line 3: no arrival_s value"),
])
def test_trace_bad_rows_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(message)) as info:
        load_trace(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ("uniform", "unknown process"), ("gamma:x", "is not a number"), ("gamma:0", "positive"),
    ("poisson:3", "takes no parameter"), ("trace:/no/such/file", "does not exist"),
])
def test_bad_arrival_specs(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_arrivals(text)


def test_routing_is_the_argmax_of_score_minus_price() -> None:
    scores = np.array([[0.9, 0.5], [0.6, 0.55], [0.3, 0.8]])
    p = routing_probabilities(scores, np.array([0.0, 0.0]), 1e-4)
    np.testing.assert_array_equal(p.argmax(axis=1), [0, 0, 1])
    p = routing_probabilities(scores, np.array([0.1, 0.0]), 1e-4)  # 0.6 - 0.1 < 0.55
    np.testing.assert_array_equal(p.argmax(axis=1), [0, 1, 1])
    assert np.all((p > 1 - 1e-9) | (p < 1e-9))


def test_exact_ties_split_by_the_softmax_and_sampled_from_it() -> None:
    scores = np.array([[0.5, 0.5, 0.1]])
    p = routing_probabilities(scores, np.zeros(3), 1e-4)
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0], atol=1e-9)
    rule = RoutingRule(("a", "b", "c"), p)
    picks = rule.choose(np.zeros(20_000, dtype=np.int64), np.random.default_rng(0))
    share = np.bincount(picks, minlength=3) / len(picks)
    assert share[0] == pytest.approx(0.5, abs=0.02) and share[2] == 0.0
    p0 = routing_probabilities(scores, np.zeros(3), 0.0)  # temperature 0: an even split
    np.testing.assert_allclose(p0[0], [0.5, 0.5, 0.0])
