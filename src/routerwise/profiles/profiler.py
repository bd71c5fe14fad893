"""Measured profile tables: one rate's rows → one profile point, points → a profile table.

A point (docs/architecture.md §7, DESIGN.md §6) has the table's statistics over the
rate's *successful* requests — ``ttft_{mean,p50,p90,p99}_ms``, the same for ``tpot`` and
``e2e``, ``throughput_rps`` (successes over the time from the first send to the last
completion), ``output_tokens_per_s`` — and what a reader needs to trust it: ``requests``
(sent), ``succeeded``, ``failed``, ``error_rate``, ``offered_rate_rps`` (achieved send rate),
``send_lag_p99_ms`` (how late the client sent; large values mean the client, not the
server, was the bottleneck), ``beyond_capacity`` (the rate was stopped early because the
server's queue grew without bound: its latencies are lower bounds, and planners and
``route`` leave the point out) and ``stop_reason``. The shape (``gpu, tp, mps_share``) comes
from ``--shape``; ``provenance`` is ``measured``; run metadata (server, its model name and
software, start time, client settings, version) fills the remaining columns of each row.

``merge_points`` appends points to an existing table, replacing rows of the same model,
shape and rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from routerwise import __version__
from routerwise.errors import InputError
from routerwise.profiles.table import SHAPE_COLUMNS, ProfileTable, validate_profile_frame
from routerwise.spec.catalog import get_gpu
from routerwise.spec.deployment import InstanceShape

if TYPE_CHECKING:  # the HTTP client (httpx) is imported only by the commands that send
    from routerwise.profiles.client import ClientSettings, RequestRecord
    from routerwise.profiles.loadgen import ProfileRun, RateResult

#: Per-request CSV columns, in order (the fields of ``RequestRecord``).
REQUEST_COLUMNS = (
    "rate_rps", "index", "scheduled_s", "send_lag_ms", "success", "error", "status_code",
    "ttft_ms", "tpot_ms", "e2e_ms", "itl_max_ms", "input_tokens", "output_tokens", "chunks",
)
_STATS = ("mean", "p50", "p90", "p99")


@dataclass(frozen=True, slots=True)
class MeasuredShape:
    """The instance shape a server runs on (``--shape gpu=…,tp=…,mps_share=…``)."""

    gpu: str
    tp: int
    mps_share: float

    @classmethod
    def parse(cls, text: str) -> MeasuredShape:
        fields: dict[str, str] = {}
        for part in (p.strip() for p in text.split(",") if p.strip()):
            key, eq, value = part.partition("=")
            if not eq or key.strip() not in ("gpu", "tp", "mps_share"):
                raise InputError(f"--shape {text!r}: {part!r} is not gpu=…, tp=… or mps_share=…")
            fields[key.strip()] = value.strip()
        if "gpu" not in fields:
            raise InputError(f"--shape {text!r}: needs gpu=NAME (e.g. gpu=H100-SXM,tp=1)")
        try:
            gpu = get_gpu(fields["gpu"]).name
        except InputError:
            gpu = fields["gpu"]  # not in the catalog: kept as given (the planner cannot use it)
        try:
            tp = int(fields.get("tp", "1"))
            share = float(fields.get("mps_share", "1"))
        except ValueError:
            raise InputError(f"--shape {text!r}: tp must be an integer and mps_share a "
                             "fraction") from None
        checked = InstanceShape("shape", gpu, tp, share)  # validates tp and the share
        return cls(gpu, checked.tp, checked.mps_share)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Client settings recorded beside every point (what the run was asked to do)."""

    label: str  # the model name written in the table
    shape: MeasuredShape | None
    arrival: str
    requests_per_rate: int
    max_tokens: int | None  # None: output lengths from the prompts
    prompts: str
    concurrency_limit: int | None
    seed: int


def _stats(values: Sequence[float], name: str) -> dict[str, float]:
    arr = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return {f"{name}_{s}_ms": math.nan for s in _STATS}
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {f"{name}_mean_ms": float(arr.mean()), f"{name}_p50_ms": float(p50),
            f"{name}_p90_ms": float(p90), f"{name}_p99_ms": float(p99)}


def _offered_rate(records: Sequence[RequestRecord]) -> float:
    sends = sorted(r.scheduled_s + r.send_lag_ms / 1e3 for r in records
                   if math.isfinite(r.send_lag_ms))
    if len(sends) < 2 or sends[-1] <= sends[0]:
        return math.nan
    return (len(sends) - 1) / (sends[-1] - sends[0])


