"""``routerwise profile``: load-test an OpenAI-compatible server and write a measured profile.

Thin shell over ``profiles.loadgen`` (the open-loop generator) and ``profiles.profiler``
(points and tables): flags are checked and files preflighted before any request; rows are
written as requests end (``--requests-out``, default ``OUT.requests.csv`` beside ``--out``)
and the profile table is rewritten atomically after every rate, so Ctrl-C keeps every
finished request and every finished rate.
"""

from __future__ import annotations

import asyncio
import csv
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from routerwise.cli._common import (
    atomic_path,
    check_out_file,
    console,
    err_console,
    print_json,
    run_or_exit,
)
from routerwise.errors import InputError
from routerwise.profiles.arrivals import parse_arrival
from routerwise.profiles.profiler import (
    REQUEST_COLUMNS,
    MeasuredShape,
    RunInfo,
    merge_points,
    point_of,
    profile_frame,
    run_metadata,
)
from routerwise.profiles.prompts import PromptPool, fixed_pool, load_prompts_file, workload_pool
from routerwise.profiles.saturation import SaturationRule
from routerwise.profiles.table import ProfileTable, load_profiles

if TYPE_CHECKING:  # httpx is imported when the command runs, not when the CLI starts
    from routerwise.profiles.client import ClientSettings, RequestRecord
    from routerwise.profiles.loadgen import LoadSettings, ProfileRun, RatePlan, RateResult

#: Columns of the per-request CSV: the run and shape, then ``REQUEST_COLUMNS``.
ROW_COLUMNS = ("run_started_at", "model", "gpu", "tp", "mps_share", *REQUEST_COLUMNS)
#: A p99 send lag above this (and above 10% of the mean TTFT) is reported: the client fell
#: behind its schedule, so it may have been the bottleneck.
LATE_SEND_MS = 50.0


