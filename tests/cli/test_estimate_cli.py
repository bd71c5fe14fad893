"""``routerwise estimate`` through the real entry point: rates, a workload's lengths, errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from routerwise.cli.app import app

runner = CliRunner()


@pytest.mark.usefixtures("profile_cache")
def test_fixed_rates_write_a_profile_table(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    res = runner.invoke(app, ["estimate", "--model", "qwen2.5-7b", "--gpu", "h100", "--tp", "1",
                              "--rates-rps", "1,4", "--num-requests", "200", "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    table = pd.read_csv(out)
    assert table["rate_rps"].tolist() == [1.0, 4.0]
    assert set(table["provenance"]) == {"estimated"}
    assert {"ttft_mean_ms", "tpot_mean_ms", "gpu", "tp", "mps_share"} <= set(table.columns)


@pytest.mark.usefixtures("profile_cache")
def test_lengths_from_a_scenario_and_from_a_file(tmp_path: Path) -> None:
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
        res = runner.invoke(app, ["estimate", "--model", "qwen2.5-7b", "--gpu", "h100",
                                  "--rates-rps", "2", "--num-requests", "200", "--workload",
                                  workload, "--out", str(out)])
        assert res.exit_code == 0, res.stderr
        rows.append(pd.read_csv(out).iloc[0])
    # the file's prompts are ~2,500 tokens, the scenario's far shorter: slower first tokens
    assert rows[1]["ttft_mean_ms"] > rows[0]["ttft_mean_ms"]


@pytest.mark.parametrize(("args", "needle"), [
    (["--model", "nope", "--gpu", "h100", "--sweep"], "nope"),
    (["--model", "qwen2.5-7b", "--gpu", "tpu", "--sweep"], "tpu"),
    (["--model", "yi-34b", "--gpu", "h100", "--tp", "3", "--sweep"], "tp=3"),
    (["--model", "qwen2.5-7b", "--gpu", "h100", "--rates-rps", "0,2"], "rate"),
])
def test_bad_input_is_named(tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "p.csv"
    res = runner.invoke(app, ["estimate", *args, "--out", str(out)])
    assert res.exit_code != 0
    assert needle in res.stderr
    assert not out.exists()
