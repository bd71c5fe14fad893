"""Workload loaders: each real format on small files built here, each error, and the real data."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routerwise.errors import InputError
from routerwise.spec.workload_io import detect_format, load_workload, read_task_file

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LLMROUTER = SHARED / "llmrouter" / "data"


# ------------------------------------------------------------------ wide and long tables


def _wide(tmp_path: Path, suffix: str = ".csv") -> Path:
    frame = pd.DataFrame(
        {"prompt_id": ["a", "b"], "m1": [0.2, 0.9], "m2": [1.0, 0.0], "task": ["x", "y"]}
    )
    path = tmp_path / f"wide{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_wide_table_delegates_to_scores_loader(tmp_path: Path, suffix: str) -> None:
    path = _wide(tmp_path, suffix)
    assert detect_format(path) == ("csv" if suffix == ".csv" else "parquet")
    w = load_workload(path)
    assert w.models == ("m1", "m2")
    assert w.tasks == ("x", "y")
    np.testing.assert_allclose(w.scores, [[0.2, 1.0], [0.9, 0.0]])


def _long_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt_id": ["p1", "p1", "p2", "p2"],
            "model": ["a", "b", "a", "b"],
            "score": [0.5, 1.0, 0.0, 0.25],
            "output_tokens": [10, 20, 30, 40],
            "input_tokens": [7, 7, 9, 9],
            "task": ["t1", "t1", "t2", "t2"],
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path)
    return path


@pytest.mark.parametrize("name", ["long.csv", "long.parquet"])
def test_long_table_pivots(tmp_path: Path, name: str) -> None:
    path = _write(_long_frame(), tmp_path / name)
    assert detect_format(path) == "long"
    w = load_workload(path)
    assert w.prompt_ids == ("p1", "p2") and w.models == ("a", "b")
    np.testing.assert_allclose(w.scores, [[0.5, 1.0], [0.0, 0.25]])
    assert w.truth is not None
    np.testing.assert_allclose(w.truth, w.scores)  # measured: truth = scores
    assert w.output_tokens is not None and w.input_tokens is not None
    np.testing.assert_allclose(w.output_tokens, [[10, 20], [30, 40]])
    np.testing.assert_allclose(w.input_tokens, [7, 9])
    assert w.tasks == ("t1", "t2")
    assert w.provenance == "measured"


def test_long_truth_column_is_used(tmp_path: Path) -> None:
    frame = _long_frame().assign(truth=[1.0, 0.0, 1.0, 1.0])
    w = load_workload(_write(frame, tmp_path / "long.csv"))
    assert w.truth is not None
    np.testing.assert_allclose(w.truth, [[1.0, 0.0], [1.0, 1.0]])


def test_long_missing_cell_is_named(tmp_path: Path) -> None:
    path = _write(_long_frame().drop(index=3), tmp_path / "long.csv")
    with pytest.raises(InputError, match=r"long.csv.*\('p2', 'b'\)"):
        load_workload(path)


def test_long_duplicate_cell_is_named(tmp_path: Path) -> None:
    frame = pd.concat([_long_frame(), _long_frame().iloc[[0]]])
    with pytest.raises(InputError, match=r"prompt_id 'p1', model 'a'.*rows \[2, 6\]"):
        load_workload(_write(frame, tmp_path / "long.csv"))


def test_long_bad_score_names_row(tmp_path: Path) -> None:
    frame = _long_frame()
    frame.loc[2, "score"] = 1.5
    with pytest.raises(InputError, match=r"row 4 \(prompt_id 'p2', model 'a'\), column 'score'"):
        load_workload(_write(frame, tmp_path / "long.csv"))


def test_long_non_numeric_score_names_row(tmp_path: Path) -> None:
    frame = _long_frame().astype({"score": object})
    frame.loc[1, "score"] = "high"
    with pytest.raises(InputError, match=r"row 3, column 'score': 'high'"):
        load_workload(_write(frame, tmp_path / "long.csv"))


def test_long_inconsistent_task_is_named(tmp_path: Path) -> None:
    frame = _long_frame()
    frame.loc[1, "task"] = "other"
    with pytest.raises(InputError, match=r"'task' differs .* prompt_id 'p1'"):
        load_workload(_write(frame, tmp_path / "long.csv"))


def test_long_format_forced_on_wide_file_names_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"lacks column\(s\) \['model', 'score'\]"):
        load_workload(_wide(tmp_path), "long")


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    odd = tmp_path / "w.txt"
    odd.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match=r"w.txt: cannot tell the workload format"):
        load_workload(odd)
    with pytest.raises(InputError, match="does not exist"):
        load_workload(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="task_file is only used with LLMRouter"):
        load_workload(_wide(tmp_path), "csv", task_file=tmp_path / "t.jsonl")


# ------------------------------------------------------------------ RouterBench pickle


def _routerbench_frame() -> pd.DataFrame:
    """A 3-prompt, 2-model frame laid out as routerbench_0shot.pkl is."""
    return pd.DataFrame(
        {
            "sample_id": ["mmlu.1", "gsm8k.2", "mbpp.3"],
            "prompt": [str(["x" * 40]), str(["y" * 20, "z" * 20]), str(["w" * 8])],
            "eval_name": ["mmlu", "gsm8k", "mbpp"],
            "oracle_model_to_route_to": ["a/m1", "b/m2", "a/m1"],
            "a/m1": pd.Series([1.0, "0.5", 0], dtype=object),
            "a/m1|model_response": [str(["r" * 400]), str(["s" * 80]), "plain text!!"],
            "a/m1|total_cost": [1e-4, 2e-4, 3e-4],
            "b/m2": pd.Series([0.0, 0.75, 1], dtype=object),
            "b/m2|model_response": [str(["t" * 4]), str(["u" * 8]), str(["v" * 12])],
            "b/m2|total_cost": [1e-5, 2e-5, 3e-5],
        }
    )


def _pickle(obj: object, path: Path) -> Path:
    with path.open("wb") as fh:
        pickle.dump(obj, fh)
    return path


def test_routerbench_pickle(tmp_path: Path) -> None:
    path = _pickle(_routerbench_frame(), tmp_path / "routerbench_0shot.pkl")
    assert detect_format(path) == "routerbench"
    w = load_workload(path)
    assert w.models == ("a/m1", "b/m2")
    assert w.prompt_ids == ("mmlu.1", "gsm8k.2", "mbpp.3")
    assert w.tasks == ("mmlu", "gsm8k", "mbpp")
    np.testing.assert_allclose(w.scores, [[1.0, 0.0], [0.5, 0.75], [0.0, 1.0]])
    assert w.truth is not None
    np.testing.assert_allclose(w.truth, w.scores)
    assert w.input_tokens is not None and w.output_tokens is not None
    np.testing.assert_allclose(w.input_tokens, [10, 10, 2])  # chars of the strings / 4
    np.testing.assert_allclose(w.output_tokens, [[100, 1], [20, 2], [3, 3]])


def test_routerbench_bad_score_names_sample_and_model(tmp_path: Path) -> None:
    frame = _routerbench_frame()
    frame.loc[1, "b/m2"] = "n/a"
    with pytest.raises(InputError, match=r"rb.pkl: sample_id 'gsm8k.2'.*'b/m2': score 'n/a'"):
        load_workload(_pickle(frame, tmp_path / "rb.pkl"))


def test_routerbench_structural_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds a dict, not a DataFrame"):
        load_workload(_pickle({"a": 1}, tmp_path / "d.pkl"))
    no_models = _routerbench_frame().drop(columns=["a/m1|total_cost", "b/m2|total_cost"])
    with pytest.raises(InputError, match=r"no model columns.*\|total_cost"):
        load_workload(_pickle(no_models, tmp_path / "n.pkl"))
    no_eval = _routerbench_frame().drop(columns=["eval_name"])
    with pytest.raises(InputError, match=r"lacks column\(s\) \['eval_name'\]"):
        load_workload(_pickle(no_eval, tmp_path / "e.pkl"))
    dup = _routerbench_frame().assign(sample_id=["s", "s", "t"])
    with pytest.raises(InputError, match="sample_id 's' appears 2 times"):
        load_workload(_pickle(dup, tmp_path / "dup.pkl"))
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(InputError, match=r"junk\.pkl: cannot unpickle"):
        load_workload(junk)


# ------------------------------------------------------------------ LLMRouter JSON


def _llmrouter(tmp_path: Path, records: list[dict[str, object]], name: str = "test.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def _task_file(tmp_path: Path, pairs: list[tuple[str, str]]) -> Path:
    path = tmp_path / "default_query_test.jsonl"
    lines = [json.dumps({"task_name": t, "query": q}) for t, q in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_llmrouter_dict_and_string_scores_with_tasks(tmp_path: Path) -> None:
    q2 = "second\u2028question"  # U+2028 must not split a JSONL line
    path = _llmrouter(
        tmp_path,
        [
            {"question": "first question", "scores": {"m1": 1.0, "m2": 0.0}},
            {"question": q2, "scores": "{'m1': 0.0, 'm2': 0.5}"},
        ],
    )
    tasks = _task_file(tmp_path, [("gsm8k", "first question"), ("mmlu", q2)])
    w = load_workload(path, task_file=tasks)
    assert w.prompt_ids == ("test-0", "test-1")
    assert w.models == ("m1", "m2")
    assert w.tasks == ("gsm8k", "mmlu")
    np.testing.assert_allclose(w.scores, [[1.0, 0.0], [0.0, 0.5]])
    assert w.input_tokens is not None
    np.testing.assert_allclose(w.input_tokens, [4, 4])  # 14 and 15 chars / 4
    assert w.output_tokens is None and w.provenance == "measured"
    assert read_task_file(tasks) == {"first question": "gsm8k", q2: "mmlu"}


@pytest.mark.parametrize(
    ("records", "pattern"),
    [
        ({"question": "q"}, "expected a non-empty JSON list"),
        ([{"question": "q"}], r"record 0: needs fields 'question' and 'scores'"),
        ([{"question": "q", "scores": "{'m1': "}], r"record 0, field 'scores': not a dict"),
        ([{"question": "q", "scores": {"m1": 2.0}}], r"record 0, scores\['m1'\]: 2.0"),
        (
            [{"question": "q", "scores": {"m1": 1.0, "m2": 0.0}},
             {"question": "r", "scores": {"m1": 1.0}}],
            r"record 1, field 'scores' lacks model\(s\) \['m2'\]",
        ),
    ],
)
def test_llmrouter_errors(tmp_path: Path, records: object, pattern: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(InputError, match=pattern):
        load_workload(path)


def test_llmrouter_unmatched_task_is_named(tmp_path: Path) -> None:
    path = _llmrouter(tmp_path, [{"question": "lonely", "scores": {"m": 1.0}}])
    tasks = _task_file(tmp_path, [("gsm8k", "other")])
    with pytest.raises(InputError, match=r"1 question\(s\) not found .* record 0: 'lonely'"):
        load_workload(path, task_file=tasks)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_name": "x"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl: line 1: needs fields"):
        load_workload(path, task_file=bad)


# ------------------------------------------------------------------ real data (../shared/data)


@pytest.mark.parametrize(("split", "count"), [("train", 5608), ("test", 500)])
def test_real_llmrouter_files(split: str, count: int) -> None:
    data = LLMROUTER / "dcrouter_preprocessed" / f"{split}.json"
    if not data.is_file():
        pytest.skip(f"real LLMRouter data not present at {data} (../shared/data is optional)")
    tasks = LLMROUTER / "example_data" / "query_data" / f"default_query_{split}.jsonl"
    w = load_workload(data, task_file=tasks)
    assert w.num_prompts == count and w.num_models == 9
    assert "llama-3.1-8b-instruct" in w.models and "qwen2.5-7b-instruct" in w.models
    assert w.tasks is not None and {"gsm8k", "mmlu", "gpqa"} <= set(w.tasks)
    binary = np.isin(w.scores, (0.0, 1.0)).mean()
    assert binary > 0.9  # the README: 97% of scores are 0/1
    assert 0.1 < float(w.scores.mean()) < 0.9
