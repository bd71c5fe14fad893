"""Real per-prompt data for the predictor benchmarks, read from ``../shared/data`` (never copied).

* LLMRouter: ``train.json`` → ``test.json`` (9 models), tasks from ``default_query_*.jsonl``.
* RouteLLM: MMLU (57 subject CSVs) and GSM8K with correctness of Mixtral-8x7B-Instruct and
  GPT-4-1106 (booleans); the prompts listed in each ``contaminated_prompts.jsonl`` are dropped;
  the task is the subject (or ``gsm8k``); a seeded 80/20 split gives train and test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from routerwise.spec.workload import Workload
from routerwise.spec.workload_io import load_workload

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LLMROUTER = DATA / "llmrouter" / "data"
ROUTELLM = DATA / "routellm" / "evals"
ROUTELLM_MODELS = ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview")


def llmrouter(split: str) -> Workload:
    return load_workload(LLMROUTER / "dcrouter_preprocessed" / f"{split}.json", "llmrouter",
                         task_file=LLMROUTER / "example_data" / "query_data" /
                         f"default_query_{split}.jsonl")


def _contaminated(folder: Path) -> set[str]:
    path = folder / "contaminated_prompts.jsonl"
    if not path.is_file():
        return set()
    return {json.loads(line)["eval_prompt"] for line in path.read_text().splitlines() if line}


def _routellm_frames() -> pd.DataFrame:
    frames = []
    for csv in sorted((ROUTELLM / "mmlu" / "responses").glob("mmlu_*.csv")):
        frame = pd.read_csv(csv, usecols=["prompt", *ROUTELLM_MODELS])
        frames.append(frame.assign(task=csv.stem.removeprefix("mmlu_")))
    mmlu = pd.concat(frames)
    mmlu = mmlu[~mmlu["prompt"].isin(_contaminated(ROUTELLM / "mmlu"))]
    gsm = pd.read_csv(ROUTELLM / "gsm8k" / "gsm8k_responses.csv",
                      usecols=["prompt", *ROUTELLM_MODELS]).assign(task="gsm8k")
    gsm = gsm[~gsm["prompt"].isin(_contaminated(ROUTELLM / "gsm8k"))]
    return pd.concat([mmlu, gsm], ignore_index=True).dropna()


def _workload(frame: pd.DataFrame, name: str) -> Workload:
    labels = frame[list(ROUTELLM_MODELS)].astype(float).to_numpy()
    return Workload(prompt_ids=tuple(f"{name}-{i}" for i in range(len(frame))),
                    models=ROUTELLM_MODELS, scores=labels, truth=labels,
                    tasks=tuple(frame["task"].astype(str)),
                    prompts=tuple(frame["prompt"].astype(str)), source=f"routellm/{name}")


def routellm(seed: int = 0, test_share: float = 0.2) -> tuple[Workload, Workload]:
    """(train, test) of RouteLLM's MMLU + GSM8K, a seeded split."""
    frame = _routellm_frames()
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(len(frame) * (1 - test_share))
    return (_workload(frame.iloc[np.sort(order[:cut])], "train"),
            _workload(frame.iloc[np.sort(order[cut:])], "test"))