def point_of(result: RateResult) -> dict[str, object] | None:
    """The profile point of one rate; None when no request succeeded."""
    ok = [r for r in result.records if r.success]
    if not ok:
        return None
    span = max(r.done_s for r in ok)
    lags = [r.send_lag_ms for r in result.records if math.isfinite(r.send_lag_ms)]
    failed = len(result.records) - len(ok)
    return {
        "rate_rps": result.rate_rps,
        **_stats([r.ttft_ms for r in ok], "ttft"),
        **_stats([r.tpot_ms for r in ok], "tpot"),
        **_stats([r.e2e_ms for r in ok], "e2e"),
        "throughput_rps": len(ok) / span if span > 0 else math.nan,
        "output_tokens_per_s": sum(r.output_tokens for r in ok) / span if span > 0 else math.nan,
        "input_tokens_mean": float(np.mean([r.input_tokens for r in ok])),
        "output_tokens_mean": float(np.mean([r.output_tokens for r in ok])),
        "requests": len(result.records), "succeeded": len(ok), "failed": failed,
        "error_rate": failed / len(result.records),
        "offered_rate_rps": _offered_rate(result.records),
        "send_lag_p99_ms": float(np.percentile(lags, 99)) if lags else math.nan,
        "duration_s": result.duration_s,
        "beyond_capacity": bool(result.saturated),
        "stop_reason": result.saturated,
        "started_at": result.started_at,
    }


def run_metadata(settings: ClientSettings, server_header: str, started_at: str,
                 info: RunInfo) -> dict[str, object]:
    """The columns every point of a run carries besides its statistics."""
    s = settings
    shape: Mapping[str, object] = {} if info.shape is None else {
        "gpu": info.shape.gpu, "tp": info.shape.tp, "mps_share": info.shape.mps_share}
    return {
        **shape,
        "provenance": "measured",
        "server": s.endpoint.base,
        "server_model": s.model,
        "server_software": server_header,
        "run_started_at": started_at,
        "arrival": info.arrival,
        "requests_per_rate": info.requests_per_rate,
        "max_tokens": info.max_tokens if info.max_tokens is not None else "from prompts",
        "ignore_eos": s.ignore_eos,
        "include_usage": s.include_usage,
        "concurrency_limit": info.concurrency_limit or 0,
        "timeout_s": s.timeout_s,
        "prompts": info.prompts,
        "seed": info.seed,
        "client": f"routerwise {__version__}",
    }


def profile_frame(run: ProfileRun, info: RunInfo) -> pd.DataFrame:
    """The points of every rate that had a success (rows: model, point, metadata)."""
    meta = run_metadata(run.settings, run.server_header, run.started_at, info)
    rows = [{"model": info.label, **p, **meta} for r in run.results
            if (p := point_of(r)) is not None]
    return pd.DataFrame(rows)


def _keys(frame: pd.DataFrame) -> pd.Series:
    """``model|gpu|tp|mps_share|rate`` per row; numbers canonical so CSV round trips match."""
    key = frame["model"].astype(str)
    for col in (*SHAPE_COLUMNS, "rate_rps"):
        if col not in frame.columns:
            part = pd.Series("", index=frame.index)
        elif col == "gpu":
            part = frame[col].astype(str).str.lower()
        else:
            part = pd.to_numeric(frame[col], errors="coerce").map(
                lambda v: "" if pd.isna(v) else f"{float(v):.6g}")
        key = key + "|" + part
    return key


def merge_points(existing: ProfileTable | None, points: pd.DataFrame, source: str
                 ) -> ProfileTable:
    """``points`` appended to ``existing``; its rows of the same model, shape and rate go."""
    if points.empty:
        if existing is None:
            raise InputError(f"{source}: no rate had a successful request; nothing to write")
        return existing
    if existing is None:
        return validate_profile_frame(points, source)
    old = existing.to_frame()
    norm = validate_profile_frame(points, source).to_frame()
    keep = old[~_keys(old).isin(set(_keys(norm)))]
    return validate_profile_frame(pd.concat([keep, norm], ignore_index=True), source)


def records_frame(records: Sequence[RequestRecord]) -> pd.DataFrame:
    """Per-request rows (``REQUEST_COLUMNS``)."""
    return pd.DataFrame([[getattr(r, c) for c in REQUEST_COLUMNS] for r in records],
                        columns=list(REQUEST_COLUMNS))
