"""Load a per-prompt score table (docs/architecture.md §7) into a :class:`Workload`.

Format: CSV or Parquet with column ``prompt_id`` and one numeric column per model, each a
score in [0, 1]. Optional columns: ``prompt``, ``task``, ``input_tokens``,
``output_tokens:<model>``, and either

* ``pred:<model>`` — predicted scores: the model columns are then outcome labels (truth)
  and routing uses the predictions; or
* ``truth:<model>`` — measured quality: the model columns are then predicted scores.

With neither, the model columns are outcome labels used as scores: an **oracle**
(``Workload.score_source == "oracle"``), which every output labels as such.
Input lengths come from ``input_tokens``, else from the ``prompt`` text (characters / 4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from routerwise.errors import InputError
from routerwise.spec.core import readonly
from routerwise.spec.tables import file_row, numeric_column, read_table, require_columns
from routerwise.spec.workload import ScoreSource, Workload

META_COLUMNS = frozenset({"prompt_id", "prompt", "task", "input_tokens"})
PREFIXED = ("output_tokens:", "truth:", "pred:")
CHARS_PER_TOKEN = 4.0


def _model_columns(columns: list[str]) -> tuple[str, ...]:
    return tuple(c for c in columns if c not in META_COLUMNS and not c.startswith(PREFIXED))


def _unit_matrix(frame_cols: dict[str, np.ndarray], path: Path, kind: str) -> np.ndarray:
    """Stack columns and name the first value outside [0, 1] by file row and column."""
    for name, col in frame_cols.items():
        bad = ~np.isfinite(col) | (col < 0.0) | (col > 1.0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{path}: row {file_row(i)}, column {name!r}: {kind} {col[i]!r} "
                "must be a number in [0, 1] (no NaN or blanks)"
            )
    return np.column_stack(list(frame_cols.values()))


def load_scores(path: Path) -> Workload:
    """Read and validate a score table; every error names the file, row and column."""
    frame = read_table(path, what="scores")
    require_columns(frame, path, ("prompt_id",), "scores")
    ids = frame["prompt_id"].astype(str).str.strip()
    dup = ids.duplicated(keep=False)
    if dup.any():
        rows = [file_row(int(i)) for i in np.flatnonzero(dup.to_numpy())[:4]]
        raise InputError(
            f"{path}: duplicate prompt_id {ids[dup].iloc[0]!r} at rows {rows}; ids must be unique"
        )
    models = _model_columns(list(frame.columns))
    if len(models) < 1:
        raise InputError(f"{path}: no model score columns besides {sorted(META_COLUMNS)}")
    labels_or_scores = _unit_matrix({m: numeric_column(frame, path, m) for m in models}, path,
                                    "score")
    scores, truth, source = _scores_and_truth(frame, path, models, labels_or_scores)
    out_tokens = None
    out_cols = [f"output_tokens:{m}" for m in models]
    if any(c in frame.columns for c in out_cols):
        require_columns(frame, path, tuple(out_cols), "scores")
        out_tokens = np.column_stack([_tokens(frame, path, c) for c in out_cols])
    prompts = _prompt_texts(frame, path)
    input_tokens, input_from = _input_tokens(frame, path, prompts)
    return Workload(
        prompt_ids=tuple(ids),
        models=models,
        scores=readonly(scores),
        truth=None if truth is None else readonly(truth),
        input_tokens=input_tokens,
        output_tokens=None if out_tokens is None else readonly(out_tokens),
        tasks=tuple(frame["task"].astype(str)) if "task" in frame.columns else None,
        provenance="measured",
        source=str(path),
        prompts=prompts,
        score_source=source,
        input_tokens_from=input_from,
    )


def _prefixed(frame: pd.DataFrame, path: Path, models: tuple[str, ...], prefix: str,
              kind: str) -> np.ndarray | None:
    cols = [f"{prefix}{m}" for m in models]
    if not any(c in frame.columns for c in cols):
        return None
    require_columns(frame, path, tuple(cols), "scores")
    return _unit_matrix({c: numeric_column(frame, path, c) for c in cols}, path, kind)


def _scores_and_truth(frame: pd.DataFrame, path: Path, models: tuple[str, ...],
                      model_cols: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, ScoreSource]:
    """(scores, truth, what the scores are) from ``pred:``/``truth:`` columns, if any."""
    pred = _prefixed(frame, path, models, "pred:", "predicted score")
    truth = _prefixed(frame, path, models, "truth:", "truth")
    if pred is not None and truth is not None:
        raise InputError(f"{path}: give pred:<model> columns (model columns are labels) or "
                         "truth:<model> columns (model columns are predictions), not both")
    if pred is not None:
        return pred, model_cols, "predicted"
    if truth is not None:
        return model_cols, truth, "predicted"
    return model_cols, model_cols, "oracle"


def _prompt_texts(frame: pd.DataFrame, path: Path) -> tuple[str, ...] | None:
    if "prompt" not in frame.columns:
        return None
    empty = frame["prompt"].isna().to_numpy()
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise InputError(f"{path}: row {file_row(i)}, column 'prompt' is empty")
    return tuple(frame["prompt"].astype(str))


def _input_tokens(frame: pd.DataFrame, path: Path, prompts: tuple[str, ...] | None
                  ) -> tuple[np.ndarray | None, str]:
    """Input lengths and how they were counted: the column, else the prompt text's chars / 4."""
    if "input_tokens" in frame.columns:
        return readonly(_tokens(frame, path, "input_tokens")), "column input_tokens"
    if prompts is None:
        return None, ""
    chars = np.array([len(t) for t in prompts], dtype=np.float64)
    tokens = np.maximum(np.rint(chars / CHARS_PER_TOKEN), 1.0)
    return readonly(tokens), "prompt text, characters / 4"


def _tokens(frame: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    values = numeric_column(frame, path, column)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}: row {file_row(i)}, column {column!r}: token count {values[i]!r} must be > 0"
        )
    return values
