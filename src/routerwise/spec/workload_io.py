"""Load a real per-prompt, per-model workload file into a :class:`Workload`
(docs/architecture.md §5, §7).

Stage: spec (file I/O at the edge).
Inputs: one file in one of these formats (``fmt="auto"`` picks by suffix and columns):

* ``csv`` / ``parquet`` — the wide score table of docs/architecture.md §7 (``prompt_id`` +
  one column per model); delegated to :func:`routerwise.spec.scores_io.load_scores` unchanged.
* ``long`` — CSV/Parquet rows ``prompt_id, model, score`` with optional ``truth``,
  ``output_tokens`` (per row) and ``input_tokens``, ``task`` (per prompt); pivoted to wide.
* ``routerbench`` — RouterBench's pickled pandas DataFrame (``routerbench_0shot.pkl``):
  ``sample_id``, ``prompt`` (a Python list literal of strings), ``eval_name``, one score
  column per model, ``<model>|model_response``, ``<model>|total_cost``; a column ``c`` is a
  model iff ``c|total_cost`` exists. **Unpickling runs code stored in the file: load only
  pickles you trust** (RouterBench's own, from Hugging Face ``withmartian/routerbench``).
* ``llmrouter`` — LLMRouter's ``train.json`` / ``test.json``: a JSON list of
  ``{"question": str, "scores": {model: score}}`` where ``scores`` is an object or a string
  holding a Python dict literal; tasks come from an optional ``default_query_*.jsonl``
  (``task_name``, ``query``) joined on the exact question text (``task_file=``).

Outputs: a ``measured`` Workload. For long, RouterBench and LLMRouter files the measured
scores are both ``scores`` and ``truth``: an **oracle** (``score_source="oracle"``) until a
predictor replaces the scores; a long file's ``truth`` column, when present, makes its
``score`` column predictions (``score_source="predicted"``). Prompt text is kept where the
format has it (``prompt`` column, RouterBench's prompt list, LLMRouter's question).
Units: scores in [0, 1]; token counts in tokens, estimated as characters / 4 where a format
only has text.
"""

from __future__ import annotations

import ast
import json
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from routerwise.errors import InputError
from routerwise.spec.core import FloatArray, readonly
from routerwise.spec.scores_io import load_scores
from routerwise.spec.tables import file_row, numeric_column, read_table, require_columns
from routerwise.spec.workload import Workload

WorkloadFormat = Literal["auto", "csv", "parquet", "routerbench", "llmrouter", "long"]
WORKLOAD_FORMATS: tuple[WorkloadFormat, ...] = (
    "auto", "csv", "parquet", "routerbench", "llmrouter", "long"
)
CHARS_PER_TOKEN = 4.0
LONG_COLUMNS = ("prompt_id", "model", "score")
PICKLE_SUFFIXES = (".pkl", ".pickle")


def load_workload(
    path: Path, fmt: WorkloadFormat = "auto", *, task_file: Path | None = None
) -> Workload:
    """Read ``path`` in format ``fmt``; every error names the file and the bad field or row."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: workload file does not exist")
    if task_file is not None and fmt not in ("auto", "llmrouter"):
        raise InputError(f"{path}: task_file is only used with LLMRouter JSON, not {fmt=}")
    kind = detect_format(path) if fmt == "auto" else fmt
    if kind in ("csv", "parquet"):
        return load_scores(path)
    if kind == "long":
        return load_long(path)
    if kind == "routerbench":
        return load_routerbench(path)
    if kind == "llmrouter":
        return load_llmrouter(path, task_file=task_file)
    raise InputError(f"{path}: unknown workload format {fmt!r}; use one of {WORKLOAD_FORMATS}")


def detect_format(path: Path) -> WorkloadFormat:
    """The format of ``path`` from its suffix (and, for tables, its header)."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return "routerbench"
    if suffix == ".json":
        return "llmrouter"
    if suffix in (".csv", ".parquet", ".pq"):
        return "long" if set(LONG_COLUMNS) <= set(_header(path)) else _table_kind(suffix)
    raise InputError(
        f"{path}: cannot tell the workload format from suffix {path.suffix!r}; expected "
        ".csv/.parquet (wide or long), .pkl (RouterBench) or .json (LLMRouter), or pass fmt="
    )


def _table_kind(suffix: str) -> WorkloadFormat:
    return "csv" if suffix == ".csv" else "parquet"


