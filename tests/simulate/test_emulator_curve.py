"""The emulator load-tested at three rates reproduces the estimator's mean TTFT within 15%
(``benchmarks/emulator_curve.py``: a real server process, Poisson arrivals, the estimator's
own arrival gaps)."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("uvicorn")

from benchmarks.emulator_curve import BAR, Shape, compare


@pytest.mark.slow
def test_emulator_reproduces_the_estimators_curve() -> None:
    cores = len(os.sched_getaffinity(0))
    if os.getloadavg()[0] > cores:  # the emulator runs in real time: it needs the CPU
        pytest.skip(f"machine busy (load {os.getloadavg()[0]:.1f} on {cores} cores): a real-"
                    "time timing test; run benchmarks/emulator_curve.py on a quiet machine")
    rows = compare(Shape("llama-3.1-70b", "H100-SXM", 4, 1.0), (0.3, 0.6, 0.85), n=120,
                   input_tokens=512, output_tokens=32)
    assert len(rows) == 3
    assert rows[0]["estimator_ms"] < rows[-1]["estimator_ms"]  # a curve, not a constant
    for r in rows:
        assert abs(r["error"]) <= BAR, r
