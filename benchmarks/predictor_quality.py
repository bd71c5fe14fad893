"""Held-out quality of each predictor kind on real data (LLMRouter 9 models, RouteLLM 2 models).

For each data set and kind: train on the training split, predict the test split, and print
routing quality without a latency constraint — best single model, random, the predictor's
argmax, the oracle, the captured headroom (predictor − best) / (oracle − best) — and the
predictor's own estimate of its routing against the measured quality (calibration). LLMRouter
rows also show the test prompts that do not appear verbatim in train.json ("unseen", 381) and
those that do ("duplicates", 119, which the ``tfidf`` kind's outcome memory recalls), the same
predictor with its memory off ("no memory"), and prediction without task hints. ``±`` columns
are bootstrap standard errors over the held-out prompts (paired: best single, oracle and
predictor resampled together), ``gap 95% CI`` the bootstrap percentile interval of the
estimate-minus-measured gap: 500 prompts measure the captured headroom to about ±8 points and
the gap to about ±0.02.
Goal (issue 8): ≥ 25% of the headroom on LLMRouter; estimate within 0.02 of measured.

Run: ``.venv/bin/python benchmarks/predictor_quality.py [--kinds tfidf,knn,task,embedding]
[--routellm-max N]`` (data from ../shared/data; embedding needs the ``embed`` extra).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from predictor_data import DATA, llmrouter, routellm
from routerwise.predict.evaluate import heldout_report, predict_on
from routerwise.predict.train import train_predictor
from routerwise.spec.workload import Workload

HEADER = (f"{'data':10s} {'kind':10s} {'rows':14s} {'n':>5s} {'best':>6s} {'random':>6s} "
          f"{'pred':>6s} {'oracle':>6s} {'capt':>6s} {'±':>5s} {'est':>6s} {'meas':>6s} "
          f"{'gap':>6s} {'±':>5s} {'gap 95% CI':>15s} {'fit_s':>6s}")
BOOTSTRAP = 500


def bootstrap(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float, float, float]:
    """Standard error of the captured headroom; SE and 95% percentile interval of the gap."""
    rng = np.random.default_rng(0)
    rows, chosen = np.arange(len(labels)), np.argmax(scores, axis=1)
    picked, estimate = labels[rows, chosen], scores[rows, chosen]
    capt, gap = [], []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(labels), len(labels))
        best, oracle = labels[i].mean(axis=0).max(), labels[i].max(axis=1).mean()
        capt.append((picked[i].mean() - best) / (oracle - best) if oracle > best else 0.0)
        gap.append(estimate[i].mean() - picked[i].mean())
    low, high = np.percentile(gap, [2.5, 97.5])
    return float(np.std(capt)), float(np.std(gap)), float(low), float(high)


def _row(data: str, kind: str, rows: str, scores: np.ndarray, labels: np.ndarray,
         models: tuple[str, ...], fit_s: float) -> str:
    report = heldout_report(scores, labels, models)
    r, c = report["routing"], report["chosen_routing"]
    se_capt, se_gap, low, high = bootstrap(scores, labels)
    return (f"{data:10s} {kind:10s} {rows:14s} {report['num_prompts']:>5d} "
            f"{r['best_single']:6.3f} {r['random']:6.3f} {r['predictor']:6.3f} "
            f"{r['oracle']:6.3f} {r['captured_headroom']:6.1%} {se_capt:5.1%} "
            f"{c['predicted']:6.3f} {c['measured']:6.3f} {c['gap']:+6.3f} {se_gap:5.3f} "
            f"[{low:+.3f},{high:+.3f}] {fit_s:6.1f}")


def _kinds(requested: str) -> list[str]:
    kinds = [k for k in requested.split(",") if k]
    if "embedding" in kinds and importlib.util.find_spec("sentence_transformers") is None:
        print("embedding: skipped (install the extra: pip install 'routerwise[embed]')")
        kinds.remove("embedding")
    return kinds


def evaluate(data: str, kind: str, train: Workload, test: Workload,
             unseen: np.ndarray | None) -> None:
    start = time.perf_counter()
    run = train_predictor(train, kind, seed=0, eval_workload=test)
    fit_s = time.perf_counter() - start
    held = test.select_models(train.models)
    labels, models = np.asarray(held.labels), train.models
    scores = predict_on(run.predictor, held)
    print(_row(data, kind, "all", scores, labels, models, fit_s), flush=True)
    if unseen is not None:
        for name, rows in (("unseen", unseen), ("duplicates", ~unseen)):
            print(_row(data, kind, name, scores[rows], labels[rows], models, fit_s), flush=True)
    if getattr(run.predictor, "memory_", None) is not None:
        forgetful = copy.copy(run.predictor)
        forgetful.memory_ = None  # type: ignore[attr-defined]
        print(_row(data, kind, "no memory", predict_on(forgetful, held), labels, models,
                   fit_s), flush=True)
    if kind != "task":
        cols = [run.predictor.models.index(m) for m in held.models]
        blind = run.predictor.predict(held.prompts, None)[:, cols]
        print(_row(data, kind, "no task hint", blind, labels, models, fit_s), flush=True)
    for chosen in getattr(run.predictor, "selection_", []):
        print(f"    {kind} out-of-fold on train: {chosen}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kinds", default="tfidf,knn,task,embedding")
    parser.add_argument("--data", default="llmrouter,routellm")
    parser.add_argument("--routellm-max", type=int, default=0,
                        help="use a seeded sample of this many RouteLLM prompts (0: all)")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"no data at {DATA} (see ../shared/data/README.md)")
    kinds = _kinds(args.kinds)
    print(HEADER)
    if "llmrouter" in args.data:
        train, test = llmrouter("train"), llmrouter("test")
        seen = set(train.prompts or ())
        unseen = np.array([p not in seen for p in test.prompts or ()])
        for kind in kinds:
            evaluate("llmrouter", kind, train, test, unseen)
    if "routellm" in args.data:
        train, test = routellm(seed=0)
        if args.routellm_max:
            rng = np.random.default_rng(0)
            train = train.sample(int(args.routellm_max * 0.8), rng)
            test = test.sample(args.routellm_max - train.num_prompts, rng)
        for kind in kinds:
            evaluate("routellm", kind, train, test, None)


if __name__ == "__main__":
    main()
