"""Synthetic prompts with a known signal for predictor tests (seeded, no files).

Each prompt has a task ("alpha" | "beta") and a kind word ("easy" | "hard") among filler words.
Model "generalist" succeeds with probability 0.8 on easy and 0.3 on hard prompts; model
"specialist" with 0.9 on beta and 0.2 on alpha prompts. So the best routing is known.
"""

from __future__ import annotations

import numpy as np

from routerwise.spec.workload import Workload

MODELS = ("generalist", "specialist")
FILLER = ("the", "a", "question", "about", "river", "number", "city", "answer", "please",
          "explain", "why", "compute", "list", "name")


def true_probability(task: str, kind: str) -> tuple[float, float]:
    return (0.8 if kind == "easy" else 0.3), (0.9 if task == "beta" else 0.2)


def synthetic_workload(n: int, seed: int, *, fractional: bool = False) -> Workload:
    """n prompts; labels drawn from :func:`true_probability` (0/0.5/1 when ``fractional``)."""
    rng = np.random.default_rng(seed)
    tasks = rng.choice(["alpha", "beta"], size=n)
    kinds = rng.choice(["easy", "hard"], size=n)
    texts, labels = [], []
    for i, (task, kind) in enumerate(zip(tasks, kinds, strict=True)):
        words = [*rng.choice(FILLER, size=8), kind, f"{task}word", f"id{i}"]
        texts.append(" ".join(rng.permutation(words)))
        p = np.array(true_probability(str(task), str(kind)))
        draws = (rng.random(2) < p).astype(float)
        if fractional:
            draws = (draws + (rng.random(2) < p)) / 2.0
        labels.append(draws)
    y = np.array(labels)
    return Workload(prompt_ids=tuple(f"p{i}" for i in range(n)), models=MODELS, scores=y,
                    truth=y, tasks=tuple(str(t) for t in tasks), prompts=tuple(texts),
                    source=f"<synthetic seed {seed}>")
