"""Predictor speed: training time on 36,000 prompts × 4 models and one-prompt latency per kind.

Prompts are LLMRouter's (../shared/data; resampled to 36,000 with a random two-word suffix so
no two are identical) with the labels of its first four models, or synthetic text with a
planted signal when the data is absent. Training time is ``fit`` alone (no evaluation); latency
is ``predict`` on one prompt at a time (batch of 1, as the gateway calls it) over 500 unseen
prompts, p50 and p99, with a task hint. The reference in the same run is the time to count the
prompt's words (``str.split``), the least any text predictor must do.
Goal (issue 8): ``tfidf`` and ``task`` well under 1 ms per prompt.

``embedding`` encodes every prompt with a transformer on the CPU; it is trained on
``--embedding-prompts`` (default 2,000) and its time per prompt is scaled to 36,000 (marked "~").

Run: ``.venv/bin/python benchmarks/predictor_speed.py [--kinds tfidf,task,knn,embedding]``
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from predictor_data import DATA, llmrouter
from routerwise.predict.registry import make_predictor

NUM_PROMPTS, NUM_MODELS, LATENCY_PROMPTS = 36_000, 4, 500
WORDS = ("river", "number", "city", "code", "proof", "list", "table", "story", "cell", "graph")


def corpus(rng: np.random.Generator) -> tuple[list[str], list[str], np.ndarray]:
    """(texts, tasks, labels) for NUM_PROMPTS + LATENCY_PROMPTS prompts."""
    n = NUM_PROMPTS + LATENCY_PROMPTS
    if DATA.is_dir():
        base = [llmrouter("train"), llmrouter("test")]
        texts = [p for w in base for p in (w.prompts or ())]
        tasks = [t for w in base for t in (w.tasks or ())]
        models = base[0].models[:NUM_MODELS]
        labels = np.vstack([np.asarray(w.select_models(models).labels) for w in base])
        pick = rng.integers(0, len(texts), size=n)
        suffix = rng.choice(WORDS, size=(n, 2))
        return ([f"{texts[i]} {a} {b}" for i, (a, b) in zip(pick, suffix, strict=True)],
                [tasks[i] for i in pick], labels[pick])
    tasks = [str(t) for t in rng.choice(["qa", "math", "code"], size=n)]
    texts = [" ".join(rng.choice(WORDS, size=30)) + f" {t}" for t in tasks]
    p = np.array([{"qa": 0.3, "math": 0.6, "code": 0.8}[t] for t in tasks])
    return texts, tasks, (rng.random((n, NUM_MODELS)) < p[:, None]).astype(float)


def latency_ms(predictor: object, texts: list[str], tasks: list[str]) -> tuple[float, float]:
    times = []
    for text, task in zip(texts, tasks, strict=True):
        start = time.perf_counter()
        predictor.predict([text], [task])  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def reference_ms(texts: list[str]) -> float:
    start = time.perf_counter()
    for text in texts:
        text.split()
    return (time.perf_counter() - start) / len(texts) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kinds", default="tfidf,task,knn,embedding")
    parser.add_argument("--embedding-prompts", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    texts, tasks, labels = corpus(rng)
    models = tuple(f"model-{k}" for k in range(NUM_MODELS))
    held_t, held_k = texts[NUM_PROMPTS:], tasks[NUM_PROMPTS:]
    print(f"source: {'LLMRouter prompts' if DATA.is_dir() else 'synthetic text'}; "
          f"reference (str.split per prompt): {reference_ms(held_t):.4f} ms")
    print(f"{'kind':10s} {'train prompts':>13s} {'train_s':>9s} {'36k train_s':>11s} "
          f"{'p50_ms':>8s} {'p99_ms':>8s}")
    for kind in [k for k in args.kinds.split(",") if k]:
        if kind == "embedding" and importlib.util.find_spec("sentence_transformers") is None:
            print("embedding: skipped (install the extra: pip install 'routerwise[embed]')")
            continue
        n = min(args.embedding_prompts, NUM_PROMPTS) if kind == "embedding" else NUM_PROMPTS
        start = time.perf_counter()
        predictor = make_predictor(kind).fit(texts[:n], tasks[:n], labels[:n], models, rng)
        train_s = time.perf_counter() - start
        full = f"{train_s:11.1f}" if n == NUM_PROMPTS else f"~{train_s * NUM_PROMPTS / n:10.0f}"
        p50, p99 = latency_ms(predictor, held_t, held_k)
        print(f"{kind:10s} {n:13d} {train_s:9.1f} {full} {p50:8.3f} {p99:8.3f}", flush=True)


if __name__ == "__main__":
    main()
