"""A small, real plan for gateway tests and the overhead benchmark, built in a few seconds.

Two catalog models on one H100 (names = catalog ids, so an emulator serves each under the
plan's name). Prompts come from two topics; a TF-IDF predictor is trained on their labels and
the plan is solved **on that predictor's own predictions** of the same prompts, so a gateway
that loads the predictor computes exactly the scores the plan was solved on: the share of
requests each backend receives should then equal the plan's fractions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SMALL, LARGE = "llama-3.1-8b", "qwen2.5-7b"
MODELS = (SMALL, LARGE)
NUM_PROMPTS = 400
RATE_RPS = 40.0
SLO_MS = 35.0

_TOPICS = {
    "math": ["integral", "derivative", "prove", "theorem", "matrix", "eigenvalue",
             "equation", "solve", "lemma", "polynomial", "series", "limit"],
    "chat": ["hello", "thanks", "weather", "movie", "recipe", "dinner", "weekend", "friend",
             "music", "travel", "hobby", "coffee"],
}

SPEC = """\
name: serve-test
cluster: {{gpu_type: H100-SXM, num_gpus: 1, gpus_per_node: 8}}
models:
  - {{name: {small}, catalog_id: {small}}}
  - {{name: {large}, catalog_id: {large}}}
workload: {{path: {scores}}}
rate_rps: {rate}
slo: {{metric: ttft, stat: mean, target_ms: {slo}}}
"""


@dataclass(frozen=True, slots=True)
class ServeFixture:
    plan_dir: Path
    predictor_dir: Path
    prompts: tuple[str, ...]
    tasks: tuple[str, ...]
    scores: np.ndarray  # (N, 2): the predictor's scores, which the plan was solved on


def _labels_frame(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for i in range(NUM_PROMPTS):
        topic = "math" if rng.random() < 0.5 else "chat"
        words = rng.choice(_TOPICS[topic], size=int(rng.integers(6, 12)))
        hard = float(rng.random())
        small = (0.75 - 0.5 * hard if topic == "math" else 0.85) + rng.normal(0, 0.05)
        large = (0.9 - 0.1 * hard if topic == "math" else 0.8) + rng.normal(0, 0.05)
        level = " ".join(["hard"] * int(hard * 4))
        rows.append({"prompt_id": f"p{i}", "prompt": f"{' '.join(words)} {level} #{i}",
                     "task": topic, SMALL: float(np.clip(small, 0, 1)),
                     LARGE: float(np.clip(large, 0, 1))})
    frame = pd.DataFrame(rows)
    frame["input_tokens"] = 200
    for m in MODELS:
        frame[f"output_tokens:{m}"] = 64
    return frame


def build_serve_fixture(root: Path) -> ServeFixture:
    """Workload → predictor → predicted workload → plan, all under ``root``."""
    from typer.testing import CliRunner

    from routerwise.cli.app import app
    from routerwise.predict.artifact import load_predictor

    root.mkdir(parents=True, exist_ok=True)
    frame = _labels_frame(np.random.default_rng(7))
    frame.to_csv(root / "labels.csv", index=False)
    runner = CliRunner()
    pred_dir = root / "predictor"
    res = runner.invoke(app, ["train-predictor", "--workload", str(root / "labels.csv"),
                              "--out", str(pred_dir), "--kind", "tfidf", "--folds", "2"])
    assert res.exit_code == 0, res.output
    predictor = load_predictor(pred_dir)
    cols = [predictor.models.index(m) for m in MODELS]
    scores = predictor.predict(list(frame["prompt"]), None)[:, cols]  # text only, as a client sends
    predicted = frame.copy()
    predicted[list(MODELS)] = scores
    predicted.to_csv(root / "scores.csv", index=False)
    (root / "spec.yaml").write_text(SPEC.format(small=SMALL, large=LARGE,
                                                scores=root / "scores.csv", rate=RATE_RPS,
                                                slo=SLO_MS))
    res = runner.invoke(app, ["plan", "--spec", str(root / "spec.yaml"), "--out",
                              str(root / "plan"), "--executor", "serial", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["feasible"]
    return ServeFixture(root / "plan", pred_dir, tuple(frame["prompt"]), tuple(frame["task"]),
                        np.asarray(scores))
