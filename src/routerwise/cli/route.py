"""``routerwise route``: routing for fixed per-model latency curves (docs/architecture.md §4)."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Literal

import typer
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
from routerwise.plan.reroute import reroute_plan
from routerwise.predict.apply import predicted_workload
from routerwise.profiles.table import load_profiles
from routerwise.routing.inputs import build_problem
from routerwise.routing.problem import RoutingProblem, RoutingResult, SloScope
from routerwise.routing.report import assignments_frame, route_payload
from routerwise.routing.solvers import solve
from routerwise.spec.scores_io import load_scores
from routerwise.spec.workload import Workload

log = logging.getLogger(__name__)


def route(
    scores: Path | None = typer.Option(
        None, "--scores", metavar="FILE", help="Workload: CSV/Parquet with prompt_id + one score "
        "column per model in [0, 1] (with --plan: any workload format)."),
    profiles: Path | None = typer.Option(None, "--profiles", metavar="FILE",
                                         help="CSV: model, rate_rps, ttft_mean_ms (one shape "
                                         "per model)."),
    plan_path: Path | None = typer.Option(
        None, "--plan", metavar="PLAN", help="Re-route a plan's setup (plan.json or its "
        "directory; curves from its profiles.csv) instead of --profiles."),
    rate_rps: float | None = typer.Option(None, "--rate-rps", metavar="R",
                                          help="Total arrival rate (requests/s); with --plan "
                                          "defaults to the plan's."),
    slo_ms: float | None = typer.Option(None, "--slo-ms", metavar="MS",
                                        help="Mean TTFT target (ms); with --plan defaults to "
                                        "the plan's."),
    solver: Literal["dual", "exact"] = typer.Option(
        "dual", "--solver", metavar="[dual|exact]", help="dual (fast prices) or exact (HiGHS LP)."),
    slo_scope: Literal["fleet", "per-model"] = typer.Option(
        "fleet", "--slo-scope", metavar="[fleet|per-model]", help="fleet: request-weighted mean "
        "over models ≤ SLO; per-model: each model's own mean ≤ SLO."),
    assignments_out: Path | None = typer.Option(None, "--assignments-out", metavar="FILE.csv",
                                                help="Write prompt_id, model, share CSV here."),
    predictor: Path | None = typer.Option(
        None, "--predictor", metavar="DIR", help="Route on a trained predictor's scores (out "
        "of fold on its own training data); quality on truth is the labels'."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the result as JSON."),
) -> None:
    """Route prompts among models with fixed latency curves to maximise quality within an SLO."""
    if solver not in ("dual", "exact"):
        raise typer.BadParameter(f"--solver {solver!r}: expected dual or exact")
    if slo_scope not in ("fleet", "per-model"):
        raise typer.BadParameter(f"--slo-scope {slo_scope!r}: expected fleet or per-model")
    if assignments_out is not None:
        run_or_exit(lambda: check_out_file(assignments_out, "--assignments-out", (".csv",)))
    scope: Literal["fleet", "per-model"] = "fleet" if slo_scope == "fleet" else "per-model"
    run_or_exit(lambda: _check_inputs(scores, profiles, plan_path, rate_rps, slo_ms))
    problem, workload, warnings, latency_inputs = run_or_exit(
        lambda: _problem(scores, profiles, plan_path, rate_rps, slo_ms, scope, predictor))
    result = solve(problem, solver)
    if result.feasible and assignments_out is not None and result.shares is not None:
        frame = assignments_frame(workload.prompt_ids, problem.models, result.shares)
        with atomic_path(assignments_out) as tmp:
            frame.to_csv(tmp, index=False)
    inputs = {"scores_input": workload.provenance, "scores": workload.score_source,
              "latency_input": latency_inputs}
    if workload.is_oracle:
        warnings.append("the scores are outcome labels: this routing is an ORACLE (an upper "
                        "bound no deployment reaches), not a prediction")
    if as_json:
        payload = route_payload(problem, result, warnings, inputs)
        if result.feasible and result.shares is not None and workload.truth is not None \
                and not workload.is_oracle:
            payload["quality_truth"] = float((workload.truth * result.shares).sum()
                                             / workload.num_prompts)
        print_json(payload)
    else:
        for w in warnings:
            err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
        _render(problem, result)
    if not result.feasible:
        if not as_json:
            err_console.print(f"[bold red]{result.message}[/]", highlight=False)
        raise typer.Exit(2)


def _problem(scores: Path | None, profiles: Path | None, plan_path: Path | None,
             rate_rps: float | None, slo_ms: float | None, scope: SloScope,
             predictor: Path | None = None,
             ) -> tuple[RoutingProblem, Workload, list[str], list[str]]:
    """The routing problem from a plan, or from a score file and a profile table."""
    if plan_path is not None:
        rerouted = reroute_plan(plan_path, rate_rps=rate_rps, slo_ms=slo_ms, scores=scores,
                                predictor=predictor)
        return (replace(rerouted.problem, scope=scope), rerouted.workload, [],
                list(rerouted.latency_provenance))
    assert scores is not None and profiles is not None
    assert rate_rps is not None and slo_ms is not None
    workload = load_scores(scores)
    if predictor is not None:
        workload = predicted_workload(workload, predictor)
    table = load_profiles(profiles)
    problem, adjustments = build_problem(workload, table, rate_rps, slo_ms, scope=scope)
    warnings = [f"latency decreases with rate; made monotone: {a.describe()}"
                for a in adjustments]
    latency_inputs = (sorted(set(table.frame["provenance"].astype(str)))
                      if "provenance" in table.frame.columns else ["measured"])
    return problem, workload, warnings, latency_inputs


def _check_inputs(scores: Path | None, profiles: Path | None, plan: Path | None,
                  rate_rps: float | None, slo_ms: float | None) -> None:
    """Which inputs go together; numbers must be positive and finite."""
    if plan is not None and profiles is not None:
        raise InputError("give --plan or --profiles, not both (a plan carries its curves)")
    if plan is None:
        missing = [flag for flag, v in (("--scores", scores), ("--profiles", profiles),
                                        ("--rate-rps", rate_rps), ("--slo-ms", slo_ms))
                   if v is None]
        if missing:
            raise InputError(f"missing {', '.join(missing)} (or give --plan PLAN.json)")
    for flag, value in (("--rate-rps", rate_rps), ("--slo-ms", slo_ms)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"{flag} {value!r}: must be a positive, finite number")


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
