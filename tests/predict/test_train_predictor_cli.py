"""``routerwise train-predictor`` through its real entry point (a subprocess, like a user)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routerwise.predict.artifact import load_predictor
from tests.predict.synthetic_text import synthetic_workload


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "routerwise", "train-predictor", *map(str, args)],
                          check=False, capture_output=True, text=True, env=env, timeout=300)


def flat(text: str) -> str:
    return "".join(text.split())


def write_wide(path: Path, n: int, seed: int, *, text: bool = True) -> Path:
    w = synthetic_workload(n, seed)
    frame = pd.DataFrame({"prompt_id": w.prompt_ids, "task": w.tasks})
    if text:
        frame["prompt"] = w.prompts
    for k, model in enumerate(w.models):
        frame[model] = np.asarray(w.labels)[:, k]
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("tp")
    return write_wide(tmp / "train.csv", 300, 0), write_wide(tmp / "test.csv", 100, 1)


def test_trains_writes_the_artifact_and_prints_report_json(files: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    train, test = files
    out = tmp_path / "pred"
    res = run("--workload", train, "--eval-on", test, "--out", out, "--json", "--seed", "3")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert {"per_model", "routing", "calibration"} <= set(report)
    assert set(report["per_model"]["generalist"]) >= {"auc", "brier", "brier_constant"}
    assert set(report["routing"]) >= {"best_single", "random", "predictor", "oracle",
                                      "captured_headroom"}
    assert report["routing"]["predictor"] > report["routing"]["best_single"]
    assert json.loads((out / "report.json").read_text()) == report
    assert load_predictor(out).models == ("generalist", "specialist")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_folds_report_and_table_output_and_rerun_replaces(files: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    train, _ = files
    out = tmp_path / "pred"
    for _ in range(2):  # the second run replaces the first predictor
        res = run("--workload", train, "--out", out, "--kind", "task", "--folds", "3")
        assert res.returncode == 0, res.stderr
    assert "capturedheadroom" in flat(res.stdout) and "3-foldout-of-fold" in flat(res.stdout)
    assert json.loads((out / "manifest.json").read_text())["kind"] == "task"


def test_workload_without_prompt_text_for_a_text_predictor(tmp_path: Path) -> None:
    path = write_wide(tmp_path / "notext.csv", 50, 0, text=False)
    res = run("--workload", path, "--out", tmp_path / "p")
    assert res.returncode == 1
    assert "notext.csv:theworkloadhasnoprompttext" in flat(res.stderr)
    assert not (tmp_path / "p").exists()


def test_labels_outside_the_unit_interval_name_the_file(tmp_path: Path) -> None:
    path = write_wide(tmp_path / "bad.csv", 50, 0)
    frame = pd.read_csv(path)
    frame.loc[7, "specialist"] = 1.5
    frame.to_csv(path, index=False)
    res = run("--workload", path, "--out", tmp_path / "p", "--kind", "task")
    assert res.returncode == 1
    assert "bad.csv" in flat(res.stderr) and "1.5" in res.stderr


def test_out_that_is_a_file_or_a_foreign_directory(files: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    train, _ = files
    a_file = tmp_path / "f.txt"
    a_file.write_text("keep me")
    res = run("--workload", train, "--out", a_file, "--kind", "task")
    assert res.returncode == 1 and "isafile" in flat(res.stderr)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.md").write_text("keep me")
    res = run("--workload", train, "--out", foreign, "--kind", "task")
    assert res.returncode == 1 and "notapredictor" in flat(res.stderr)
    assert a_file.read_text() == "keep me" and (foreign / "notes.md").read_text() == "keep me"


def test_missing_workload_and_bad_kind(tmp_path: Path) -> None:
    res = run("--workload", tmp_path / "none.csv", "--out", tmp_path / "p")
    assert res.returncode == 1 and "none.csv" in flat(res.stderr)
    res = run("--workload", tmp_path / "none.csv", "--out", tmp_path / "p", "--kind", "bert")
    assert res.returncode != 0 and "bert" in res.stderr


def test_help_is_readable() -> None:
    res = run("--help")
    assert res.returncode == 0
    text = res.stdout
    for token in ("FILE", "DIR", "K", "TEST_FILE", "tfidf|knn|embedding|task"):
        assert token in text
    assert "FLOAT" not in text and "TEXT" not in text and "<bool>" not in text


def test_text_without_a_vocabulary_is_a_named_error(tmp_path: Path) -> None:
    """Regression: one-letter prompts raised sklearn's 'empty vocabulary' as a traceback."""
    data = tmp_path / "tiny.csv"
    pd.DataFrame({"prompt_id": ["1", "2", "3", "4"], "prompt": ["x", "y", "z", "q"],
                  "a": [1.0, 0.0, 1.0, 0.0], "b": [0.0, 1.0, 0.0, 1.0]}).to_csv(data, index=False)
    res = run("--workload", data, "--out", tmp_path / "p", "--folds", "2")
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert "TF-IDFvocabulary" in flat(res.stderr) and "--kindtask" in flat(res.stderr)
