"""``routerwise estimate``: a GPU-free latency profile of one instance shape (CSV; PNG plot)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from routerwise.cli._common import atomic_path, console, err_console, parse_csv_floats, run_or_exit
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


def _rates(rates_rps: str | None, sweep: bool) -> tuple[float, ...] | None:
    if sweep == (rates_rps is not None):
        raise InputError("give exactly one of --rates-rps a,b,c or --sweep")
    return None if rates_rps is None else parse_csv_floats(rates_rps, "--rates-rps")


def _summary(table: ProfileTable) -> None:
    frame = table.to_frame()
    console.print(
        frame[["rate_rps", "ttft_mean_ms", "ttft_p90_ms", "tpot_mean_ms", "throughput_rps"]]
        .round(2).to_string(index=False)
    )


def estimate(
    model: str = typer.Option(..., "--model", help="Model catalog id (see `routerwise catalog`)."),
    gpu: str = typer.Option(..., "--gpu", help="GPU type (e.g. A100-SXM-80GB, h100)."),
    tp: int = typer.Option(1, "--tp", help="Tensor parallelism."),
    mps_share: float = typer.Option(1.0, "--mps-share", help="MPS compute share in (0, 1]."),
    rates_rps: str | None = typer.Option(None, "--rates-rps", help="Rates, e.g. 1,2,4 (req/s)."),
    sweep: bool = typer.Option(False, "--sweep", help="Find saturation and sample up to it."),
    input_tokens: int = typer.Option(512, "--input-tokens", help="Fixed prompt length."),
    output_tokens: int = typer.Option(128, "--output-tokens", help="Fixed output length."),
    workload: str | None = typer.Option(
        None, "--workload", help="Workload file or built-in scenario to draw lengths from."
    ),
    duration_s: float | None = typer.Option(
        None, "--duration-s", help="Simulated seconds per rate (default: --num-requests)."
    ),
    num_requests: int = typer.Option(2000, "--num-requests", help="Requests per rate."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    out: Path = typer.Option(..., "--out", help="Profile CSV to write."),
    plot: Path | None = typer.Option(None, "--plot", help="Also draw the curves to this PNG."),
) -> None:
    """Estimate a latency profile without a GPU (aiconfigurator kernel data + engine simulation)."""

    def action() -> ProfileTable:
        arch, spec = get_model(model), get_gpu(gpu)
        lengths = _lengths(workload, arch.id, input_tokens, output_tokens)
        rates = _rates(rates_rps, sweep)
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