def _header(path: Path) -> list[str]:
    try:
        if path.suffix.lower() == ".csv":
            return [str(c).strip() for c in pd.read_csv(path, nrows=0).columns]
        return [str(c).strip() for c in pd.read_parquet(path).columns]
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the table header: {exc}") from exc


def _tokens_from_chars(chars: Sequence[int] | np.ndarray) -> FloatArray:
    """Characters → tokens (chars / 4, at least 1)."""
    return np.maximum(np.rint(np.asarray(chars, dtype=np.float64) / CHARS_PER_TOKEN), 1.0)


# ---------------------------------------------------------------- long CSV / Parquet


def _unit_interval(values: np.ndarray, frame: pd.DataFrame, path: Path, column: str) -> None:
    bad = ~np.isfinite(values) | (values < 0.0) | (values > 1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}: row {file_row(i)} (prompt_id {frame['prompt_id'].iloc[i]!r}, model "
            f"{frame['model'].iloc[i]!r}), column {column!r}: {values[i]!r} must be in [0, 1]"
        )


def _check_unique_cells(frame: pd.DataFrame, path: Path) -> None:
    dup = frame.duplicated(["prompt_id", "model"], keep=False).to_numpy()
    if dup.any():
        rows = [file_row(int(i)) for i in np.flatnonzero(dup)[:4]]
        first = frame.iloc[int(np.flatnonzero(dup)[0])]
        raise InputError(
            f"{path}: (prompt_id {first['prompt_id']!r}, model {first['model']!r}) appears "
            f"more than once, at rows {rows}; each (prompt, model) cell must appear once"
        )


def _pivot(frame: pd.DataFrame, column: str, prompts: list[str], models: list[str],
           path: Path) -> FloatArray:
    """(prompt × model) matrix of ``column``; a missing cell is an error that names it."""
    wide = frame.pivot(index="prompt_id", columns="model", values=column)
    wide = wide.reindex(index=prompts, columns=models)
    missing = np.argwhere(wide.isna().to_numpy())
    if len(missing):
        cells = [(prompts[int(i)], models[int(j)]) for i, j in missing[:5]]
        raise InputError(
            f"{path}: column {column!r} has no value for {len(missing)} (prompt_id, model) "
            f"cell(s), e.g. {cells}; a long file needs one row per prompt and model"
        )
    return wide.to_numpy(dtype=np.float64)


def _per_prompt(frame: pd.DataFrame, column: str, prompts: list[str], path: Path) -> pd.Series:
    """A per-prompt column; it must hold one value per prompt across that prompt's rows."""
    counts = frame.groupby("prompt_id", sort=False)[column].nunique(dropna=False)
    bad = counts[counts > 1]
    if len(bad):
        raise InputError(
            f"{path}: column {column!r} differs between the rows of prompt_id "
            f"{bad.index[0]!r}; it must be the same for every model of a prompt"
        )
    return frame.groupby("prompt_id", sort=False)[column].first().reindex(prompts)


def _long_frame(path: Path) -> pd.DataFrame:
    frame = read_table(path, what="long workload")
    require_columns(frame, path, LONG_COLUMNS, "long workload")
    for col in ("prompt_id", "model"):
        if frame[col].isna().any():
            i = int(np.flatnonzero(frame[col].isna().to_numpy())[0])
            raise InputError(f"{path}: row {file_row(i)}, column {col!r} is empty")
        frame[col] = frame[col].astype(str).str.strip()
    return frame


def _long_numeric(frame: pd.DataFrame, path: Path, column: str) -> None:
    values = numeric_column(frame, path, column)
    if column in ("score", "truth"):
        _unit_interval(values, frame, path, column)
    elif (bad := ~np.isfinite(values) | (values <= 0)).any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}: row {file_row(i)}, column {column!r}: token count {values[i]!r} must be > 0"
        )
    frame[column] = values


