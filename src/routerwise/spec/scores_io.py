"""Load a per-prompt score table (DESIGN.md §6 ``--scores``) into a :class:`Workload`.

Format: CSV or Parquet with column ``prompt_id`` and one numeric column per model, each a
score in [0, 1]. Optional columns: ``prompt``, ``task``, ``input_tokens``,
``output_tokens:<model>`` and ``truth:<model>`` (measured quality, for evaluation only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from routerwise.errors import InputError
from routerwise.spec.core import readonly
from routerwise.spec.tables import file_row, numeric_column, read_table, require_columns
from routerwise.spec.workload import Workload

META_COLUMNS = frozenset({"prompt_id", "prompt", "task", "input_tokens"})
PREFIXED = ("output_tokens:", "truth:")


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
    scores = _unit_matrix({m: numeric_column(frame, path, m) for m in models}, path, "score")
    truth = None
    truth_cols = [f"truth:{m}" for m in models]
    if any(c in frame.columns for c in truth_cols):
        require_columns(frame, path, tuple(truth_cols), "scores")
        truth = _unit_matrix({c: numeric_column(frame, path, c) for c in truth_cols}, path, "truth")
    out_tokens = None
    out_cols = [f"output_tokens:{m}" for m in models]
    if any(c in frame.columns for c in out_cols):
        require_columns(frame, path, tuple(out_cols), "scores")
        out_tokens = np.column_stack([_tokens(frame, path, c) for c in out_cols])
    return Workload(
        prompt_ids=tuple(ids),
        models=models,
        scores=readonly(scores),
        truth=None if truth is None else readonly(truth),
        input_tokens=readonly(_tokens(frame, path, "input_tokens"))
        if "input_tokens" in frame.columns
        else None,
        output_tokens=None if out_tokens is None else readonly(out_tokens),
        tasks=tuple(frame["task"].astype(str)) if "task" in frame.columns else None,
        provenance="measured",
        source=str(path),
    )


def _tokens(frame: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    values = numeric_column(frame, path, column)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}: row {file_row(i)}, column {column!r}: token count {values[i]!r} must be > 0"
        )
    return values
