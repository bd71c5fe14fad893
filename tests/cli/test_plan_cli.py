"""``routerwise plan`` end to end: the plan.json contract, plots, exit codes and bad specs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from routerwise.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
runner = CliRunner()

SPEC = """\
name: tiny
cluster: {{gpu_type: {gpu}, num_gpus: {gpus}, gpus_per_node: 8}}
models:
  - {{name: small, catalog_id: llama-3.1-8b}}
  - {{name: large, catalog_id: {large}}}
workload: {workload}
rate_rps: {rate}
slo: {slo}
"""


def plan(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, ["plan", *args])
    return res.exit_code, res.stdout, res.stderr


def write_spec(tmp: Path, *, gpu: str = "H100-SXM", gpus: int = 2, large: str = "qwen2.5-32b",
               workload: str = "{path: scores.csv}", rate: float = 6,
               slo: str = "{metric: ttft, stat: mean, target_ms: 400}") -> Path:
    spec = tmp / "spec.yaml"
    spec.write_text(SPEC.format(gpu=gpu, gpus=gpus, large=large, workload=workload, rate=rate,
                                slo=slo))
    return spec


def write_scores(tmp: Path, extra: bool = False) -> None:
    frame = pd.DataFrame({"prompt_id": [f"p{i}" for i in range(200)],
                          "small": [0.3 + 0.002 * i for i in range(200)],
                          "large": [0.9 - 0.003 * i for i in range(200)],
                          "input_tokens": 300})
    for m in ("small", "large"):
        frame[f"output_tokens:{m}"] = 150
    if extra:
        frame["giant"] = 0.5
        frame["output_tokens:giant"] = 150
    frame.to_csv(tmp / "scores.csv", index=False)


@pytest.mark.usefixtures("profile_cache")
def test_plan_json_contract_and_files(tmp_path: Path) -> None:
    write_scores(tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = plan("--spec", str(write_spec(tmp_path)), "--out", str(out), "--json",
                                "--executor", "serial")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc == json.loads((out / "plan.json").read_text())
    for key in ("feasible", "quality", "setup", "routing", "predicted", "slo", "cluster",
                "rate_rps", "search", "baselines", "provenance"):
        assert key in doc
    assert set(doc["quality"]) >= {"predicted", "truth"}
    assert set(doc["setup"][0]) == {"model", "gpu_type", "tp", "mps_share", "gpu_ids"}
    assert set(doc["routing"]) >= {"prices", "fractions"}
    assert {"ttft_mean_ms", "per_model"} <= set(doc["predicted"])
    assert doc["slo"] == {"metric": "ttft", "stat": "mean", "target_ms": 400,
                          "per_model_max_ms": None}
    assert doc["cluster"] == {"gpu_type": "H100-SXM", "num_gpus": 2, "gpus_per_node": 8,
                              "pools": []}
    assert {"enumerated", "retained", "evaluated", "seconds", "quality_min",
            "quality_max"} <= set(doc["search"])
    assert set(doc["baselines"]) == {"equal_split", "size_proportional", "isolated",
                                     "best_single_model"}
    for b in doc["baselines"].values():
        assert {"feasible", "quality", "setup"} <= set(b)
    assert (out / "quality_spread.png").stat().st_size > 1000
    assert (out / "latency_curves.png").stat().st_size > 1000


@pytest.mark.usefixtures("profile_cache")
def test_human_summary(tmp_path: Path) -> None:
    write_scores(tmp_path)
    code, stdout, _ = plan("--spec", str(write_spec(tmp_path)), "--out", str(tmp_path / "o"),
                           "--executor", "serial")
    assert code == 0
    for text in ("Setup on 2× H100-SXM", "Routing at 6 req/s", "Baselines", "search (lagrangian):",
                 "quality spread"):
        assert text in stdout


@pytest.mark.usefixtures("profile_cache")
def test_unreachable_slo_is_exit_2_with_what_is_reachable(tmp_path: Path) -> None:
    write_scores(tmp_path)
    code, _, stderr = plan("--spec", str(write_spec(tmp_path)), "--out", str(tmp_path / "o"),
                           "--slo-ms", "2", "--executor", "serial")
    assert code == 2
    flat = " ".join(stderr.split())
    assert "lowest mean TTFT any setup reaches is" in flat
    assert "the highest rate any setup serves within it" in flat or "no rate meets it" in flat
    doc = json.loads((tmp_path / "o" / "plan.json").read_text())
    assert doc["feasible"] is False and doc["infeasible"]["lowest_ttft_mean_ms"] > 2


@pytest.mark.usefixtures("profile_cache")
def test_rate_beyond_every_setup(tmp_path: Path) -> None:
    write_scores(tmp_path)
    code, _, stderr = plan("--spec", str(write_spec(tmp_path)), "--out", str(tmp_path / "o"),
                           "--rate-rps", "100000", "--executor", "serial")
    assert code == 2
    assert "exceeds the capacity of every setup" in " ".join(stderr.split())


def test_model_that_fits_nowhere(tmp_path: Path) -> None:
    write_scores(tmp_path)
    spec = write_spec(tmp_path, gpu="L40S", gpus=1, large="llama-3.1-70b")
    code, _, stderr = plan("--spec", str(spec), "--out", str(tmp_path / "o"))
    assert code == 2
    flat = " ".join(stderr.split())
    assert "cluster: model 'large' fits nowhere" in flat and "GiB" in flat
    assert not (tmp_path / "o" / "plan.json").exists()


@pytest.mark.parametrize(
    ("kwargs", "extra", "needle"),
    [
        ({"workload": "{path: missing.csv}"}, False, "workload.path: file"),
        ({}, True, "scores for model(s) ['giant'] that are not in the spec's models"),
        ({"slo": "{metric: ttft, stat: mean}"}, False, "slo.target_ms"),
        ({"gpu": "TPU-v5"}, False, "cluster.gpu_type"),
    ],
)
def test_bad_specs_name_the_field(tmp_path: Path, kwargs: dict[str, str], extra: bool,
                                  needle: str) -> None:
    write_scores(tmp_path, extra=extra)
    code, _, stderr = plan("--spec", str(write_spec(tmp_path, **kwargs)),  # type: ignore[arg-type]
                           "--out", str(tmp_path / "o"))
    assert code == 1
    assert needle in " ".join(stderr.split())
    assert not (tmp_path / "o" / "plan.json").exists()


def test_scenario_or_spec_not_both(tmp_path: Path) -> None:
    code, _, stderr = plan("h100-mixed", "--spec", "x.yaml", "--out", str(tmp_path))
    assert code == 1 and "not both" in stderr


def test_unknown_scenario(tmp_path: Path) -> None:
    code, _, stderr = plan("nope", "--out", str(tmp_path))
    assert code == 1 and "nope" in stderr


@pytest.mark.usefixtures("profile_cache")
def test_real_llmrouter_workload(tmp_path: Path) -> None:
    data = SHARED / "llmrouter" / "data" / "dcrouter_preprocessed" / "test.json"
    if not data.exists():
        pytest.skip(f"real data not present at {data}")
    names = ["qwen2.5-7b-instruct", "llama-3.1-8b-instruct", "mistral-7b-instruct-v0.3",
             "gemma-2-9b-it", "codegemma-7b", "llama3-chatqa-1.5-8b", "llama3-chatqa-1.5-70b",
             "llama-3.1-nemotron-51b-instruct", "llama-3.3-nemotron-super-49b-v1"]
    served = {"qwen2.5-7b-instruct": "qwen2.5-7b", "llama3-chatqa-1.5-70b": "llama-3.1-70b"}
    ignored = [n for n in names if n not in served]
    spec = tmp_path / "real.yaml"
    spec.write_text(
        "name: llmrouter-real\n"
        "cluster: {gpu_type: H100-SXM, num_gpus: 4, gpus_per_node: 8}\n"
        "models:\n" + "".join(f"  - {{name: {n}, catalog_id: {c}}}\n" for n, c in served.items())
        + f"workload: {{path: {data}, format: llmrouter, ignore_models: {json.dumps(ignored)}}}\n"
        "rate_rps: 4\nslo: {target_ms: 500}\n")
    code, stdout, stderr = plan("--spec", str(spec), "--out", str(tmp_path / "o"), "--json",
                                "--executor", "serial")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["provenance"]["workload"] == "measured"
    assert doc["inputs"]["num_prompts"] == 500
    notes = " ".join(doc["provenance"]["notes"])
    assert "input from prompt text, characters / 4" in notes
    assert "no output lengths: 256 output tokens assumed" in notes
    # the file's scores are outcome labels: an oracle, never called a prediction
    assert doc["quality"]["score_source"] == "oracle"
    assert doc["provenance"]["scores"] == "oracle"
    assert doc["quality"]["truth"] is None
    assert "ORACLE" in doc["quality"]["note"]


@pytest.mark.usefixtures("profile_cache")
def test_supplied_profiles_replace_estimates(tmp_path: Path) -> None:
    write_scores(tmp_path)
    table = tmp_path / "measured.csv"
    res = runner.invoke(app, ["estimate", "--model", "llama-3.1-8b", "--gpu", "H100-SXM",
                              "--tp", "1", "--mps-share", "1.0", "--sweep", "--num-requests",
                              "300", "--out", str(table)])
    assert res.exit_code == 0, res.stderr
    frame = pd.read_csv(table)
    frame["model"] = "small"  # rows are matched by the spec's model name and the shape
    frame["provenance"] = "measured"
    frame.to_csv(table, index=False)
    code, stdout, stderr = plan("--spec", str(write_spec(tmp_path)), "--out",
                                str(tmp_path / "o"), "--profiles", str(table), "--json",
                                "--executor", "serial")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["provenance"]["profiles"]["measured"] == 1
    # small's other shapes are its estimates corrected by the measured one (derived)
    assert doc["provenance"]["latency"] == ["derived", "estimated", "measured"]
    assert any(n.startswith("small on H100-SXM") for n in doc["provenance"]["notes"])
    used = pd.read_csv(tmp_path / "o" / "profiles.csv")
    small = used[(used["model"] == "small") & (used["tp"] == 1) & (used["mps_share"] == 1.0)]
    assert set(small["provenance"]) == {"measured"}
    code, stdout, stderr = plan("--spec", str(write_spec(tmp_path)), "--out",
                                str(tmp_path / "raw"), "--profiles", str(table), "--json",
                                "--executor", "serial", "--no-correction")
    assert code == 0, stderr
    raw = json.loads(stdout)  # the same measured shape; the other shapes stay as estimated
    assert raw["provenance"]["latency"] == ["estimated", "measured"]
    assert not any(n.startswith("small on H100-SXM") for n in raw["provenance"]["notes"])


def test_supplied_profiles_need_their_shape(tmp_path: Path) -> None:
    write_scores(tmp_path)
    table = tmp_path / "p.csv"
    pd.DataFrame({"model": ["small", "small"], "rate_rps": [1, 2],
                  "ttft_mean_ms": [10, 12]}).to_csv(table, index=False)
    code, _, stderr = plan("--spec", str(write_spec(tmp_path)), "--out", str(tmp_path / "o"),
                           "--profiles", str(table))
    assert code == 1
    assert "need columns ['tp', 'mps_share']" in " ".join(stderr.split())


def write_wide(tmp: Path, *, pred: bool = False, prompt_text: bool = True) -> Path:
    """A wide score file with prompt text and per-model output lengths, no input_tokens."""
    n = 120
    frame = pd.DataFrame({"prompt_id": [f"p{i}" for i in range(n)],
                          "small": [float(i % 2) for i in range(n)],
                          "large": [float(i % 3 != 0) for i in range(n)]})
    if prompt_text:
        frame["prompt"] = ["x" * (400 + 4 * i) for i in range(n)]  # 100..219 tokens
    for m in ("small", "large"):
        frame[f"output_tokens:{m}"] = 90 if m == "small" else 140
    if pred:
        frame["pred:small"] = 0.45
        frame["pred:large"] = 0.6
    frame.to_csv(tmp / "scores.csv", index=False)
    return tmp / "scores.csv"


@pytest.mark.usefixtures("profile_cache")
def test_token_lengths_come_from_the_file(tmp_path: Path) -> None:
    """Regression: output_tokens:<model> + prompt text and no input_tokens was planned with
    512/256 tokens and a note that the file 'has no token lengths'."""
    write_wide(tmp_path)
    code, stdout, stderr = plan("--spec", str(write_spec(tmp_path)), "--out",
                                str(tmp_path / "o"), "--json", "--executor", "serial")
    assert code == 0, stderr
    notes = " ".join(json.loads(stdout)["provenance"]["notes"])
    assert "no token lengths" not in notes
    assert "input from prompt text, characters / 4" in notes
    assert "output per model from the file" in notes


@pytest.mark.usefixtures("profile_cache")
def test_predictions_beside_labels_report_truth(tmp_path: Path) -> None:
    """pred:<model> columns: the routing is solved on predictions and scored on the labels."""
    write_wide(tmp_path, pred=True)
    code, stdout, stderr = plan("--spec", str(write_spec(tmp_path)), "--out",
                                str(tmp_path / "o"), "--json", "--executor", "serial")
    assert code == 0, stderr
    q = json.loads(stdout)["quality"]
    assert q["score_source"] == "predicted"
    assert q["truth"] is not None and q["truth"] != q["predicted"]


@pytest.mark.usefixtures("profile_cache")
def test_num_prompts_samples_a_file_workload(tmp_path: Path) -> None:
    write_wide(tmp_path)
    spec = write_spec(tmp_path, workload="{path: scores.csv, num_prompts: 50, seed: 3}")
    code, stdout, stderr = plan("--spec", str(spec), "--out", str(tmp_path / "o"), "--json",
                                "--executor", "serial")
    assert code == 0, stderr
    assert json.loads(stdout)["inputs"]["num_prompts"] == 50


@pytest.mark.parametrize("args", [["--workers", "0"], ["--rate-rps", "inf"],
                                  ["--slo-ms", "nan"], ["--rate-rps", "-3"],
                                  ["--ray-address", "auto"], ["--search", "greedy"]])
def test_bad_numbers_rejected_up_front(tmp_path: Path, args: list[str]) -> None:
    write_wide(tmp_path)
    code, _, stderr = plan("--spec", str(write_spec(tmp_path)), "--out", str(tmp_path / "o"),
                           *args)
    assert code == 1, stderr
    assert args[0] in stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.usefixtures("profile_cache")
def test_exhaustive_search_on_request_with_its_counts(tmp_path: Path) -> None:
    write_scores(tmp_path)
    out = tmp_path / "o"
    code, stdout, stderr = plan("--spec", str(write_spec(tmp_path)), "--out", str(out),
                                "--executor", "serial", "--search", "exhaustive")
    assert code == 0, stderr
    s = json.loads((out / "plan.json").read_text())["search"]
    assert s["method"] == "exhaustive" and s["retained"] >= s["evaluated"] > 0
    assert s["upper_bound"] >= json.loads((out / "plan.json").read_text())["quality"][
        "predicted"] - 1e-9
    assert "search: " in stdout and "upper bound" in " ".join(stdout.split())


def test_out_that_is_a_file_fails_fast(tmp_path: Path) -> None:
    write_wide(tmp_path)
    target = tmp_path / "taken"
    target.write_text("mine")
    code, _, stderr = plan("--spec", str(write_spec(tmp_path)), "--out", str(target))
    assert code == 1
    assert "is a file" in stderr and str(target) in " ".join(stderr.split())
    assert target.read_text() == "mine"


@pytest.mark.usefixtures("profile_cache")
def test_reused_out_keeps_no_stale_files(tmp_path: Path) -> None:
    write_scores(tmp_path)
    out = tmp_path / "o"
    code, _, stderr = plan("--spec", str(write_spec(tmp_path)), "--out", str(out),
                           "--executor", "serial")
    assert code == 0, stderr
    assert (out / "latency_curves.png").exists()
    code, _, _ = plan("--spec", str(write_spec(tmp_path, slo="{target_ms: 0.5}")), "--out",
                      str(out), "--executor", "serial")
    assert code == 2
    assert not (out / "latency_curves.png").exists()  # belonged to the feasible run
    assert json.loads((out / "plan.json").read_text())["feasible"] is False


@pytest.mark.usefixtures("profile_cache")
def test_route_plan_reroutes_without_searching(tmp_path: Path) -> None:
    write_scores(tmp_path)
    out = tmp_path / "o"
    code, stdout, stderr = plan("--spec", str(write_spec(tmp_path)), "--out", str(out), "--json",
                                "--executor", "serial")
    assert code == 0, stderr
    doc = json.loads(stdout)
    res = runner.invoke(app, ["route", "--plan", str(out), "--json"])
    assert res.exit_code == 0, res.stderr
    same = json.loads(res.stdout)
    assert same["quality"] == pytest.approx(doc["quality"]["predicted"], abs=1e-6)
    res = runner.invoke(app, ["route", "--plan", str(out / "plan.json"), "--rate-rps", "3",
                              "--json"])
    assert res.exit_code == 0, res.stderr
    slower = json.loads(res.stdout)
    assert slower["rate_rps"] == 3 and slower["quality"] >= same["quality"] - 1e-9
    res = runner.invoke(app, ["route", "--plan", str(out), "--slo-ms", "0.5"])
    assert res.exit_code == 2


def test_load_plan_names_bad_files(tmp_path: Path) -> None:
    from routerwise.errors import InputError
    from routerwise.spec.plan import PLAN_VERSION, load_plan

    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"plan_version": PLAN_VERSION + 1, "feasible": True}))
    with pytest.raises(InputError, match=r"plan\.json: plan_version"):
        load_plan(path)
    path.write_text(json.dumps({"plan_version": PLAN_VERSION, "feasible": True}))
    with pytest.raises(InputError, match=r"plan\.json: scenario: Field required"):
        load_plan(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="not a valid JSON plan"):
        load_plan(path)


@pytest.mark.usefixtures("profile_cache")
def test_plan_with_a_predictor_routes_on_predictions(tmp_path: Path) -> None:
    """--predictor: the routing is solved on out-of-fold predictions and scored on labels;
    route --plan re-uses the same predictor."""
    rng = np.random.default_rng(0)
    n = 160
    topic = rng.integers(0, 2, n)
    frame = pd.DataFrame({
        "prompt_id": [f"p{i}" for i in range(n)],
        "prompt": [("math sum integral " if t else "poem rhyme verse ") + f"item {i}"
                   for i, t in enumerate(topic)],
        "small": (rng.random(n) < np.where(topic == 1, 0.2, 0.8)).astype(float),
        "large": (rng.random(n) < np.where(topic == 1, 0.9, 0.5)).astype(float),
    })
    for m in ("small", "large"):
        frame[f"output_tokens:{m}"] = 100
    data = tmp_path / "scores.csv"
    frame.to_csv(data, index=False)
    res = runner.invoke(app, ["train-predictor", "--workload", str(data), "--out",
                              str(tmp_path / "pred"), "--kind", "tfidf", "--folds", "4"])
    assert res.exit_code == 0, res.stderr
    out = tmp_path / "o"
    code, stdout, stderr = plan("--spec", str(write_spec(tmp_path)), "--out", str(out), "--json",
                                "--executor", "serial", "--predictor", str(tmp_path / "pred"))
    assert code == 0, stderr
    doc = json.loads(stdout)
    q = doc["quality"]
    assert q["score_source"] == "predicted" and q["truth"] is not None
    assert doc["inputs"]["predictor"] == str((tmp_path / "pred").resolve())
    assert any("out-of-fold" in n for n in doc["provenance"]["notes"])
    for b in doc["baselines"].values():  # every quality is comparable: on truth as well
        assert (b["quality_truth"] is None) == (not b["feasible"])
    res = runner.invoke(app, ["route", "--plan", str(out), "--json"])
    assert res.exit_code == 0, res.stderr
    again = json.loads(res.stdout)
    assert again["quality"] == pytest.approx(q["predicted"], abs=1e-6)
    assert again["quality_truth"] == pytest.approx(q["truth"], abs=1e-6)


def test_predictor_for_other_models_is_rejected(tmp_path: Path) -> None:
    n = 40
    frame = pd.DataFrame({"prompt_id": [f"q{i}" for i in range(n)],
                          "prompt": [("solve this sum " if i % 2 else "write a poem ") + str(i)
                                     for i in range(n)],
                          "other": [float(i % 2) for i in range(n)],
                          "small": [float(1 - i % 2) for i in range(n)]})
    frame.to_csv(tmp_path / "train.csv", index=False)
    res = runner.invoke(app, ["train-predictor", "--workload", str(tmp_path / "train.csv"),
                              "--out", str(tmp_path / "pred"), "--kind", "knn", "--folds", "2"])
    assert res.exit_code == 0, res.stderr
    write_scores(tmp_path)
    code, _, stderr = plan("--spec", str(write_spec(tmp_path)), "--out", str(tmp_path / "o"),
                           "--predictor", str(tmp_path / "pred"))
    assert code == 1
    assert "trained on models ['other', 'small']" in " ".join(stderr.split())


def test_the_length_fixed_point_can_be_turned_off(tmp_path: Path) -> None:
    """Short prompts score best on ``large``, long ones on ``small``: by default each curve is
    re-estimated with the prompts routed to it; ``--no-length-fixed-point`` keeps the search's
    curves (no rounds, the workload's lengths)."""
    write_scores(tmp_path)
    frame = pd.read_csv(tmp_path / "scores.csv")
    frame["input_tokens"] = [40 + 8 * i for i in range(len(frame))]  # p0 short … p199 long
    frame.to_csv(tmp_path / "scores.csv", index=False)
    spec = str(write_spec(tmp_path))
    docs = {}
    for flag in ((), ("--no-length-fixed-point",)):
        out = tmp_path / f"o{len(flag)}"
        code, _, stderr = plan("--spec", spec, "--out", str(out), "--executor", "serial", *flag)
        assert code == 0, stderr
        docs[bool(flag)] = json.loads((out / "plan.json").read_text())["predicted"]
    for off, doc in docs.items():
        deployed = [v["lengths"] for v in doc["per_model"].values() if v["deployment"]]
        assert deployed
        assert (doc["length_rounds"] == 0) == off
        assert all((d["basis"] == "workload") == off for d in deployed)
