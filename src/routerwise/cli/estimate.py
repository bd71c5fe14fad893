"""``routerwise estimate``: a GPU-free latency profile of one instance shape (CSV; PNG plot)."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from routerwise.cli._common import (
    atomic_path,
    check_out_file,
    console,
    err_console,
    run_or_exit,
)
from routerwise.errors import InfeasibleError, InputError
from routerwise.profiles.estimator import (
    TokenLengths,
    estimate_profile_cached,
    lengths_from_workload,
)
from routerwise.profiles.table import ProfileTable
from routerwise.spec.catalog import get_gpu, get_model


def _lengths(workload: str | None, model: str, inp: int, out: int) -> TokenLengths:
    if workload is None:
        return TokenLengths.fixed(inp, out)
    path = Path(workload)
    if path.exists():
        from routerwise.spec.workload_io import load_workload

        return lengths_from_workload(load_workload(path), model)
    from routerwise.scenarios.registry import scenario_workload

    return lengths_from_workload(scenario_workload(workload), model)


def _parse_rates(text: str) -> tuple[float, ...]:
    """``--rates-rps 1,2.5,4``: positive, finite requests/s; the message names a bad value."""
    rates = []
    for part in (p.strip() for p in text.split(",")):
        try:
            value = float(part)
        except ValueError:
            raise InputError(f"--rates-rps {text}: {part!r} is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"--rates-rps {text}: {part} must be a positive, finite rate (req/s)")
        rates.append(value)
    return tuple(rates)


def _rates(rates_rps: str | None, sweep: bool) -> tuple[float, ...] | None:
    if sweep == (rates_rps is not None):
        raise InputError("give exactly one of --rates-rps a,b,c or --sweep")
    return None if rates_rps is None else _parse_rates(rates_rps)


def _preflight(out: Path, plot: Path | None, duration_s: float | None, num_requests: int) -> None:
    """Checks that need no work (well under a second), so a bad flag fails at once."""
    check_out_file(out, "--out", (".csv",))
    if plot is not None:
        check_out_file(plot, "--plot", (".png",))
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise InputError(f"--duration-s {duration_s}: must be a positive number of seconds")
    if num_requests < 1:
        raise InputError(f"--num-requests {num_requests}: must be >= 1")


def _summary(table: ProfileTable) -> None:
    frame = table.to_frame()
    console.print(
        frame[["rate_rps", "ttft_mean_ms", "ttft_p90_ms", "tpot_mean_ms", "throughput_rps"]]
        .round(2).to_string(index=False)
    )


def estimate(
    model: str = typer.Option(..., "--model", metavar="ID",
                              help="Model catalog id (see `routerwise catalog`)."),
    gpu: str = typer.Option(..., "--gpu", metavar="GPU",
                            help="GPU type (e.g. A100-SXM-80GB, h100)."),
    tp: int = typer.Option(1, "--tp", metavar="N", help="Tensor parallelism."),
    mps_share: float = typer.Option(1.0, "--mps-share", metavar="S",
                                    help="MPS compute share in (0, 1]."),
    rates_rps: str | None = typer.Option(None, "--rates-rps", metavar="R,R,...",
                                         help="Arrival rates in req/s, e.g. 1,2,4."),
    sweep: bool = typer.Option(False, "--sweep", metavar="",
                               help="Find saturation and sample up to it."),
    input_tokens: int = typer.Option(512, "--input-tokens", metavar="N",
                                     help="Fixed prompt length (tokens)."),
    output_tokens: int = typer.Option(128, "--output-tokens", metavar="N",
                                      help="Fixed output length (tokens)."),
    workload: str | None = typer.Option(
        None, "--workload", metavar="FILE|SCENARIO",
        help="Workload file or built-in scenario to draw lengths from.",
    ),
    duration_s: float | None = typer.Option(
        None, "--duration-s", metavar="S",
        help="Simulated seconds per rate (default: --num-requests).",
    ),
    num_requests: int = typer.Option(2000, "--num-requests", metavar="N",
                                     help="Requests per rate."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Random seed."),
    out: Path = typer.Option(..., "--out", metavar="FILE.csv", help="Profile CSV to write."),
    plot: Path | None = typer.Option(None, "--plot", metavar="FILE.png",
                                     help="Also draw the curves to this PNG."),
) -> None:
    """Estimate a latency profile without a GPU (aiconfigurator kernel data + engine simulation)."""

    def action() -> ProfileTable:
        _preflight(out, plot, duration_s, num_requests)
        rates = _rates(rates_rps, sweep)
        arch, spec = get_model(model), get_gpu(gpu)
        lengths = _lengths(workload, arch.id, input_tokens, output_tokens)
        with Progress(
            TextColumn(f"{arch.id} on {spec.name} tp={tp} share={mps_share}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=True,
        ) as bar:
            task = bar.add_task("rates", total=len(rates) if rates else None)
            return estimate_profile_cached(
                arch, spec, tp, mps_share, rates, lengths, num_requests=num_requests, seed=seed,
                duration_s=duration_s,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )

    try:
        table = run_or_exit(action)
    except InfeasibleError as exc:
        err_console.print(f"[bold red]infeasible:[/] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from exc
    with atomic_path(out) as tmp:
        table.to_csv(tmp)
    _summary(table)
    console.print(f"wrote {out}")
    if plot is not None:
        from routerwise.profiles.plot import plot_profile

        with atomic_path(plot) as tmp:
            plot_profile(table, tmp.with_suffix(".png"))
            tmp.with_suffix(".png").replace(tmp)
        console.print(f"wrote {plot}")
