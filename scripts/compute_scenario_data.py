"""Recompute the cited scenario data files from ../shared/data and published HELM Lite figures.

Stage: offline data preparation (never run by the package at run time).
Inputs:
  * ``../shared/data/llmrouter`` — LLMRouter's 6,108 prompts x 9 open models (MIT): per-task
    accuracy of each model, per-task prompt lengths (characters / 4 ≈ tokens), task mix.
  * ``../shared/data/alpaca_eval/results/<model>/model_outputs.json`` (Apache-2.0): per-model
    answer lengths (characters / 4 ≈ tokens) → lognormal median, mean and log-space sigma.
  * HELM Lite figures (constants below, cited): per-model per-scenario accuracy.
Outputs: ``src/routerwise/scenarios/data/{helm_lite_2024.yaml,llmrouter_open_models.yaml}``.
Units: accuracies are fractions in [0, 1]; lengths are tokens (approximated as characters / 4).

Usage: ``.venv/bin/python scripts/compute_scenario_data.py [--shared ../shared/data]``.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "src" / "routerwise" / "scenarios" / "data"
CHARS_PER_TOKEN = 4.0

HELM_URL = "https://crfm.stanford.edu/helm/lite/latest/"
HELM_SNAPSHOT = (
    "HELM Lite leaderboard (Stanford CRFM), snapshot of 2024-08-29 as tabulated in "
    "IBM/benchbench src/bat/assets/benchmarks/helm_lite_240829.csv "
    "(commit 98439bab48b6faf45ad2c70c4038966a5946ff8d)"
)
#: HELM Lite columns used, in the order of HELM_FIGURES' tuples. NaturalQuestions (closed-book)
#: is the F1 score, the others exact-match accuracy. NarrativeQA, NaturalQuestions (open-book),
#: LegalBench, MedQA and WMT 2014 are left out: we have no prompt-length statistics for their
#: long-context prompts (and WMT is BLEU, not an accuracy).
HELM_TASKS = ("natural_qa", "openbook_qa", "mmlu", "math", "gsm8k")
HELM_FIGURES: dict[str, tuple[float, float, float, float, float]] = {
    # HELM Lite model name: NaturalQuestions(closed), OpenbookQA, MMLU, MATH (CoT), GSM8K
    "Mistral v0.1 (7B)": (0.367, 0.776, 0.584, 0.297, 0.377),
    "Mistral Instruct v0.3 (7B)": (0.253, 0.790, 0.510, 0.289, 0.538),
    "Llama 2 (13B)": (0.371, 0.634, 0.505, 0.102, 0.266),
    "Yi (34B)": (0.443, 0.920, 0.650, 0.375, 0.648),
    "Llama 2 (70B)": (0.460, 0.838, 0.580, 0.323, 0.567),
    "Llama 3.1 Instruct Turbo (8B)": (0.209, 0.740, 0.500, 0.703, 0.798),
    "Llama 3.1 Instruct Turbo (70B)": (0.452, 0.938, 0.709, 0.783, 0.938),
    "Qwen1.5 (7B)": (0.270, 0.806, 0.569, 0.561, 0.600),
    "Qwen1.5 (32B)": (0.353, 0.932, 0.628, 0.733, 0.773),
}

#: paper scenarios: catalog id -> (HELM Lite model, AlpacaEval generator for lengths, note)
HELM_MODELS: dict[str, tuple[str, str, str]] = {
    "mistral-7b": (
        "Mistral v0.1 (7B)",
        "Mistral-7B-Instruct-v0.2",
        "HELM Lite row 'Mistral v0.1 (7B)'. Output lengths from Mistral-7B-Instruct-v0.2 "
        "(the chat model AlpacaEval has for this size).",
    ),
    "llama-2-13b": (
        "Llama 2 (13B)",
        "wizardlm-13b-v1.2",
        "Stands for WizardLM-13B-V1.2 (the paper's 13B model), a Llama-2-13B fine-tune that HELM "
        "Lite does not evaluate: accuracy is HELM Lite's 'Llama 2 (13B)' (same architecture and "
        "weights before fine-tuning; a proxy). Output lengths are WizardLM-13B-V1.2's own.",
    ),
    "yi-34b": (
        "Yi (34B)",
        "Yi-34B-Chat",
        "HELM Lite row 'Yi (34B)'. Output lengths from Yi-34B-Chat.",
    ),
    "llama-2-70b": (
        "Llama 2 (70B)",
        "llama-2-70b-chat-hf",
        "HELM Lite row 'Llama 2 (70B)'. Output lengths from Llama-2-70b-chat.",
    ),
    "llama-3.1-8b": (
        "Llama 3.1 Instruct Turbo (8B)",
        "FuseChat-Llama-3.1-8B-Instruct",
        "HELM Lite row 'Llama 3.1 Instruct Turbo (8B)'. Output lengths from FuseChat-Llama-3.1-8B"
        "-Instruct (a fine-tune of Llama-3.1-8B-Instruct; the closest model AlpacaEval has).",
    ),
    "llama-3.1-70b": (
        "Llama 3.1 Instruct Turbo (70B)",
        "FuseChat-Llama-3.1-8B-Instruct",
        "HELM Lite row 'Llama 3.1 Instruct Turbo (70B)'. Output lengths: proxy "
        "FuseChat-Llama-3.1-8B-Instruct (same family and chat template; AlpacaEval here has no "
        "Llama-3.1-70B outputs).",
    ),
}

#: LLMRouter model -> catalog id (measured directly on LLMRouter's prompts).
LLMROUTER_MEASURED = {
    "llama-3.1-8b": "llama-3.1-8b-instruct",
    "qwen2.5-7b": "qwen2.5-7b-instruct",
    "mistral-7b": "mistral-7b-instruct-v0.3",
}
MEASURED_NOTES = {
    "qwen2.5-7b": "LLMRouter's MMLU score for qwen2.5-7b-instruct (0.16) is below 4-way chance, "
    "most likely an answer-format artifact of LLMRouter's grader; kept as measured (and "
    "inherited by qwen2.5-32b), because a router sees the same artifact in this data.",
}
#: Models LLMRouter lacks: catalog id -> (anchor LLMRouter model, HELM anchor, HELM target, why).
LLMROUTER_TRANSFERRED = {
    "llama-3.1-70b": (
        "llama-3.1-8b-instruct",
        "Llama 3.1 Instruct Turbo (8B)",
        "Llama 3.1 Instruct Turbo (70B)",
        "LLMRouter has no Llama-3.1-70B. Accuracy = LLMRouter's measured Llama-3.1-8B-Instruct "
        "shifted in logit space by the HELM Lite 70B-minus-8B logit difference of the same "
        "family (per matched task; mean over matched tasks elsewhere). In a Rasch model "
        "logit differences between two models are task-independent, which is what this uses.",
    ),
    "qwen2.5-32b": (
        "qwen2.5-7b-instruct",
        "Qwen1.5 (7B)",
        "Qwen1.5 (32B)",
        "Neither LLMRouter nor the HELM Lite snapshot has Qwen2.5-32B. Accuracy = LLMRouter's "
        "measured Qwen2.5-7B-Instruct shifted in logit space by HELM Lite's 32B-minus-7B logit "
        "difference of the previous Qwen generation (Qwen1.5 32B vs 7B): the same family's "
        "gain from 7B to 32B, a proxy for Qwen2.5's.",
    ),
}
#: LLMRouter task -> HELM Lite task it matches (others get the mean logit shift).
LLMROUTER_TO_HELM = {t: t for t in HELM_TASKS}
LLMROUTER_LENGTH_PROXY = {
    "llama-3.1-8b": ("FuseChat-Llama-3.1-8B-Instruct", "fine-tune of Llama-3.1-8B-Instruct"),
    "llama-3.1-70b": ("FuseChat-Llama-3.1-8B-Instruct", "same family; no 70B outputs available"),
    "qwen2.5-7b": ("FuseChat-Qwen-2.5-7B-Instruct", "fine-tune of Qwen2.5-7B-Instruct"),
    "qwen2.5-32b": ("FuseChat-Qwen-2.5-7B-Instruct", "same family; no 32B outputs available"),
    "mistral-7b": ("Mistral-7B-Instruct-v0.2", "earlier instruct release of Mistral-7B"),
}


def _commit(folder: Path) -> str:
    return (folder / "COMMIT").read_text(encoding="utf-8").strip()


def _license(folder: Path) -> str:
    first = (folder / "LICENSE").read_text(encoding="utf-8").strip().splitlines()[0]
    return "MIT" if "MIT" in first else "Apache-2.0" if "Apache" in first else first.strip()


def _length_stats(chars: list[int], source: str) -> dict[str, Any]:
    tokens = np.maximum(np.asarray(chars, dtype=float) / CHARS_PER_TOKEN, 1.0)
    logs = np.log(tokens)
    return {
        "median_tokens": round(float(np.median(tokens)), 1),
        "mean_tokens": round(float(tokens.mean()), 1),
        "sigma": round(float(logs.std(ddof=1)), 3),
        "n": len(chars),
        "source": source,
    }


def _llmrouter_rows(root: Path) -> list[tuple[str, str, dict[str, float]]]:
    """(task, question, scores) for every LLMRouter prompt."""
    tasks: dict[str, str] = {}
    for split in ("train", "test"):
        path = root / "data" / "example_data" / "query_data" / f"default_query_{split}.jsonl"
        for line in path.read_text(encoding="utf-8").split("\n"):  # not splitlines: \u2028 in text
            if line.strip():
                rec = json.loads(line)
                tasks.setdefault(rec["query"], rec["task_name"])
    rows = []
    for split in ("train", "test"):
        path = root / "data" / "dcrouter_preprocessed" / f"{split}.json"
        for rec in json.loads(path.read_text(encoding="utf-8")):
            scores = rec["scores"]
            scores = ast.literal_eval(scores) if isinstance(scores, str) else scores
            rows.append((tasks[rec["question"]], rec["question"], dict(scores)))
    return rows


Rows = list[tuple[str, str, dict[str, float]]]


def _per_task_accuracy(rows: Rows) -> dict[str, dict[str, float]]:
    sums: dict[str, dict[str, list[float]]] = {}
    for task, _, scores in rows:
        for model, value in scores.items():
            sums.setdefault(model, {}).setdefault(task, []).append(float(value))
    return {m: {t: float(np.mean(v)) for t, v in sorted(ts.items())} for m, ts in sums.items()}


def _task_inputs(rows: list[tuple[str, str, dict[str, float]]], src: str) -> dict[str, Any]:
    by_task: dict[str, list[int]] = {}
    for task, question, _ in rows:
        by_task.setdefault(task, []).append(len(question))
    total = sum(len(v) for v in by_task.values())
    return {
        t: {"weight": round(len(v) / total, 4), "input_tokens": _length_stats(v, src)}
        for t, v in sorted(by_task.items())
    }


def _output_stats(alpaca: Path, generator: str) -> dict[str, Any]:
    path = alpaca / "results" / generator / "model_outputs.json"
    outputs = json.loads(path.read_text(encoding="utf-8"))
    src = f"AlpacaEval results/{generator}/model_outputs.json (chars/4)"
    return _length_stats([len(o["output"]) for o in outputs], src)


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _helm(model: str) -> dict[str, float]:
    return dict(zip(HELM_TASKS, HELM_FIGURES[model], strict=True))


def _transfer(anchor_acc: dict[str, float], helm_from: str, helm_to: str) -> dict[str, float]:
    """Shift anchor accuracies by the HELM logit difference (per matched task, else the mean)."""
    src, dst = _helm(helm_from), _helm(helm_to)
    shifts = {t: _logit(dst[t]) - _logit(src[t]) for t in HELM_TASKS}
    mean_shift = float(np.mean(list(shifts.values())))
    out = {}
    for task, acc in anchor_acc.items():
        helm_task = LLMROUTER_TO_HELM.get(task)
        shift = shifts[helm_task] if helm_task else mean_shift
        out[task] = _sigmoid(_logit(acc) + shift)
    return out


def _rounded(acc: dict[str, float]) -> dict[str, float]:
    return {t: round(v, 4) for t, v in acc.items()}


def helm_lite_file(shared: Path, rows: list[tuple[str, str, dict[str, float]]]) -> dict[str, Any]:
    llm, alpaca = shared / "llmrouter", shared / "alpaca_eval"
    tasks = _task_inputs(
        [r for r in rows if r[0] in HELM_TASKS],
        f"LLMRouter prompts (commit {_commit(llm)}, {_license(llm)}), chars/4, 0-shot question",
    )
    for t in tasks.values():
        t["weight"] = round(1.0 / len(HELM_TASKS), 4)  # HELM Lite weighs scenarios equally
    models = {}
    for model_id, (helm_name, generator, note) in HELM_MODELS.items():
        models[model_id] = {
            "accuracy": _helm(helm_name),
            "accuracy_source": f"HELM Lite: {helm_name!r}",
            "output_tokens": _output_stats(alpaca, generator),
            "notes": note,
        }
    return {
        "name": "helm-lite-2024",
        "description": (
            "Per-model accuracy on five HELM Lite scenarios (NaturalQuestions closed-book F1, "
            "OpenbookQA, MMLU, MATH, GSM8K), equal task mix as in HELM Lite's mean."
        ),
        "difficulty_sd": 1.5,
        "sources": [
            f"{HELM_SNAPSHOT}; leaderboard {HELM_URL}",
            f"Input lengths: LLMRouter (github.com/ulab-uiuc/LLMRouter) commit {_commit(llm)}, "
            f"{_license(llm)}: the same benchmarks' questions, characters / 4",
            f"Output lengths: AlpacaEval (github.com/tatsu-lab/alpaca_eval) commit "
            f"{_commit(alpaca)}, {_license(alpaca)}: 805 answers per model, characters / 4",
        ],
        "tasks": tasks,
        "models": models,
    }


def llmrouter_file(shared: Path, rows: list[tuple[str, str, dict[str, float]]]) -> dict[str, Any]:
    llm, alpaca = shared / "llmrouter", shared / "alpaca_eval"
    src = f"LLMRouter commit {_commit(llm)}, {_license(llm)}"
    acc = _per_task_accuracy(rows)
    models: dict[str, Any] = {}
    for model_id, name in LLMROUTER_MEASURED.items():
        models[model_id] = {
            "accuracy": _rounded(acc[name]),
            "accuracy_source": f"measured: LLMRouter {name!r} mean score per task ({src})",
        }
        if model_id in MEASURED_NOTES:
            models[model_id]["notes"] = MEASURED_NOTES[model_id]
    for model_id, (anchor, helm_from, helm_to, why) in LLMROUTER_TRANSFERRED.items():
        models[model_id] = {
            "accuracy": _rounded(_transfer(acc[anchor], helm_from, helm_to)),
            "accuracy_source": f"proxy: LLMRouter {anchor!r} + HELM Lite shift "
            f"{helm_from!r} -> {helm_to!r}",
            "notes": why,
        }
    for model_id, (generator, why) in LLMROUTER_LENGTH_PROXY.items():
        models[model_id]["output_tokens"] = _output_stats(alpaca, generator)
        models[model_id]["output_tokens"]["source"] += f" — {why}"
    return {
        "name": "llmrouter-open-models",
        "description": (
            "Per-model accuracy on LLMRouter's 14 tasks (6,108 real prompts); task mix and "
            "input lengths from the same prompts."
        ),
        "difficulty_sd": 1.5,
        "sources": [
            f"LLMRouter (github.com/ulab-uiuc/LLMRouter) data/dcrouter_preprocessed and "
            f"data/example_data/query_data, {src}: per-task mean score, task counts, "
            "prompt characters / 4",
            f"{HELM_SNAPSHOT}; leaderboard {HELM_URL} (logit shifts for models LLMRouter lacks)",
            f"Output lengths: AlpacaEval (github.com/tatsu-lab/alpaca_eval) commit "
            f"{_commit(alpaca)}, {_license(alpaca)}: 805 answers per model, characters / 4",
        ],
        "tasks": _task_inputs(rows, f"LLMRouter prompts ({src}), chars/4"),
        "models": models,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    rows = _llmrouter_rows(args.shared / "llmrouter")
    header = "# Generated by scripts/compute_scenario_data.py — edit the script, not this file.\n"
    for filename, content in (
        ("helm_lite_2024.yaml", helm_lite_file(args.shared, rows)),
        ("llmrouter_open_models.yaml", llmrouter_file(args.shared, rows)),
    ):
        text = header + yaml.safe_dump(content, sort_keys=False, width=100, allow_unicode=True)
        (OUT_DIR / filename).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