def parse_rates(text: str) -> tuple[float, ...]:
    """``1,2.5,4`` → positive, finite rates (req/s); the message names a bad value."""
    rates = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            value = float(part)
        except ValueError:
            raise InputError(f"--rates-rps {text}: {part!r} is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"--rates-rps {text}: {part} must be a positive, finite rate (req/s)")
        rates.append(value)
    if not rates:
        raise InputError("--rates-rps: give at least one rate, e.g. 1,2,4")
    return tuple(rates)


def _api_key(var: str | None) -> str | None:
    if var is None:
        return None
    key = os.environ.get(var)
    if not key:
        raise InputError(f"--api-key-env {var}: the environment variable is not set")
    return key


def _pool(prompts: Path | None, workload: str | None, label: str, input_tokens: int
          ) -> PromptPool:
    if prompts is not None and workload is not None:
        raise InputError("give --prompts FILE or --workload W, not both")
    if prompts is not None:
        return load_prompts_file(prompts)
    if workload is None:
        return fixed_pool(input_tokens)
    path = Path(workload)
    if path.exists():
        from routerwise.spec.workload_io import load_workload

        return workload_pool(load_workload(path), label)
    from routerwise.scenarios.registry import scenario_workload

    return workload_pool(scenario_workload(workload), label)


class RowWriter:
    """Per-request rows, appended to a hidden partial file as they come and moved onto the
    target by ``close`` (an existing target with the same header is continued)."""

    def __init__(self, target: Path, prefix: tuple[object, ...]) -> None:
        self.target = target
        self.prefix = prefix
        self.rows = 0
        self.partial = target.with_name(f".{target.name}.partial")
        header = ",".join(ROW_COLUMNS) + "\n"
        old = target.read_text(encoding="utf-8") if target.is_file() else ""
        if old and not old.startswith(header):
            raise InputError(f"--requests-out {target}: exists with other columns; choose "
                             "another file")
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.partial.open("w", encoding="utf-8", newline="")
        self.file.write(old or header)
        self.csv = csv.writer(self.file)

    def write(self, record: RequestRecord) -> None:
        self.csv.writerow([*self.prefix, *(_cell(getattr(record, c)) for c in REQUEST_COLUMNS)])
        self.rows += 1

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()
        self.partial.replace(self.target)


def _cell(value: object) -> object:
    return "" if isinstance(value, float) and math.isnan(value) else value


@dataclass
class _Outputs:
    out: Path
    table: ProfileTable | None  # what --out held before, extended rate by rate
    rates_written: int = 0

    def add(self, frame: pd.DataFrame) -> None:
        self.table = merge_points(self.table, frame, str(self.out))
        with atomic_path(self.out) as tmp:
            self.table.to_csv(tmp)
        self.rates_written += 1


class CliObserver:
    """A live progress bar per rate; rows to the writer; the table after every rate."""

    def __init__(self, bar: Progress, rows: RowWriter, outputs: _Outputs, info: RunInfo,
                 started_at: str) -> None:
        self.bar, self.rows, self.outputs, self.info = bar, rows, outputs, info
        self.started_at = started_at
        self.run_meta: dict[str, object] = {}
        self.task: TaskID | None = None

    def probed(self, settings: ClientSettings, server_header: str) -> None:
        self.run_meta = run_metadata(settings, server_header, self.started_at, self.info)

    def rate_started(self, rate_rps: float, planned: int) -> None:
        self.task = self.bar.add_task(f"{rate_rps:g} req/s", total=planned, errors=0,
                                      in_flight=0)

    def record(self, record: RequestRecord) -> None:
        self.rows.write(record)

    def progress(self, sent: int, done: int, errors: int, in_flight: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=done, errors=errors, in_flight=in_flight)
        self.rows.flush()

    def rate_finished(self, result: RateResult) -> None:
        self.rows.flush()
        if self.task is not None and result.saturated:
            self.bar.update(self.task, description=f"{result.rate_rps:g} req/s saturated")
        point = point_of(result)
        if point is None:
            err_console.print(f"[yellow]warning:[/] {result.rate_rps:g} req/s: no request "
                              "succeeded; no profile point", highlight=False)
            return
        self.outputs.add(pd.DataFrame([{"model": self.info.label, **point, **self.run_meta}]))


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("errors {task.fields[errors]}"),
        TextColumn("in flight {task.fields[in_flight]}"), TimeElapsedColumn(),
        console=err_console)


@dataclass(frozen=True, slots=True)
class _Job:
    settings: ClientSettings
    plans: tuple[RatePlan, ...]
    load: LoadSettings
    info: RunInfo
    out: Path
    requests_out: Path
    existing: ProfileTable | None


def _summary(run: ProfileRun, job: _Job, rows: int) -> dict[str, Any]:
    frame = profile_frame(run, job.info)
    errors: Counter[str] = Counter()
    for result in run.results:
        errors.update(r.error.split(":")[0] for r in result.records if not r.success)
    cols = ["rate_rps", "offered_rate_rps", "ttft_mean_ms", "ttft_p50_ms", "ttft_p99_ms",
            "tpot_mean_ms", "e2e_mean_ms", "throughput_rps", "error_rate", "beyond_capacity",
            "send_lag_p99_ms"]
    points = [] if frame.empty else frame[cols].to_dict(orient="records")
    return {"model": job.info.label, "points": points, "errors": dict(errors),
            "skipped_rates_rps": list(run.skipped_rates_rps), "notes": list(run.notes),
            "ignore_eos": run.settings.ignore_eos, "include_usage": run.settings.include_usage,
            "out": str(job.out), "requests_out": str(job.requests_out), "requests": rows}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _show(summary: dict[str, Any]) -> None:
    table = Table(title=f"{summary['model']}: measured profile")
    heads = ("req/s", "offered", "TTFT mean", "p50", "p99", "TPOT", "E2E", "done/s", "errors",
             "")
    for h in heads:
        table.add_column(h, justify="right")
    for p in summary["points"]:
        def ms(key: str, p: dict[str, Any] = p) -> str:
            v = p[key]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "-"
            return f"{v:.0f}" if v >= 100 else f"{v:.1f}"
        table.add_row(f"{p['rate_rps']:g}", f"{p['offered_rate_rps']:.3g}", ms("ttft_mean_ms"),
                      ms("ttft_p50_ms"), ms("ttft_p99_ms"), ms("tpot_mean_ms"),
                      ms("e2e_mean_ms"), f"{p['throughput_rps']:.3g}",
                      f"{p['error_rate']:.1%}",
                      "beyond capacity" if p["beyond_capacity"] else "")
    console.print(table)
    if summary["errors"]:
        console.print("errors: " + ", ".join(f"{k} ×{v}" for k, v in summary["errors"].items()))
    if summary["skipped_rates_rps"]:
        console.print(f"skipped (beyond capacity): {summary['skipped_rates_rps']} req/s")
    for note in summary["notes"]:
        console.print(f"note: {note}")
    console.print(f"wrote {summary['out']} and {summary['requests_out']} "
                  f"({summary['requests']} requests)")


