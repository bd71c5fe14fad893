"""``routerwise route`` end to end: JSON contract, exit codes, bad input, atomic output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from routerwise.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def write_inputs(tmp: Path, n: int = 300, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    scores = pd.DataFrame({"prompt_id": [f"p{i}" for i in range(n)]})
    for j, m in enumerate(("small", "medium", "large")):
        scores[m] = np.clip(rng.beta(2, 2, n) * (0.6 + 0.2 * j), 0, 1)
    rows = []
    for m, cap, base in (("small", 30, 40), ("medium", 15, 80), ("large", 8, 150)):
        for r in np.linspace(0.1, 1.0, 6) * cap:
            ttft = base * (1 + r / (cap * 1.1 - r))
            rows.append({"model": m, "rate_rps": r, "ttft_mean_ms": ttft})
    s, p = tmp / "scores.csv", tmp / "profiles.csv"
    scores.to_csv(s, index=False)
    pd.DataFrame(rows).to_csv(p, index=False)
    return s, p


def route(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, ["route", *args])
    return res.exit_code, res.stdout, res.stderr


def test_json_contract_and_slo(tmp_path: Path) -> None:
    s, p = write_inputs(tmp_path)
    code, out, _ = route("--scores", str(s), "--profiles", str(p), "--rate-rps", "25",
                         "--slo-ms", "130", "--json")
    assert code == 0
    doc = json.loads(out)
    assert {"feasible", "quality", "fractions", "prices", "predicted", "solve_seconds"} <= set(doc)
    assert doc["feasible"] is True
    assert set(doc["fractions"]) == {"small", "medium", "large"}
    assert sum(doc["fractions"].values()) == pytest.approx(1.0)
    assert doc["predicted"]["ttft_mean_ms"] <= 130 * (1 + 1e-7)
    per_model = doc["predicted"]["per_model"]
    assert set(per_model["large"]) == {"rate_rps", "ttft_mean_ms"}
    rates = sum(v["rate_rps"] for v in per_model.values())
    assert rates == pytest.approx(25.0)


def test_exact_solver_agrees_and_assignments_are_written(tmp_path: Path) -> None:
    s, p = write_inputs(tmp_path)
    base = ["--scores", str(s), "--profiles", str(p), "--rate-rps", "25", "--slo-ms", "130"]
    out_csv = tmp_path / "out" / "assign.csv"
    _, dual_out, _ = route(*base, "--json", "--assignments-out", str(out_csv))
    code, exact_out, _ = route(*base, "--json", "--solver", "exact")
    assert code == 0
    assert json.loads(dual_out)["quality"] == pytest.approx(json.loads(exact_out)["quality"],
                                                            abs=1e-3)
    table = pd.read_csv(out_csv)
    assert list(table.columns) == ["prompt_id", "model", "share"]
    assert (table["share"] > 0).all()
    assert table.groupby("prompt_id")["share"].sum().to_numpy() == pytest.approx(1.0)
    assert table["prompt_id"].nunique() == 300


def test_human_output_is_a_table(tmp_path: Path) -> None:
    s, p = write_inputs(tmp_path)
    code, out, _ = route("--scores", str(s), "--profiles", str(p), "--rate-rps", "25",
                         "--slo-ms", "130")
    assert code == 0
    assert "medium" in out and "quality" in out and "130 ms SLO" in out


def test_per_model_scope(tmp_path: Path) -> None:
    s, p = write_inputs(tmp_path)
    code, out, _ = route("--scores", str(s), "--profiles", str(p), "--rate-rps", "25",
                         "--slo-ms", "160", "--slo-scope", "per-model", "--json")
    assert code == 0
    doc = json.loads(out)
    for model, stats in doc["predicted"]["per_model"].items():
        if doc["fractions"][model] > 1e-9:
            assert stats["ttft_mean_ms"] <= 160 * (1 + 1e-7)


def test_infeasible_is_exit_2_with_what_is_reachable(tmp_path: Path) -> None:
    s, p = write_inputs(tmp_path)
    out_csv = tmp_path / "never.csv"
    code, out, _ = route("--scores", str(s), "--profiles", str(p), "--rate-rps", "25",
                         "--slo-ms", "30", "--json", "--assignments-out", str(out_csv))
    assert code == 2
    doc = json.loads(out)
    assert doc["feasible"] is False
    assert "lowest mean TTFT" in doc["message"] and "highest rate" in doc["message"]
    assert not out_csv.exists()
    max_rate = doc["reachable"]["max_rate_rps"]
    lowest = doc["reachable"]["lowest_ttft_mean_ms"]
    assert lowest > 30
    # the reported highest rate really is the boundary
    slo = ["--scores", str(s), "--profiles", str(p), "--slo-ms", "60", "--json"]
    _, out60, _ = route(*slo, "--rate-rps", "50")
    edge = json.loads(out60)["reachable"]["max_rate_rps"]
    assert route(*slo, "--rate-rps", str(edge * 0.99))[0] == 0
    assert route(*slo, "--rate-rps", str(edge * 1.01))[0] == 2
    assert max_rate is None or max_rate < 25


def test_rate_beyond_capacity(tmp_path: Path) -> None:
    s, p = write_inputs(tmp_path)
    code, _, err = route("--scores", str(s), "--profiles", str(p), "--rate-rps", "500",
                         "--slo-ms", "1000")
    assert code == 2
    assert "exceeds the total profiled capacity 53 req/s" in err.replace("\n", " ")


def _edit(path: Path, fn) -> Path:  # type: ignore[no-untyped-def]
    frame = pd.read_csv(path)
    out = fn(frame)
    (frame if out is None else out).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("target", "mutate", "needle"),
    [
        ("scores", lambda f: f.__setitem__("small", f["small"].where(f.index != 1, 1.5)),
         "row 3, column 'small'"),
        ("scores", lambda f: f.__setitem__("large", f["large"].where(f.index != 4, np.nan)),
         "row 6, column 'large'"),
        ("scores", lambda f: f.__setitem__("prompt_id", ["p0", *f["prompt_id"][1:-1], "p0"]),
         "duplicate prompt_id 'p0' at rows [2, 301]"),
        ("scores", lambda f: f.drop(columns="large"),
         "model(s) ['large'] are profiled but have no score column"),
        ("scores", lambda f: f.insert(1, "xl", 0.5), "model(s) ['xl'] have scores but no rows"),
        ("profiles", lambda f: f.__setitem__("rate_rps", f["rate_rps"].where(f.index != 2, -1)),
         "row 4, column 'rate_rps'"),
        ("profiles", lambda f: f.drop(index=range(13, 18)),
         "model 'large' has 1 profile point(s)"),
        ("profiles", lambda f: f.__setitem__("ttft_mean_ms", "fast"), "is not a number"),
    ],
)
def test_bad_input_names_file_row_column(tmp_path: Path, target: str, mutate, needle: str  # type: ignore[no-untyped-def]
                                         ) -> None:
    s, p = write_inputs(tmp_path)
    bad = _edit(s if target == "scores" else p, mutate)
    out_csv = tmp_path / "assign.csv"
    code, _, err = route("--scores", str(s), "--profiles", str(p), "--rate-rps", "25",
                         "--slo-ms", "130", "--assignments-out", str(out_csv))
    assert code == 1
    flat = " ".join(err.split())
    assert needle in flat and str(bad.name) in flat
    assert not out_csv.exists()


@pytest.mark.parametrize(
    ("content", "name", "needle"),
    [("", "scores.csv", "is empty"), ("prompt_id,a\n", "scores.csv", "no rows"),
     ("prompt_id,a\np1,0.5\n", "scores.txt", "must end in one of .csv, .parquet, .pq")],
)
def test_empty_and_wrong_files(tmp_path: Path, content: str, name: str, needle: str) -> None:
    _, p = write_inputs(tmp_path)
    bad = tmp_path / name
    bad.write_text(content)
    code, _, err = route("--scores", str(bad), "--profiles", str(p), "--rate-rps", "5",
                         "--slo-ms", "130")
    assert code == 1
    assert needle in " ".join(err.split())


@pytest.mark.parametrize(("flag", "value"), [("--rate-rps", "0"), ("--slo-ms", "-5")])
def test_non_positive_flags(tmp_path: Path, flag: str, value: str) -> None:
    s, p = write_inputs(tmp_path)
    args = {"--rate-rps": "25", "--slo-ms": "130", flag: value}
    code, _, err = route("--scores", str(s), "--profiles", str(p), *sum(args.items(), ()))
    assert code == 1
    assert "must be a positive, finite number" in err


def test_decreasing_profile_points_are_named(tmp_path: Path) -> None:
    s, p = write_inputs(tmp_path)
    _edit(p, lambda f: f.__setitem__("ttft_mean_ms", f["ttft_mean_ms"].where(
        f.index != 2, f["ttft_mean_ms"][1] * 0.8)))
    code, out, _ = route("--scores", str(s), "--profiles", str(p), "--rate-rps", "25",
                         "--slo-ms", "130", "--json")
    assert code == 0
    warnings = [w for w in json.loads(out)["warnings"] if "made monotone" in w]
    assert len(warnings) == 2 and "model 'small'" in warnings[0] and "(row 4)" in warnings[1]


def test_module_entry_point(tmp_path: Path) -> None:
    s, p = write_inputs(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "routerwise", "route", "--scores", str(s), "--profiles", str(p),
         "--rate-rps", "25", "--slo-ms", "130", "--json"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["feasible"] is True


def test_demo_example_routes() -> None:
    code, out, _ = route("--scores", str(ROOT / "examples/scores.csv"), "--profiles",
                         str(ROOT / "examples/profiles.csv"), "--rate-rps", "40", "--slo-ms",
                         "25", "--json")
    assert code == 0
    assert json.loads(out)["feasible"] is True


def test_two_shapes_of_one_model_are_an_error_naming_rows(tmp_path: Path) -> None:
    """Regression: tp1 and tp2 rows of one model were merged into one curve with misleading
    'made monotone' warnings."""
    s, p = write_inputs(tmp_path)
    frame = pd.read_csv(p)
    frame["gpu"], frame["tp"], frame["mps_share"] = "H100-SXM", 1, 1.0
    twin = frame[frame["model"] == "small"].copy()
    twin["tp"] = 2
    twin["ttft_mean_ms"] *= 0.7
    pd.concat([frame, twin]).to_csv(p, index=False)
    code, _, err = route("--scores", str(s), "--profiles", str(p), "--rate-rps", "25",
                         "--slo-ms", "130")
    text = " ".join(err.split())
    assert code == 1
    assert "'small' has rows of 2 instance shapes" in text
    assert "tp=1" in text and "tp=2" in text and "rows [2, 3, 4]" in text
    assert "made monotone" not in text


def test_route_needs_plan_or_profiles(tmp_path: Path) -> None:
    s, p = write_inputs(tmp_path)
    code, _, err = route("--scores", str(s), "--rate-rps", "25", "--slo-ms", "130")
    assert code == 1 and "--profiles" in err
    code, _, err = route("--plan", str(tmp_path / "nope"), "--profiles", str(p))
    assert code == 1 and "not both" in err
    code, _, err = route("--plan", str(tmp_path / "nope.json"))
    assert code == 1 and "plan file does not exist" in err


def test_oracle_scores_are_labelled(tmp_path: Path) -> None:
    s, p = write_inputs(tmp_path)
    code, out, _ = route("--scores", str(s), "--profiles", str(p), "--rate-rps", "25",
                         "--slo-ms", "130", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["provenance"]["scores"] == "oracle"
    assert any("ORACLE" in w for w in doc["warnings"])
