"""``routerwise profile`` against the synthetic server (a subprocess on 127.0.0.1): faults,
a dead endpoint, early stop at saturation, Ctrl-C, and the table it writes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from routerwise.cli.app import app
from routerwise.profiles.arrivals import Poisson
from routerwise.profiles.client import ClientSettings, Endpoint
from routerwise.profiles.loadgen import LoadSettings, plan_rates, run_profile
from routerwise.profiles.prompts import fixed_pool
from routerwise.profiles.synthetic_server import ServerConfig, running_server
from routerwise.profiles.table import load_profiles

runner = CliRunner()


def profile(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, ["profile", *args])
    return res.exit_code, res.stdout, " ".join(res.stderr.split())  # rich wraps lines


@pytest.fixture(scope="module")
def fast_server() -> Iterator[str]:
    with running_server(ServerConfig(service_ms=2.0, workers=0, tokens=6,
                                     token_gap_ms=1.0)) as url:
        yield url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_profile_writes_a_measured_table_and_request_rows(fast_server: str,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "prof.csv"
    code, stdout, stderr = profile(
        "--endpoint", fast_server, "--model", "synthetic", "--rates-rps", "20,40",
        "--requests-per-rate", "40", "--out", str(out), "--shape",
        "gpu=H100-SXM,tp=1,mps_share=1", "--label", "small", "--max-tokens", "6", "--json")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert [p["rate_rps"] for p in doc["points"]] == [20.0, 40.0]
    assert doc["errors"] == {} and doc["ignore_eos"] is True
    table = load_profiles(out)
    frame = table.to_frame()
    assert set(frame["provenance"]) == {"measured"} and set(frame["model"]) == {"small"}
    assert set(frame["gpu"]) == {"H100-SXM"} and set(frame["tp"]) == {1}
    assert (frame["succeeded"] == 40).all() and (frame["error_rate"] == 0).all()
    assert (frame["output_tokens_mean"] == 6).all()
    assert frame["server_software"].iloc[0] == "routerwise-synthetic"
    assert frame["offered_rate_rps"].tolist() == pytest.approx([20.0, 40.0], rel=0.15)
    rows = pd.read_csv(tmp_path / "prof.requests.csv")
    assert len(rows) == 80 and rows["success"].all() and (rows["model"] == "small").all()
    # a second shape is appended beside the first; a rerun of a rate replaces its row
    code, _, stderr = profile(
        "--endpoint", fast_server, "--model", "synthetic", "--rates-rps", "40,60",
        "--requests-per-rate", "20", "--out", str(out), "--shape", "gpu=H100-SXM,tp=2",
        "--label", "small")
    assert code == 0, stderr
    frame = load_profiles(out).to_frame()
    assert sorted(zip(frame["tp"], frame["rate_rps"], strict=True)) == [
        (1, 20.0), (1, 40.0), (2, 40.0), (2, 60.0)]
    assert len(pd.read_csv(tmp_path / "prof.requests.csv")) == 120  # rows appended too


@pytest.mark.parametrize("fault", ["http500", "malformed", "truncate", "close", "error-event"])
def test_faults_become_error_rows_and_a_summary(fault: str, tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    with running_server(ServerConfig(service_ms=1.0, workers=0, tokens=4, fault=fault,
                                     fault_every=3)) as url:
        code, stdout, stderr = profile(
            "--endpoint", url, "--model", "synthetic", "--rates-rps", "30",
            "--requests-per-rate", "30", "--out", str(out), "--json", "--timeout-s", "5")
    assert code == 0, stderr
    doc = json.loads(stdout)
    rows = pd.read_csv(tmp_path / "p.requests.csv", keep_default_na=False)
    assert len(rows) == 30  # no row lost
    failed = rows[rows["success"].astype(str) == "False"]
    # the probe request was the server's first: every third request from the second one on
    assert len(failed) == 10
    assert doc["points"][0]["error_rate"] == pytest.approx(10 / 30)
    assert sum(doc["errors"].values()) == 10
    assert all(failed["error"].str.len() > 0)


def test_hanging_requests_time_out_as_rows(tmp_path: Path) -> None:
    with running_server(ServerConfig(service_ms=1.0, workers=0, tokens=2, fault="hang",
                                     fault_every=2)) as url:
        code, stdout, stderr = profile(
            "--endpoint", url, "--model", "synthetic", "--rates-rps", "20",
            "--requests-per-rate", "10", "--out", str(tmp_path / "p.csv"), "--json",
            "--timeout-s", "1")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["errors"] == {"timeout": 5}


def test_refused_connections_mid_run_are_rows(tmp_path: Path) -> None:
    """The server dies after the probe: every request is a connect-error row."""
    async def go() -> int:
        with running_server(ServerConfig(service_ms=1.0, workers=0, tokens=2)) as url:
            settings = ClientSettings(Endpoint.parse(url), "synthetic", timeout_s=5)
            plans = plan_rates([50.0], 20, fixed_pool(8), Poisson(), max_tokens=2)

            class KillAfterProbe:
                def probed(self, *_: object) -> None:
                    stop.set()

                def rate_started(self, *_: object) -> None: ...
                def record(self, *_: object) -> None: ...
                def progress(self, *_: object) -> None: ...
                def rate_finished(self, *_: object) -> None: ...

            stop = asyncio.Event()
            task = asyncio.create_task(run_profile(settings, plans, observer=KillAfterProbe(),
                                                   load=LoadSettings()))
            await stop.wait()
        run = await task  # the server is gone before the first rate's requests
        records = run.results[0].records
        assert len(records) == 20 and not any(r.success for r in records)
        return sum(r.error.startswith(("connect error", "read error", "protocol error"))
                   for r in records)

    assert asyncio.run(go()) == 20


def test_a_concurrency_limit_holds_requests_in_the_client(fast_server: str,
                                                           tmp_path: Path) -> None:
    """At most C in flight; the wait counts in TTFT (it is measured from the due time)."""
    def run(*extra: str) -> dict[str, float]:
        code, stdout, stderr = profile(
            "--endpoint", fast_server, "--model", "synthetic", "--rates-rps", "100",
            "--requests-per-rate", "60", "--out", str(tmp_path / f"p{len(extra)}.csv"),
            "--json", "--max-tokens", "6", *extra)
        assert code == 0, stderr
        return dict(json.loads(stdout)["points"][0])

    free, limited = run(), run("--concurrency-limit", "1")
    # one at a time, ~7 ms each (2 ms + 5 token gaps of 1 ms) at 100 req/s: a queue builds
    assert limited["ttft_mean_ms"] > free["ttft_mean_ms"] + 5
    frame = pd.read_csv(tmp_path / "p2.csv")
    assert frame["concurrency_limit"].item() == 1


def test_dead_endpoint_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    port = free_port()
    t = time.perf_counter()
    code, _, stderr = profile("--endpoint", f"http://127.0.0.1:{port}", "--model", "m",
                              "--rates-rps", "1", "--out", str(tmp_path / "p.csv"))
    assert time.perf_counter() - t < 5
    assert code == 1 and "cannot reach" in stderr and "is the server running" in stderr
    assert not (tmp_path / "p.csv").exists()


def test_silent_endpoint_fails_in_under_five_seconds(tmp_path: Path) -> None:
    with socket.socket() as listener:  # accepts connections (kernel backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        t = time.perf_counter()
        code, _, stderr = profile("--endpoint", f"http://127.0.0.1:{port}", "--model", "m",
                                  "--rates-rps", "1", "--out", str(tmp_path / "p.csv"))
        elapsed = time.perf_counter() - t
    assert elapsed < 5 and code == 1 and "no answer" in stderr


def test_bad_flags_fail_before_any_request(tmp_path: Path) -> None:
    base = ["--endpoint", "http://127.0.0.1:9", "--model", "m", "--out", str(tmp_path / "p.csv")]
    for extra, message in (
        (["--rates-rps", "1,x"], "not a number"),
        (["--rates-rps", "1", "--arrival", "weibull"], "unknown process"),
        (["--rates-rps", "1", "--shape", "tp=1"], "gpu=NAME"),
        (["--rates-rps", "1", "--api-key-env", "ROUTERWISE_NO_SUCH_VAR"], "not set"),
        (["--rates-rps", "1", "--concurrency-limit", "0"], "concurrency-limit"),
    ):
        code, _, stderr = profile(*base, *extra)
        assert code == 1 and message in stderr, (extra, stderr)
    code, _, stderr = profile("--endpoint", "http://127.0.0.1:9", "--model", "m",
                              "--rates-rps", "1", "--out", str(tmp_path))
    assert code == 1 and "is a directory" in stderr


def test_saturated_rate_stops_early_and_faster_rates_are_skipped(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    # one worker, 10 ms a request: 100 req/s at most; 200 req/s is clearly beyond
    with running_server(ServerConfig(service_ms=10.0, workers=1, tokens=2)) as url:
        t = time.perf_counter()
        code, stdout, stderr = profile(
            "--endpoint", url, "--model", "synthetic", "--rates-rps", "200,400",
            "--requests-per-rate", "3000", "--out", str(out), "--json", "--max-tokens", "2")
        elapsed = time.perf_counter() - t
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["skipped_rates_rps"] == [400.0]
    frame = load_profiles(out).to_frame()
    assert frame["beyond_capacity"].tolist() == [True]
    assert frame["requests"].item() < 3000  # stopped before sending them all
    assert "served" in frame["stop_reason"].item()
    assert elapsed < 120  # neither the whole rate with its drain nor 400 req/s (loose: CI)
    rows = pd.read_csv(tmp_path / "p.requests.csv", keep_default_na=False)
    assert rows["error"].str.startswith("cancelled: rate stopped early").any()
    assert len(rows) == frame["requests"].item()  # every request sent has its row


def test_ctrl_c_keeps_finished_rates_and_every_row(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    with running_server(ServerConfig(service_ms=5.0, workers=0, tokens=4,
                                     token_gap_ms=50.0)) as url:
        proc = subprocess.Popen(
            [sys.executable, "-m", "routerwise", "profile", "--endpoint", url, "--model",
             "synthetic", "--rates-rps", "40,41", "--requests-per-rate", "40", "--out",
             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "COLUMNS": "120"})
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline:  # the first rate is written
            time.sleep(0.05)
        time.sleep(0.5)  # into the second rate
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "kept" in stderr
    assert load_profiles(out).to_frame()["rate_rps"].tolist() == [40.0]
    rows = pd.read_csv(tmp_path / "p.requests.csv", keep_default_na=False)
    second = rows[rows["rate_rps"] == 41.0]
    assert len(rows[rows["rate_rps"] == 40.0]) == 40 and len(second) > 0
    assert second["error"].str.startswith("cancelled: interrupted").any()
    assert not list(tmp_path.glob(".*partial"))
