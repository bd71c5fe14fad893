"""Load generator pieces without a server: arrivals, prompts, the saturation rule, points."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routerwise.errors import InputError
from routerwise.profiles.arrivals import ARRIVALS, Gamma, Poisson, arrival_offsets_s, parse_arrival
from routerwise.profiles.client import Endpoint, RequestRecord
from routerwise.profiles.loadgen import RateResult, plan_rates
from routerwise.profiles.profiler import MeasuredShape, merge_points, point_of
from routerwise.profiles.prompts import (
    draw_requests,
    fixed_pool,
    load_prompts_file,
    workload_pool,
)
from routerwise.profiles.saturation import SaturationDetector, SaturationRule
from routerwise.profiles.table import validate_profile_frame
from routerwise.spec.workload import Workload

# --- arrivals -------------------------------------------------------------------------------


def test_poisson_offsets_start_at_zero_and_keep_the_rate() -> None:
    t = arrival_offsets_s(Poisson(), 2001, 40.0, np.random.default_rng(1))
    assert t[0] == 0.0 and np.all(np.diff(t) > 0)
    assert t[-1] == pytest.approx(2000 / 40.0)  # exactly (n - 1) / rate
    gaps = np.diff(t)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(1.0, abs=0.08)  # exponential: CV 1


def test_gamma_burstiness_is_its_coefficient_of_variation() -> None:
    t = arrival_offsets_s(Gamma(2.0), 4001, 10.0, np.random.default_rng(2))
    gaps = np.diff(t)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(2.0, rel=0.15)
    assert parse_arrival("gamma:0.5").describe() == "gamma:0.5"
    assert parse_arrival("poisson").describe() == "poisson"
    assert set(ARRIVALS) == {"poisson", "gamma"}


@pytest.mark.parametrize("text", ["weibull", "gamma", "gamma:x", "gamma:-1", "poisson:2"])
def test_bad_arrival_processes_are_named(text: str) -> None:
    with pytest.raises(InputError):
        parse_arrival(text)


def test_rate_plans_are_sorted_share_gaps_and_never_repeat_synthetic_prompts() -> None:
    plans = plan_rates([4.0, 1.0, 2.0], 50, fixed_pool(32), Poisson(), seed=3, max_tokens=8)
    assert [p.rate_rps for p in plans] == [1.0, 2.0, 4.0]
    np.testing.assert_allclose(plans[0].offsets_s, plans[2].offsets_s * 4.0)  # common numbers
    heads = [r.prompt.split(":")[0] for p in plans for r in p.requests]
    assert len(set(heads)) == 150  # no prefix shared across or within rates
    assert {r.max_tokens for p in plans for r in p.requests} == {8}
    with pytest.raises(InputError, match="requests-per-rate"):
        plan_rates([1.0], 0, fixed_pool(8), Poisson())


# --- prompts --------------------------------------------------------------------------------


def test_prompt_files(tmp_path: Path) -> None:
    txt = tmp_path / "p.txt"
    txt.write_text("hello there\n\nsecond prompt\n", encoding="utf-8")
    assert load_prompts_file(txt).texts == ("hello there", "second prompt")
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "a", "output_tokens": 5}\n{"prompt": "b", "output_tokens": 7}\n')
    pool = load_prompts_file(jsonl)
    assert pool.output_tokens == (5, 7)
    reqs = draw_requests(pool, 20, np.random.default_rng(0))
    assert {(r.prompt, r.max_tokens) for r in reqs} <= {("a", 5), ("b", 7)}
    assert {r.max_tokens for r in draw_requests(pool, 5, np.random.default_rng(0),
                                                max_tokens=3)} == {3}
    js = tmp_path / "p.json"
    js.write_text(json.dumps(["x", {"prompt": "y"}]))
    assert load_prompts_file(js).texts == ("x", "y")


@pytest.mark.parametrize(("name", "text", "match"), [
    ("bad.jsonl", '{"prompt": "a"}\nnot json\n', "line 2"),
    ("bad.json", '{"prompt": "a"}', "list"),
    ("bad.jsonl", '{"text": "a"}\n', "prompt"),
    ("bad.jsonl", '{"prompt": "a", "output_tokens": 0}\n', "positive"),
    ("empty.txt", "\n\n", "no prompts"),
    ("p.csv", "prompt\na\n", "--workload"),
])
def test_bad_prompt_files_are_named(tmp_path: Path, name: str, text: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_prompts_file(path)


def test_workload_pool_uses_texts_and_the_models_output_lengths() -> None:
    w = Workload(prompt_ids=("a", "b"), models=("m1", "m2"),
                 scores=np.array([[0.1, 0.2], [0.3, 0.4]]),
                 input_tokens=np.array([10.0, 20.0]),
                 output_tokens=np.array([[5.0, 50.0], [6.0, 60.0]]),
                 prompts=("first", "second"))
    pool = workload_pool(w, "m2")
    assert pool.texts == ("first", "second") and pool.output_tokens == (50, 60)
    assert pool.input_tokens == (10, 20)
    no_text = Workload(prompt_ids=("a",), models=("m",), scores=np.array([[0.5]]),
                       input_tokens=np.array([12.0]))
    req = draw_requests(workload_pool(no_text, "m"), 1, np.random.default_rng(0))[0]
    assert req.prompt.startswith("Request 0:") and len(req.prompt.split()) == 12 - 4 + 2


# --- the saturation rule --------------------------------------------------------------------


def _feed(rate: float, served: float, seconds: float) -> str | None:
    det = SaturationDetector(SaturationRule(), rate)
    t = 0.0
    while t < seconds:
        t += 0.1
        arrived = int(rate * t)
        started = min(arrived, int(served * t))
        if reason := det.observe(t, arrived, started):
            return reason
    return None


def test_saturation_needs_a_runaway_queue() -> None:
    assert _feed(50, 50, 30) is None  # keeps up
    assert _feed(50, 45, 30) is None  # 10% short: not *clearly* saturated
    reason = _feed(50, 20, 30)
    assert reason is not None and "served" in reason
    assert _feed(50, 20, 5.5) is None  # not before enough windows


# --- points and tables ----------------------------------------------------------------------


def _rec(i: int, ttft: float, ok: bool = True) -> RequestRecord:
    return RequestRecord(rate_rps=2.0, index=i, scheduled_s=i * 0.5, send_lag_ms=0.1,
                         success=ok, error="" if ok else "HTTP 500: x",
                         status_code=200 if ok else 500, ttft_ms=ttft if ok else math.nan,
                         tpot_ms=2.0 if ok else math.nan, e2e_ms=ttft + 20 if ok else 5.0,
                         itl_max_ms=3.0, input_tokens=10, output_tokens=11 if ok else 0,
                         chunks=11 if ok else 0)


def test_point_statistics_cover_successes_and_count_failures() -> None:
    records = (*(_rec(i, 10.0 * (i + 1)) for i in range(9)), _rec(9, 0, ok=False))
    point = point_of(RateResult(2.0, 10, 10, records, "t", 5.0, ""))
    assert point is not None
    assert point["ttft_mean_ms"] == pytest.approx(50.0)
    assert point["ttft_p50_ms"] == pytest.approx(50.0)
    assert point["failed"] == 1 and point["error_rate"] == pytest.approx(0.1)
    assert point["throughput_rps"] == pytest.approx(9 / (4.0 + 0.11))
    assert point["beyond_capacity"] is False
    assert point_of(RateResult(2.0, 1, 1, (_rec(0, 0, ok=False),), "t", 1.0, "")) is None


def test_merge_replaces_rows_of_the_same_model_shape_and_rate() -> None:
    def frame(rates: list[float], ttft: float, tp: int) -> pd.DataFrame:
        return pd.DataFrame({"model": "m", "rate_rps": rates, "ttft_mean_ms": ttft,
                             "gpu": "H100-SXM", "tp": tp, "mps_share": 1.0})
    old = validate_profile_frame(frame([1.0, 2.0], 10.0, 1), "t.csv")
    merged = merge_points(old, frame([2.0, 4.0], 20.0, 1), "t.csv").to_frame()
    assert sorted(merged["rate_rps"]) == [1.0, 2.0, 4.0]
    assert merged.loc[merged["rate_rps"] == 2.0, "ttft_mean_ms"].item() == 20.0
    other = merge_points(old, frame([2.0], 30.0, 2), "t.csv").to_frame()
    assert len(other) == 3  # another shape is kept beside


def test_beyond_capacity_points_are_not_curve_points() -> None:
    table = validate_profile_frame(pd.DataFrame({
        "model": "m", "rate_rps": [1.0, 2.0, 4.0], "ttft_mean_ms": [10.0, 20.0, 30.0],
        "beyond_capacity": [False, False, True]}), "t.csv")
    assert list(table.points("m").rates_rps) == [1.0, 2.0]


def test_measured_shape_parsing() -> None:
    s = MeasuredShape.parse("gpu=h100,tp=2,mps_share=0.5")
    assert (s.gpu, s.tp, s.mps_share) == ("H100-SXM", 2, 0.5)
    assert MeasuredShape.parse("gpu=cpu").gpu == "cpu"  # not in the catalog: kept as given
    for bad in ("tp=1", "gpu=h100,tp=3", "gpu=h100,mps_share=1.5", "gpu=h100,foo=1"):
        with pytest.raises(InputError):
            MeasuredShape.parse(bad)


@pytest.mark.parametrize(("url", "chat"), [
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/chat/completions"),
    ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1/chat/completions"),
    ("http://h:1/v1/chat/completions", "http://h:1/v1/chat/completions"),
])
def test_endpoint_urls(url: str, chat: str) -> None:
    e = Endpoint.parse(url)
    assert e.chat_url == chat and e.models_url == chat.replace("chat/completions", "models")
    with pytest.raises(InputError):
        Endpoint.parse("127.0.0.1:8000")
