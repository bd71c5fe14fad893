"""Regenerate the small ``route`` example shipped in ``examples/`` (deterministic).

* ``scores.csv`` — 2,000 prompts of the built-in ``h100-mixed`` derived workload (predicted
  scores per model, ``truth:<model>`` outcomes, token lengths); provenance ``derived``.
* ``profiles.csv`` — GPU-free estimated mean-TTFT profiles (aiconfigurator kernel data +
  engine simulation) of each model on one fixed H100 shape; provenance ``estimated``.

Run: ``.venv/bin/python examples/make_examples.py``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from routerwise.profiles.estimator import estimate_profile, lengths_from_workload
from routerwise.scenarios.registry import scenario_workload
from routerwise.spec.catalog import get_gpu, get_model

HERE = Path(__file__).resolve().parent
#: One fixed deployment per model on an 8×H100 node: 8B and 7B on one GPU each, 32B on tp 2,
#: 70B on tp 4 — the "isolated" split.
SHAPES = {"llama-3.1-8b": 1, "qwen2.5-7b": 1, "qwen2.5-32b": 2, "llama-3.1-70b": 4}


def main() -> None:
    workload = scenario_workload("h100-mixed", num_prompts=2000, seed=0)
    frame = pd.DataFrame({"prompt_id": workload.prompt_ids})
    if workload.tasks is not None:
        frame["task"] = workload.tasks
    for k, m in enumerate(workload.models):
        frame[m] = np.round(workload.scores[:, k], 4)
    if workload.truth is not None:
        for k, m in enumerate(workload.models):
            frame[f"truth:{m}"] = workload.truth[:, k]
    if workload.input_tokens is not None:
        frame["input_tokens"] = workload.input_tokens.astype(int)
    frame.to_csv(HERE / "scores.csv", index=False)

    gpu = get_gpu("H100-SXM")
    tables = []
    for model, tp in SHAPES.items():
        lengths = lengths_from_workload(workload, model)
        table = estimate_profile(get_model(model), gpu, tp, 1.0, None, lengths,
                                 num_requests=1500, seed=0, sweep_points=10)
        tables.append(table.to_frame())
    profiles = pd.concat(tables, ignore_index=True)
    num = profiles.select_dtypes("number").columns
    profiles[num] = profiles[num].round(4)
    profiles.to_csv(HERE / "profiles.csv", index=False)


if __name__ == "__main__":
    main()