def load_long(path: Path) -> Workload:
    """Long CSV/Parquet (one row per prompt and model) pivoted to a wide Workload."""
    frame = _long_frame(path)
    optional = [c for c in ("truth", "output_tokens", "input_tokens") if c in frame.columns]
    for column in ("score", *optional):
        _long_numeric(frame, path, column)
    _check_unique_cells(frame, path)
    prompts = list(dict.fromkeys(frame["prompt_id"]))
    models = list(dict.fromkeys(frame["model"]))
    scores = _pivot(frame, "score", prompts, models, path)
    truth = _pivot(frame, "truth", prompts, models, path) if "truth" in optional else scores
    out = _pivot(frame, "output_tokens", prompts, models, path) if "output_tokens" in optional \
        else None
    inp = _per_prompt(frame, "input_tokens", prompts, path) if "input_tokens" in optional else None
    task = _per_prompt(frame, "task", prompts, path) if "task" in frame.columns else None
    text = _per_prompt(frame, "prompt", prompts, path) if "prompt" in frame.columns else None
    return Workload(
        prompt_ids=tuple(prompts),
        models=tuple(models),
        scores=readonly(scores),
        truth=readonly(truth),
        input_tokens=None if inp is None else readonly(inp.to_numpy(dtype=np.float64)),
        output_tokens=None if out is None else readonly(out),
        tasks=None if task is None else tuple(str(t) for t in task),
        provenance="measured",
        source=str(path),
        notes=("long table pivoted to prompts x models",),
        prompts=None if text is None else tuple(str(t) for t in text),
        score_source="predicted" if "truth" in optional else "oracle",
        input_tokens_from="column input_tokens" if inp is not None else "",
    )


# ---------------------------------------------------------------- RouterBench pickle


def _read_pickle(path: Path) -> pd.DataFrame:
    """Unpickle a DataFrame. Pickles execute code on load: only call this on trusted files."""
    try:
        frame = pd.read_pickle(path)  # trusted input only: see the module docstring
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError,
            TypeError, OSError) as exc:
        raise InputError(f"{path}: cannot unpickle a RouterBench DataFrame: {exc}") from exc
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{path}: the pickle holds a {type(frame).__name__}, not a DataFrame")
    if frame.empty:
        raise InputError(f"{path}: the RouterBench DataFrame has no rows")
    return frame.reset_index(drop=True)