def _warn_late_sends(summary: dict[str, Any]) -> None:
    for p in summary["points"]:
        lag = p.get("send_lag_p99_ms")
        if lag is not None and lag > max(LATE_SEND_MS, 0.1 * (p["ttft_mean_ms"] or 0)):
            err_console.print(
                f"[yellow]warning:[/] {p['rate_rps']:g} req/s: the client sent requests late "
                f"(p99 {lag:.0f} ms after their time): the client, not the server, may have "
                "been the bottleneck (a busy machine?)", highlight=False)


def _run(job: _Job) -> tuple[ProfileRun, int]:
    from routerwise.profiles.loadgen import now_iso

    started = now_iso()
    shape = job.info.shape
    prefix = (started, job.info.label, *((shape.gpu, shape.tp, shape.mps_share)
                                         if shape else ("", "", "")))
    rows = RowWriter(job.requests_out, prefix)
    outputs = _Outputs(job.out, job.existing)
    try:
        with _bar() as bar:
            observer = CliObserver(bar, rows, outputs, job.info, started)
            run = asyncio.run(_profile(job, observer, started))
    except KeyboardInterrupt:
        err_console.print(f"kept {rows.rows} request rows in {job.requests_out} and "
                          f"{outputs.rates_written} finished rate(s) in {job.out}",
                          highlight=False)
        raise
    finally:
        rows.close()
    return run, rows.rows


async def _profile(job: _Job, observer: CliObserver, started: str) -> ProfileRun:
    from routerwise.profiles.loadgen import run_profile

    return await run_profile(job.settings, job.plans, load=job.load, observer=observer,
                             started_at=started)


def _job(endpoint: str, model: str, rates_rps: str, requests_per_rate: int, out: Path,
         requests_out: Path | None, shape: str | None, label: str | None, prompts: Path | None,
         workload: str | None, input_tokens: int, max_tokens: int | None, arrival: str,
         seed: int, api_key_env: str | None, concurrency_limit: int | None, timeout_s: float,
         ignore_eos: bool, early_stop: bool, keep_going: bool) -> _Job:
    """Every check that needs no network, before any request."""
    from routerwise.profiles.client import ClientSettings, Endpoint
    from routerwise.profiles.loadgen import LoadSettings, plan_rates

    check_out_file(out, "--out", (".csv",))
    rows_path = requests_out or out.with_name(f"{out.stem}.requests.csv")
    check_out_file(rows_path, "--requests-out", (".csv",))
    if rows_path.absolute() == out.absolute():
        raise InputError("--requests-out must differ from --out")
    existing = load_profiles(out) if out.exists() else None
    name = label or model
    pool = _pool(prompts, workload, name, input_tokens)
    process = parse_arrival(arrival)
    plans = plan_rates(parse_rates(rates_rps), requests_per_rate, pool, process, seed=seed,
                       max_tokens=max_tokens)
    settings = ClientSettings(Endpoint.parse(endpoint), model, api_key=_api_key(api_key_env),
                              ignore_eos=ignore_eos, timeout_s=timeout_s)
    load = LoadSettings(concurrency_limit=concurrency_limit,
                        saturation=SaturationRule() if early_stop else None,
                        stop_after_saturation=not keep_going)
    info = RunInfo(name, MeasuredShape.parse(shape) if shape else None, process.describe(),
                   requests_per_rate, max_tokens, pool.source, concurrency_limit, seed)
    return _Job(settings, plans, load, info, out, rows_path, existing)


