"""Reading tabular user files (CSV / Parquet) with errors that name the file, row and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from routerwise.errors import InputError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(
    path: Path, *, what: str, suffixes: tuple[str, ...] = TABLE_SUFFIXES
) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame; reject missing, empty or unknown files."""
    if path.suffix.lower() not in suffixes:
        raise InputError(
            f"{path}: {what} file must end in one of {', '.join(suffixes)}, not {path.suffix!r}"
        )
    if not path.is_file():
        raise InputError(f"{path}: {what} file does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: {what} file is empty")
    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read {what} file: {exc}") from exc
    if frame.empty:
        raise InputError(f"{path}: {what} file has a header but no rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def require_columns(frame: pd.DataFrame, path: Path, columns: tuple[str, ...], what: str) -> None:
    """Raise naming every required column that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: {what} file lacks column(s) {missing}; it has {list(frame.columns)}"
        )


def numeric_column(frame: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    """Column as float64; a non-numeric cell is named by its file row (header = row 1)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        idx = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{path}: row {idx + 2}, column {column!r}: {frame[column].iloc[idx]!r} is not a number"
        )
    return values.to_numpy(dtype=np.float64)


def file_row(index: int) -> int:
    """1-based line number in a CSV with a header for 0-based data row ``index``."""
    return index + 2
