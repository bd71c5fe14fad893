"""On LLMRouter's real data (../shared/data): the default predictor beats the best single model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routerwise.predict.evaluate import heldout_report, oof_predictions, predict_on
from routerwise.predict.train import train_predictor
from routerwise.spec.workload import Workload
from routerwise.spec.workload_io import load_workload

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "llmrouter" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"LLMRouter data absent: {DATA}")


def llmrouter(split: str) -> Workload:
    return load_workload(DATA / "dcrouter_preprocessed" / f"{split}.json", "llmrouter",
                         task_file=DATA / "example_data" / "query_data" /
                         f"default_query_{split}.jsonl")


def test_default_predictor_on_a_train_subset_beats_the_best_single_model() -> None:
    train = llmrouter("train").sample(1000, np.random.default_rng(0))
    run = train_predictor(train, "tfidf", seed=0, eval_workload=llmrouter("test"))
    routing = run.report["routing"]
    assert run.report["num_prompts"] == 500
    # a 1,000-prompt subset: it must beat the best single model (measured +0.004 to +0.014)
    assert routing["predictor"] > routing["best_single"]
    assert routing["oracle"] > routing["predictor"]


def test_out_of_fold_scores_are_calibrated_for_the_chosen_routing() -> None:
    workload = llmrouter("test")
    scores = oof_predictions(workload, "task", folds=5, seed=0)
    report = heldout_report(scores, np.asarray(workload.labels), workload.models)
    assert abs(report["chosen_routing"]["gap"]) < 0.03


@pytest.mark.slow
def test_default_predictor_on_all_of_train() -> None:
    """Measured: 27.5% of the headroom on all 500 test prompts (119 are remembered training
    prompts; 10% on the other 381), estimate 0.645 vs measured 0.612 (issue goals: 25%, 0.02;
    bootstrap standard errors ±8 points and ±0.017). The +0.033 is the test split, not the
    predictor: out of fold within train.json the same pipeline's gap is ~0, and the text-free
    ``task`` kind's is +0.030 on test.json (docs/predictors.md)."""
    train, test = llmrouter("train"), llmrouter("test")
    run = train_predictor(train, "tfidf", seed=0, eval_workload=test)
    assert run.report["routing"]["captured_headroom"] > 0.2
    assert abs(run.report["chosen_routing"]["gap"]) < 0.05
    seen = set(train.prompts or ())
    unseen = np.array([p not in seen for p in test.prompts or ()])
    scores = predict_on(run.predictor, test.select_models(train.models))
    labels = np.asarray(test.select_models(train.models).labels)
    sub = heldout_report(scores[unseen], labels[unseen], train.models)
    assert sub["routing"]["predictor"] > sub["routing"]["best_single"]