def profile(
    endpoint: str = typer.Option(..., "--endpoint", metavar="URL",
                                 help="OpenAI-compatible server, e.g. http://127.0.0.1:8000."),
    model: str = typer.Option(..., "--model", metavar="NAME",
                              help="Model name the server serves (sent in each request)."),
    rates_rps: str = typer.Option(..., "--rates-rps", metavar="R,R,...",
                                  help="Arrival rates in req/s, e.g. 1,2,4 (run in increasing "
                                  "order)."),
    requests_per_rate: int = typer.Option(100, "--requests-per-rate", metavar="N",
                                          help="Requests sent at each rate."),
    out: Path = typer.Option(..., "--out", metavar="FILE.csv",
                             help="Profile table to write (rows are appended to an existing "
                             "one; same model, shape and rate replaced)."),
    shape: str | None = typer.Option(
        None, "--shape", metavar="gpu=G,tp=N,mps_share=S",
        help="Instance shape the server runs on (lets `plan --profiles` use the table)."),
    label: str | None = typer.Option(None, "--label", metavar="NAME",
                                     help="Model name written in the table (default --model; "
                                     "use the spec's model name)."),
    prompts: Path | None = typer.Option(None, "--prompts", metavar="FILE",
                                        help="Prompts: .txt (one a line), .jsonl or .json "
                                        "(prompt, optional output_tokens)."),
    workload: str | None = typer.Option(None, "--workload", metavar="FILE|SCENARIO",
                                        help="Draw prompts and output lengths from a workload "
                                        "file or built-in scenario."),
    input_tokens: int = typer.Option(256, "--input-tokens", metavar="N",
                                     help="Synthetic prompt length when no prompts are given."),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", metavar="K",
        help="Fixed output length (with ignore_eos where supported); default from the "
        "prompts, else 128."),
    arrival: str = typer.Option("poisson", "--arrival", metavar="poisson|gamma:CV",
                                help="Arrival process (gamma:CV, CV > 1 is burstier)."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Random seed."),
    api_key_env: str | None = typer.Option(None, "--api-key-env", metavar="VAR",
                                           help="Environment variable holding the API key."),
    concurrency_limit: int | None = typer.Option(
        None, "--concurrency-limit", metavar="C",
        help="At most C requests in flight (others wait in the client; the wait counts)."),
    timeout_s: float = typer.Option(300.0, "--timeout-s", metavar="S",
                                    help="Per-request limit, end to end."),
    requests_out: Path | None = typer.Option(None, "--requests-out", metavar="FILE.csv",
                                             help="Per-request rows (default OUT.requests.csv)."),
    ignore_eos: bool = typer.Option(True, "--ignore-eos/--no-ignore-eos", metavar="",
                                    help="Ask for exactly max_tokens (dropped if refused)."),
    early_stop: bool = typer.Option(True, "--early-stop/--no-early-stop", metavar="",
                                    help="Stop a rate whose queue grows without bound."),
    keep_going: bool = typer.Option(False, "--keep-going", metavar="",
                                    help="Run faster rates after a saturated one."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the result as JSON."),
) -> None:
    """Load-test an OpenAI-compatible server (open-loop arrivals) and write a measured profile."""
    job = run_or_exit(lambda: _job(
        endpoint, model, rates_rps, requests_per_rate, out, requests_out, shape, label, prompts,
        workload, input_tokens, max_tokens, arrival, seed, api_key_env, concurrency_limit,
        timeout_s, ignore_eos, early_stop, keep_going))
    run, rows = run_or_exit(lambda: _run(job))
    summary = _clean(_summary(run, job, rows))
    _warn_late_sends(summary)
    if as_json:
        print_json(summary)
    else:
        _show(summary)

