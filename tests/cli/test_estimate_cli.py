"""``routerwise estimate`` through the real entry point: rates, a workload's lengths, errors."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from routerwise.cli import estimate as estimate_cli
from tests.cli.conftest import Cli

BASE = ["estimate", "--model", "qwen2.5-7b", "--gpu", "h100"]


@pytest.mark.usefixtures("profile_cache")
def test_fixed_rates_write_a_profile_table(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "p.csv"
    res = cli([*BASE, "--tp", "1", "--rates-rps", "1,4", "--num-requests", "200", "--out", out])
    assert res.exit_code == 0, res.stderr
    table = pd.read_csv(out)
    assert table["rate_rps"].tolist() == [1.0, 4.0]
    assert set(table["provenance"]) == {"estimated"}
    assert {"ttft_mean_ms", "tpot_mean_ms", "gpu", "tp", "mps_share"} <= set(table.columns)


@pytest.mark.usefixtures("profile_cache")
def test_lengths_from_a_scenario_and_from_a_file(tmp_path: Path, cli: Cli) -> None:
    rows = []
    for source in ("h100-mixed", "file"):
        workload = source
        if source == "file":
            frame = pd.DataFrame({"prompt_id": ["a", "b", "c"], "qwen2.5-7b": [0.5, 0.6, 0.7],
                                  "input_tokens": [2000, 2500, 3000],
                                  "output_tokens:qwen2.5-7b": [400, 500, 600]})
            frame.to_csv(tmp_path / "w.csv", index=False)
            workload = str(tmp_path / "w.csv")
        out = tmp_path / f"{source}.csv"
        res = cli([*BASE, "--rates-rps", "2", "--num-requests", "200", "--workload", workload,
                   "--out", out])
        assert res.exit_code == 0, res.stderr
        rows.append(pd.read_csv(out).iloc[0])
    # the file's prompts are ~2,500 tokens, the scenario's far shorter: slower first tokens
    assert rows[1]["ttft_mean_ms"] > rows[0]["ttft_mean_ms"]


@pytest.mark.parametrize(("args", "needle"), [
    (["--model", "nope", "--gpu", "h100", "--sweep"], "nope"),
    (["--model", "qwen2.5-7b", "--gpu", "tpu", "--sweep"], "tpu"),
    (["--model", "yi-34b", "--gpu", "h100", "--tp", "3", "--sweep"], "tp=3"),
])
def test_bad_input_is_named(tmp_path: Path, cli: Cli, args: list[str], needle: str) -> None:
    out = tmp_path / "p.csv"
    res = cli(["estimate", *args, "--out", out])
    assert res.exit_code == 1, res.stderr
    assert needle in res.stderr
    assert not out.exists()


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command starts estimating."""
    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("estimation started before the inputs were checked")

    monkeypatch.setattr(estimate_cli, "estimate_profile_cached", forbidden)
    monkeypatch.setattr(estimate_cli, "_lengths", forbidden)


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(("args", "needle"), [
    (["--rates-rps", "inf"], "--rates-rpsinf:infmustbeapositive,finiterate"),
    (["--rates-rps", "nan"], "nanmustbeapositive"),
    (["--rates-rps=-1"], "-1mustbeapositive"),
    (["--rates-rps", "1,-2.5"], "-2.5mustbeapositive"),
    (["--rates-rps", "0,2"], "0mustbeapositive"),
    (["--rates-rps", "1,x"], "'x'isnotanumber"),
    (["--rates-rps", "1", "--duration-s", "0"], "--duration-s0.0:mustbeapositive"),
    (["--rates-rps", "1", "--duration-s=-3"], "--duration-s-3.0:mustbeapositive"),
    (["--rates-rps", "1", "--duration-s", "nan"], "--duration-snan:mustbeapositive"),
    (["--rates-rps", "1", "--num-requests", "0"], "--num-requests0:mustbe>=1"),
    (["--sweep", "--plot", "{tmp}/curves.jpg"], "--plot{tmp}/curves.jpg:mustendin.png"),
])
def test_bad_values_exit_1_before_any_work(
    tmp_path: Path, cli: Cli, args: list[str], needle: str,
) -> None:
    out = tmp_path / "p.csv"
    start = time.perf_counter()
    res = cli([*BASE, *(a.replace("{tmp}", str(tmp_path)) for a in args), "--out", out])
    assert time.perf_counter() - start < 1.0
    assert res.exit_code == 1, res.stderr
    assert needle.replace("{tmp}", str(tmp_path)) in res.stderr_flat, res.stderr
    assert not out.exists()


@pytest.mark.usefixtures("no_work")
def test_output_paths_are_checked_before_any_work(tmp_path: Path, cli: Cli) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [
        (tmp_path / "p.txt", "mustendin.csv"),
        (tmp_path, "isadirectory"),
        (blocker / "p.csv", f"cannotbecreated,{blocker}isafile"),
    ]
    for out, needle in cases:
        start = time.perf_counter()
        res = cli([*BASE, "--sweep", "--out", out])
        assert time.perf_counter() - start < 1.0
        assert res.exit_code == 1, res.stderr
        assert f"--out{out}:" in res.stderr_flat and needle in res.stderr_flat, res.stderr


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("args", [["--tp", "two"], ["--bogus"], ["--mps-share", "half"]])
def test_usage_errors_exit_1(tmp_path: Path, cli: Cli, args: list[str]) -> None:
    res = cli([*BASE, "--sweep", *args, "--out", tmp_path / "p.csv"])
    assert res.exit_code == 1, res.stderr
    assert args[0] in res.stderr
