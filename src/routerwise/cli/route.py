"""``routerwise route``: routing for fixed per-model latency curves (DESIGN.md §6)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import typer
from rich.table import Table

from routerwise.cli._common import atomic_path, console, err_console, print_json, run_or_exit
from routerwise.errors import InputError
from routerwise.profiles.table import load_profiles
from routerwise.routing.inputs import build_problem
from routerwise.routing.problem import RoutingProblem, RoutingResult
from routerwise.routing.report import assignments_frame, route_payload
from routerwise.routing.solvers import solve
from routerwise.spec.scores_io import load_scores

log = logging.getLogger(__name__)


def route(
    scores: Path = typer.Option(..., "--scores", metavar="FILE", help="CSV/Parquet: prompt_id + "
                                "one score column per model (in [0, 1])."),
    profiles: Path = typer.Option(..., "--profiles", metavar="FILE",
                                  help="CSV: model, rate_rps, ttft_mean_ms."),
    rate_rps: float = typer.Option(..., "--rate-rps", metavar="R",
                                   help="Total arrival rate (requests/s)."),
    slo_ms: float = typer.Option(..., "--slo-ms", metavar="MS", help="Mean TTFT target (ms)."),
    solver: Literal["dual", "exact"] = typer.Option(
        "dual", "--solver", metavar="[dual|exact]", help="dual (fast prices) or exact (HiGHS LP)."),
    slo_scope: Literal["fleet", "per-model"] = typer.Option(
        "fleet", "--slo-scope", metavar="[fleet|per-model]", help="fleet: request-weighted mean "
        "over models ≤ SLO; per-model: each model's own mean ≤ SLO."),
    assignments_out: Path | None = typer.Option(None, "--assignments-out", metavar="FILE.csv",
                                                help="Write prompt_id, model, share CSV here."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the result as JSON."),
) -> None:
    """Route prompts among models with fixed latency curves to maximise quality within an SLO."""
    if solver not in ("dual", "exact"):
        raise typer.BadParameter(f"--solver {solver!r}: expected dual or exact")
    if slo_scope not in ("fleet", "per-model"):
        raise typer.BadParameter(f"--slo-scope {slo_scope!r}: expected fleet or per-model")
    if assignments_out is not None and assignments_out.suffix.lower() != ".csv":
        run_or_exit(lambda: _raise(f"--assignments-out {assignments_out}: must end in .csv"))
    scope: Literal["fleet", "per-model"] = "fleet" if slo_scope == "fleet" else "per-model"
    workload = run_or_exit(lambda: load_scores(scores))
    table = run_or_exit(lambda: load_profiles(profiles))
    problem, adjustments = run_or_exit(
        lambda: build_problem(workload, table, rate_rps, slo_ms, scope=scope))
    result = solve(problem, solver)
    warnings = [f"latency decreases with rate; made monotone: {a.describe()}"
                for a in adjustments]
    if result.feasible and assignments_out is not None and result.shares is not None:
        frame = assignments_frame(workload.prompt_ids, problem.models, result.shares)
        with atomic_path(assignments_out) as tmp:
            frame.to_csv(tmp, index=False)
    latency_inputs = (sorted(set(table.frame["provenance"].astype(str)))
                      if "provenance" in table.frame.columns else ["measured"])
    inputs = {"scores_input": workload.provenance, "latency_input": latency_inputs}
    if as_json:
        print_json(route_payload(problem, result, warnings, inputs))
    else:
        _render(problem, result)
    if not result.feasible:
        if not as_json:
            err_console.print(f"[bold red]{result.message}[/]", highlight=False)
        raise typer.Exit(2)


def _raise(message: str) -> None:
    raise InputError(message)


def _render(problem: RoutingProblem, result: RoutingResult) -> None:
    if not result.feasible:
        return
    table = Table(title=f"Routing ({result.solver}) at {problem.total_rps:g} req/s")
    for col in ("model", "share", "rate (req/s)", "mean TTFT (ms)", "price"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for k, m in enumerate(problem.models):
        table.add_row(m, f"{result.fractions[k]:.1%}", f"{result.rates_rps[k]:.2f}",
                      f"{result.latency_ms[k]:.1f}", f"{result.prices[k]:.4f}")
    console.print(table)
    ok = "[green]meets[/]" if result.fleet_ttft_ms <= problem.slo_ms * (1 + 1e-7) else "[red]misses"
    console.print(
        f"quality [bold]{result.quality:.4f}[/]  ·  mean TTFT {result.fleet_ttft_ms:.1f} ms "
        f"{ok} the {problem.slo_ms:g} ms SLO ({problem.scope})  ·  solved in "
        f"{result.solve_seconds * 1000:.0f} ms"
        + ("  ·  [yellow]convexified[/]" if result.convexified else "")
    )
