"""Profile tables: latency statistics per model × instance shape × arrival rate.

File format (docs/architecture.md §7): CSV with columns ``model, rate_rps, ttft_mean_ms`` and
optionally more statistics (``ttft_p50_ms, ttft_p90_ms, ttft_p99_ms, tpot_mean_ms,
e2e_mean_ms, throughput_rps``) and metadata (``gpu, tp, mps_share, provenance``). Rows marked
``beyond_capacity`` (measured rates stopped early at saturation) are not curve points.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from routerwise.errors import InputError
from routerwise.spec.core import FloatArray, readonly
from routerwise.spec.tables import file_row, numeric_column, read_table, require_columns

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("model", "rate_rps", "ttft_mean_ms")
STAT_COLUMNS = (
    "ttft_mean_ms",
    "ttft_p50_ms",
    "ttft_p90_ms",
    "ttft_p99_ms",
    "tpot_mean_ms",
    "e2e_mean_ms",
)
MIN_POINTS = 2
#: Columns that name the instance shape a row was measured on.
SHAPE_COLUMNS = ("gpu", "tp", "mps_share")
#: Marks a measured point whose rate was stopped early because the server's queue grew
#: without bound (``routerwise profile``): its latencies are lower bounds, so curves leave
#: it out (its rate is past the shape's capacity).
BEYOND_CAPACITY_COLUMN = "beyond_capacity"


def beyond_capacity(frame: pd.DataFrame) -> pd.Series:
    """True for the rows marked beyond capacity (all False without the column)."""
    if BEYOND_CAPACITY_COLUMN not in frame.columns:
        return pd.Series(False, index=frame.index)
    text = frame[BEYOND_CAPACITY_COLUMN].astype(str).str.strip().str.lower()
    return text.isin(("true", "1", "1.0", "yes"))


@dataclass(frozen=True, slots=True)
class ProfilePoints:
    """One model's profile: strictly increasing rates and one statistic at each."""

    model: str
    rates_rps: FloatArray
    values_ms: FloatArray
    stat: str
    source_rows: tuple[int, ...]  # file line numbers, for messages
    source: str

    def __post_init__(self) -> None:
        if self.rates_rps.shape != self.values_ms.shape or self.rates_rps.ndim != 1:
            raise InputError(
                f"{self.source}: model {self.model!r}: rates and values differ in shape")
        if len(self.rates_rps) < MIN_POINTS:
            raise InputError(
                f"{self.source}: model {self.model!r} has {len(self.rates_rps)} profile point(s) "
                f"for {self.stat}; at least {MIN_POINTS} distinct rates are needed for a curve"
            )
        if np.any(np.diff(self.rates_rps) <= 0):
            raise InputError(f"{self.source}: model {self.model!r}: rates must be increasing")


@dataclass(frozen=True, slots=True)
class ProfileTable:
    """A validated profile table. ``frame`` must not be mutated (copies are handed out)."""

    frame: pd.DataFrame
    source: str = "<memory>"

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.frame["model"].astype(str)))

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def points(self, model: str, stat: str = "ttft_mean_ms") -> ProfilePoints:
        """Sorted points of ``model`` for ``stat``; repeated rates are averaged (with a warning)."""
        if stat not in self.frame.columns:
            raise InputError(f"{self.source}: no column {stat!r}; have {list(self.frame.columns)}")
        sub = self.frame[self.frame["model"].astype(str) == model]
        if sub.empty:
            raise InputError(
                f"{self.source}: no profile rows for model {model!r}; have {self.models}")
        self._check_one_shape(sub, model)
        sub = sub[sub[stat].notna() & ~beyond_capacity(sub)]
        grouped = sub.groupby("rate_rps", sort=True)[stat]
        counts = grouped.size()
        if (counts > 1).any():
            repeated = [float(r) for r in counts[counts > 1].index]
            log.warning(
                "%s: model %r has several rows at rate_rps %s; their %s values are averaged",
                self.source, model, repeated, stat,
            )
        means = grouped.mean()
        rows = tuple(file_row(int(i)) for i in sub.drop_duplicates("rate_rps").sort_values(
            "rate_rps").index)
        return ProfilePoints(
            model=model,
            rates_rps=readonly(means.index.to_numpy(dtype=np.float64)),
            values_ms=readonly(means.to_numpy(dtype=np.float64)),
            stat=stat,
            source_rows=rows,
            source=self.source,
        )

    def _check_one_shape(self, sub: pd.DataFrame, model: str) -> None:
        """A model's rows must describe one instance shape: a curve never mixes shapes."""
        cols = [c for c in SHAPE_COLUMNS if c in sub.columns]
        if not cols:
            return
        keys = sub[cols].astype(str).apply(lambda r: ", ".join(f"{c}={v}" for c, v in
                                                               zip(cols, r, strict=True)), axis=1)
        shapes = list(dict.fromkeys(keys))
        if len(shapes) > 1:
            rows = {k: [file_row(int(i)) for i in keys.index[keys == k][:3]] for k in shapes}
            listing = "; ".join(f"{k} (rows {r})" for k, r in rows.items())
            raise InputError(
                f"{self.source}: model {model!r} has rows of {len(shapes)} instance shapes "
                f"({listing}); a curve belongs to one deployment shape: keep one shape per "
                "model (or give the planner the table with `routerwise plan --profiles`)")

    def select_shape(self, model: str, gpu: str, tp: int, mps_share: float) -> ProfileTable:
        """The rows of one instance shape (columns a table lacks are not filtered on)."""
        f = self.frame
        rows = f["model"].astype(str) == model
        if "gpu" in f.columns:
            rows &= f["gpu"].astype(str).str.lower() == gpu.lower()
        if "tp" in f.columns:
            rows &= f["tp"].astype(float) == tp
        if "mps_share" in f.columns:
            rows &= np.isclose(f["mps_share"].astype(float), mps_share)
        return ProfileTable(frame=f[rows], source=self.source)

    def to_csv(self, path: Path) -> None:
        self.frame.to_csv(path, index=False)


def validate_profile_frame(frame: pd.DataFrame, source: str) -> ProfileTable:
    """Check columns and values of a profile frame; errors name the row and column."""
    path = Path(source)
    require_columns(frame, path, REQUIRED_COLUMNS, "profiles")
    frame = frame.reset_index(drop=True).copy()
    frame["model"] = frame["model"].astype(str).str.strip()
    rates = numeric_column(frame, path, "rate_rps")
    bad = ~np.isfinite(rates) | (rates <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{source}: row {file_row(i)}, column 'rate_rps': {frame['rate_rps'].iloc[i]!r} "
            "must be a positive number of requests/s"
        )
    frame["rate_rps"] = rates
    for col in (c for c in STAT_COLUMNS if c in frame.columns):
        values = numeric_column(frame, path, col)
        present = ~np.isnan(values)
        if col == "ttft_mean_ms" and not present.all():
            i = int(np.flatnonzero(~present)[0])
            raise InputError(f"{source}: row {file_row(i)}, column {col!r} is empty")
        bad = present & (~np.isfinite(values) | (values < 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{source}: row {file_row(i)}, column {col!r}: {values[i]!r} must be a "
                "finite time >= 0 ms"
            )
        frame[col] = values
    return ProfileTable(frame=frame, source=source)


def load_profiles(path: Path) -> ProfileTable:
    """Read and validate a profile CSV."""
    return validate_profile_frame(read_table(path, what="profiles", suffixes=(".csv",)), str(path))