def _text_chars(value: Any) -> int:
    """Characters of a prompt/response cell: a list of strings, a list literal or plain text."""
    if isinstance(value, list | tuple):
        return sum(len(str(v)) for v in value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return 0
    text = str(value)
    if text.startswith("["):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return len(text)
        if isinstance(parsed, list):
            return sum(len(str(v)) for v in parsed)
    return len(text)


def _text(value: Any) -> str:
    """A prompt cell as text: a list of strings (or its literal) joined by blank lines."""
    if isinstance(value, list | tuple):
        return "\n\n".join(str(v) for v in value)
    text = "" if value is None else str(value)
    if text.startswith("["):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
        if isinstance(parsed, list):
            return "\n\n".join(str(v) for v in parsed)
    return text


def _routerbench_models(frame: pd.DataFrame, path: Path) -> list[str]:
    columns = [str(c) for c in frame.columns]
    models = [c for c in columns if "|" not in c and f"{c}|total_cost" in columns]
    if not models:
        raise InputError(
            f"{path}: no model columns: a column c is a model when 'c|total_cost' exists; "
            f"columns are {columns[:12]}"
        )
    return models


def _routerbench_scores(frame: pd.DataFrame, models: list[str], path: Path) -> FloatArray:
    cols = []
    for model in models:
        values = pd.to_numeric(frame[model], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values < 0.0) | (values > 1.0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{path}: sample_id {frame['sample_id'].iloc[i]!r} (row index {i}), model "
                f"column {model!r}: score {frame[model].iloc[i]!r} is not a number in [0, 1]"
            )
        cols.append(values)
    return np.column_stack(cols)


def _routerbench_ids(frame: pd.DataFrame, path: Path) -> tuple[str, ...]:
    ids = frame["sample_id"].astype(str)
    dup = ids.duplicated(keep=False)
    if dup.any():
        raise InputError(
            f"{path}: sample_id {ids[dup].iloc[0]!r} appears {int((ids == ids[dup].iloc[0]).sum())}"
            " times; sample ids must be unique"
        )
    return tuple(ids)


def load_routerbench(path: Path) -> Workload:
    """RouterBench's pickled DataFrame (trusted files only: unpickling runs code)."""
    frame = _read_pickle(path)
    require_columns(frame, path, ("sample_id", "prompt", "eval_name"), "RouterBench")
    models = _routerbench_models(frame, path)
    scores = _routerbench_scores(frame, models, path)
    responses = [f"{m}|model_response" for m in models]
    output = None
    if all(c in frame.columns for c in responses):
        output = np.column_stack(
            [_tokens_from_chars([_text_chars(v) for v in frame[c]]) for c in responses]
        )
    return Workload(
        prompt_ids=_routerbench_ids(frame, path),
        models=tuple(models),
        scores=readonly(scores),
        truth=readonly(scores),
        input_tokens=readonly(_tokens_from_chars([_text_chars(v) for v in frame["prompt"]])),
        output_tokens=None if output is None else readonly(output),
        tasks=tuple(str(t) for t in frame["eval_name"]),
        provenance="measured",
        source=str(path),
        notes=("RouterBench pickle; tokens estimated as characters / 4",),
        prompts=tuple(_text(v) for v in frame["prompt"]),
        score_source="oracle",
        input_tokens_from="prompt text, characters / 4",
    )


# ---------------------------------------------------------------- LLMRouter JSON


def _read_json_list(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise InputError(f"{path}: expected a non-empty JSON list of {{question, scores}} records")
    return data


def _record_scores(record: Any, index: int, path: Path) -> tuple[str, dict[str, float]]:
    where = f"{path}: record {index}"
    if not isinstance(record, Mapping) or "question" not in record or "scores" not in record:
        raise InputError(f"{where}: needs fields 'question' and 'scores'")
    raw = record["scores"]
    if isinstance(raw, str):
        try:
            raw = ast.literal_eval(raw)
        except (ValueError, SyntaxError) as exc:
            raise InputError(f"{where}, field 'scores': not a dict literal: {exc}") from exc
    if not isinstance(raw, Mapping) or not raw:
        raise InputError(f"{where}, field 'scores': expected a non-empty model -> score mapping")
    out: dict[str, float] = {}
    for model, value in raw.items():
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not 0.0 <= float(value) <= 1.0:
            raise InputError(f"{where}, scores[{model!r}]: {value!r} is not a number in [0, 1]")
        out[str(model)] = float(value)
    return str(record["question"]), out


def _score_matrix(records: list[dict[str, float]], path: Path) -> tuple[list[str], FloatArray]:
    models = list(dict.fromkeys(m for r in records for m in r))
    for i, rec in enumerate(records):
        missing = [m for m in models if m not in rec]
        if missing:
            raise InputError(f"{path}: record {i}, field 'scores' lacks model(s) {missing}")
    return models, np.array([[r[m] for m in models] for r in records], dtype=np.float64)


def read_task_file(path: Path) -> dict[str, str]:
    """LLMRouter's ``default_query_*.jsonl``: exact query text → task name (first one wins)."""
    if not path.is_file():
        raise InputError(f"{path}: task file does not exist")
    tasks: dict[str, str] = {}
    # split on "\n" only: str.splitlines would also split on U+2028 inside a JSON string
    for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line {lineno}: not valid JSON: {exc}") from exc
        if not isinstance(rec, Mapping) or "query" not in rec or "task_name" not in rec:
            raise InputError(f"{path}: line {lineno}: needs fields 'task_name' and 'query'")
        tasks.setdefault(str(rec["query"]), str(rec["task_name"]))
    return tasks


def _join_tasks(questions: list[str], task_file: Path, path: Path) -> tuple[str, ...]:
    tasks = read_task_file(task_file)
    missing = [i for i, q in enumerate(questions) if q not in tasks]
    if missing:
        raise InputError(
            f"{path}: {len(missing)} question(s) not found in task file {task_file} (exact "
            f"text match), first at record {missing[0]}: {questions[missing[0]][:80]!r}"
        )
    return tuple(tasks[q] for q in questions)


def load_llmrouter(path: Path, *, task_file: Path | None = None) -> Workload:
    """LLMRouter's train/test JSON; prompt ids are ``<file stem>-<record index>``."""
    parsed = [_record_scores(r, i, path) for i, r in enumerate(_read_json_list(path))]
    questions = [q for q, _ in parsed]
    models, scores = _score_matrix([s for _, s in parsed], path)
    return Workload(
        prompt_ids=tuple(f"{path.stem}-{i}" for i in range(len(parsed))),
        models=tuple(models),
        scores=readonly(scores),
        truth=readonly(scores),
        input_tokens=readonly(_tokens_from_chars([len(q) for q in questions])),
        output_tokens=None,
        tasks=None if task_file is None else _join_tasks(questions, task_file, path),
        provenance="measured",
        source=str(path),
        notes=("LLMRouter JSON; input tokens estimated as characters / 4; no output lengths",),
        prompts=tuple(questions),
        score_source="oracle",
        input_tokens_from="prompt text, characters / 4",
    )
