"""``routerwise plan``: choose how to split a GPU cluster among LLMs and how to route."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from routerwise.cli._common import (
    check_out_dir,
    console,
    err_console,
    print_json,
    replace_dir_contents,
    run_or_exit,
)
from routerwise.errors import InfeasibleError, InputError
from routerwise.plan.plots import latency_curves_png, quality_spread_png
from routerwise.plan.run import PlanRun, make_plan, profiles_frame
from routerwise.profiles.table import load_profiles
from routerwise.search.search import SearchConfig
from routerwise.spec.plan import PLAN_FILE, PROFILES_FILE, Plan, dump_plan, plan_to_dict

#: Every file ``plan`` may write into ``--out`` (removed when a new run does not write it).
OUTPUT_FILES = (PLAN_FILE, PROFILES_FILE, "quality_spread.png", "latency_curves.png")


def plan(
    scenario: Literal[
        "fleet-16m-64g", "h100-mixed", "mixed-h100-a100", "paper-a100-3m", "paper-a100-4m"
    ] | None = typer.Argument(
        None, metavar="SCENARIO", help="Built-in scenario (default h100-mixed)."),
    spec: Path | None = typer.Option(None, "--spec", metavar="FILE",
                                     help="YAML spec file instead."),
    rate_rps: float | None = typer.Option(None, "--rate-rps", metavar="R",
                                          help="Override the arrival rate (req/s)."),
    slo_ms: float | None = typer.Option(None, "--slo-ms", metavar="MS",
                                        help="Override the mean-TTFT SLO (ms)."),
    out: Path = typer.Option(..., "--out", metavar="DIR",
                             help="Directory for plan.json and the plots."),
    profiles: list[Path] = typer.Option([], "--profiles", metavar="FILE",
                                        help="Profile CSVs to use before "
                                        "estimating (rows with gpu, tp, mps_share)."),
    search: Literal["lagrangian", "exhaustive"] = typer.Option(
        "lagrangian", "--search", metavar="[lagrangian|exhaustive]",
        help="lagrangian: scales to many models and GPUs and reports a proven upper bound "
        "and gap; exhaustive: every placeable setup (small problems, the reference)."),
    executor: Literal["serial", "process", "ray"] = typer.Option(
        "process", "--executor", metavar="[serial|process|ray]",
        help="Where setups are evaluated: serial, process (a local pool) or ray (pip "
        "install 'routerwise[ray]')."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", metavar="ADDR", help="Ray cluster to join with --executor "
        "ray (default: start a local one; 'auto' joins a running one)."),
    workers: int | None = typer.Option(None, "--workers", metavar="N",
                                       help="Processes (default: CPUs)."),
    predictor: Path | None = typer.Option(
        None, "--predictor", metavar="DIR", help="Route on a trained predictor's scores "
        "(routerwise train-predictor; out of fold on its own training data) and report quality "
        "on the workload's labels."),
    no_correction: bool = typer.Option(
        False, "--no-correction", metavar="", help="Use estimated curves as estimated even "
        "where --profiles measure other shapes of the same model (no time-scale correction)."),
    no_fixed_point: bool = typer.Option(
        False, "--no-length-fixed-point", metavar="", help="Keep the search's curves (the "
        "workload's lengths, an even split over replicas) instead of re-estimating the chosen "
        "setup's with the lengths routed to each model (docs/simulate.md)."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Also print plan.json."),
) -> None:
    """Plan GPUs (tp, replicas, MPS share per model) and routing prices within a latency SLO."""
    from routerwise.plan.inputs import resolve_spec

    run_or_exit(lambda: _preflight(out, workers, executor, ray_address))
    spec_obj, source, spec_path = run_or_exit(lambda: resolve_spec(scenario, spec, rate_rps,
                                                                     slo_ms))
    tables = [run_or_exit(lambda p=p: load_profiles(p)) for p in profiles]  # type: ignore[misc]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True,
                  disable=as_json) as bars:
        shapes_bar = bars.add_task("latency profiles", total=None)
        search_bar = bars.add_task("searching setups", total=None, visible=False)

        def on_profile(i: int, n: int, what: str) -> None:
            bars.update(shapes_bar, completed=i, total=n, description=f"profiles: {what}")
            if i == n:  # enumeration starts next: say so rather than look frozen
                bars.update(search_bar, visible=True)

        try:
            run = run_or_exit(lambda: make_plan(
                spec_obj, source, spec_path, supplied=tables, predictor=predictor,
                correct=not no_correction, settle_lengths=not no_fixed_point,
                config=SearchConfig(method=search, executor=executor, workers=workers,
                                    ray_address=ray_address),
                profile_progress=on_profile,
                enumeration_progress=lambda n: bars.update(
                    search_bar, visible=True,
                    description=f"enumerating setups: {n:,} placements walked (2 passes)"),
                search_progress=lambda i, n: bars.update(
                    search_bar, completed=i, total=n, visible=True,
                    description="solving setups"),
            ))
        except InfeasibleError as exc:
            err_console.print(f"[bold red]{exc}[/]", highlight=False)
            raise typer.Exit(2) from exc
    run_or_exit(lambda: _write(run, out))
    plan_doc = plan_to_dict(run.built.plan)
    if as_json:
        print_json(plan_doc)
    else:
        _render(run, out)
    infeasible = run.built.plan.infeasible
    if infeasible is not None:
        err_console.print(f"[bold red]{infeasible.message}[/]", highlight=False)
        raise typer.Exit(2)


def _preflight(out: Path, workers: int | None, executor: str, ray_address: str | None
               ) -> None:
    check_out_dir(out, "--out")
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: must be >= 1")
    if ray_address is not None and executor != "ray":
        raise InputError(f"--ray-address {ray_address}: only with --executor ray")


def _title(plan: Plan) -> str:
    return (f"{plan.scenario}: {plan.rate_rps:g} req/s, mean TTFT ≤ "
            f"{plan.slo.target_ms:g} ms")


def _write(run: PlanRun, out: Path) -> None:
    """plan.json, profiles.csv and the plots; an older run's files never stay beside them."""
    built = run.built
    plan = built.plan
    base_q = {n: b.quality for n, b in plan.baselines.items()}

    def spread_png(tmp: Path) -> None:
        quality_spread_png(tmp, built.feasible_qualities, base_q, plan.quality.predicted,
                           _title(plan), infeasible=plan.infeasible is not None)

    def plan_json(tmp: Path) -> None:
        tmp.write_text(dump_plan(plan), encoding="utf-8")

    files: dict[str, Callable[[Path], None]] = {
        PLAN_FILE: plan_json,
        PROFILES_FILE: lambda tmp: profiles_frame(run.shapes).to_csv(tmp, index=False),
        "quality_spread.png": spread_png,
    }
    if plan.feasible:
        points = {m: (v.rate_rps, v.ttft_mean_ms) for m, v in plan.predicted.per_model.items()
                  if v.ttft_mean_ms is not None}
        labels = {d.model: f"{d.model} {d.describe()}" for d in plan.deployments}
        files["latency_curves.png"] = lambda tmp: latency_curves_png(
            tmp, run.chosen_curves(), points, plan.slo.target_ms, _title(plan), labels)
    replace_dir_contents(out, files, owned=OUTPUT_FILES)


def _fmt(v: Any, spec: str = ".4f") -> str:
    return "—" if v is None else format(v, spec)


def _render(run: PlanRun, out: Path) -> None:
    plan = run.built.plan
    if plan.feasible:
        _render_setup(plan)
        _render_quality(plan)
    for w in plan.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    _render_baselines(plan)
    _render_search(plan)
    written = [PLAN_FILE, PROFILES_FILE, "quality_spread.png"]
    written += ["latency_curves.png"] if plan.feasible else []
    console.print(f"wrote {', '.join(str(out / f) for f in written)}", highlight=False)


def _render_setup(plan: Plan) -> None:
    c = plan.cluster
    where = (" + ".join(f"{p.num_gpus}× {p.gpu_type} (GPUs {p.first_gpu}–"
                        f"{p.first_gpu + p.num_gpus - 1})" for p in c.pools)
             if c.pools else f"{c.num_gpus}× {c.gpu_type}")
    setup = Table(title=f"Setup on {where}")
    for col in ("model", "GPU", "tp", "MPS share", "GPU ids"):
        setup.add_column(col, no_wrap=True, overflow="fold")
    for inst in plan.setup:
        setup.add_row(inst.model, inst.gpu_type, str(inst.tp), f"{inst.mps_share:.0%}",
                      ",".join(map(str, inst.gpu_ids)))
    console.print(setup)
    routing = Table(title=f"Routing at {plan.rate_rps:g} req/s")
    widest = max(len(m) for m in plan.models)
    for col in ("model", "deployment", "share", "req/s", "capacity", "mean TTFT ms", "price"):
        left = col in ("model", "deployment")
        routing.add_column(col, justify="left" if left else "right", no_wrap=left,
                           min_width=widest if col == "model" else None)
    for m, v in plan.predicted.per_model.items():
        routing.add_row(m, v.deployment or "not deployed", f"{plan.routing.fractions[m]:.1%}",
                        f"{v.rate_rps:.2f}", _fmt(v.capacity_rps, ".2f"),
                        _fmt(v.ttft_mean_ms, ".1f"), _fmt(plan.routing.prices.get(m)))
    console.print(routing)


def _render_quality(plan: Plan) -> None:
    q = plan.quality
    if q.score_source == "oracle":
        head = (f"quality [bold]{_fmt(q.predicted)}[/] [yellow]ORACLE[/] (routed on the "
                "outcome labels; no deployment reaches it — use a predictor)")
    else:
        head = (f"quality [bold]{_fmt(q.predicted)}[/] {q.score_source}"
                + (f", {q.truth:.4f} on truth" if q.truth is not None else ""))
    console.print(f"{head}  ·  mean TTFT {_fmt(plan.predicted.ttft_mean_ms, '.1f')} ms ≤ SLO "
                  f"{plan.slo.target_ms:g} ms", highlight=False)


def _render_baselines(plan: Plan) -> None:
    base = Table(title="Baselines (routing optimised for each)")
    for col in ("baseline", "feasible", "quality", "on truth", "vs RouterWise"):
        base.add_column(col)
    mine = plan.quality.predicted
    for name, b in plan.baselines.items():
        gain = f"{mine / b.quality - 1:+.1%}" if mine and b.quality else "—"
        base.add_row(name, "yes" if b.feasible else "no", _fmt(b.quality),
                     _fmt(b.quality_truth), gain)
    console.print(base)


def _render_search(plan: Plan) -> None:
    s = plan.search
    spread = f"{s.spread:.0%}" if s.spread is not None else "—"
    tail = (f"in {s.seconds:.1f} s  ·  quality spread {_fmt(s.quality_min, '.3f')}–"
            f"{_fmt(s.quality_max, '.3f')} ({spread})")
    bound = ("" if s.upper_bound is None else
             f"  ·  upper bound {s.upper_bound:.4f}, gap {_fmt(s.gap, '.2%')}")
    if s.method == "lagrangian":
        console.print(
            f"search (lagrangian): {s.enumerated:,} combinations, none enumerated: "
            f"{s.dual_iterations} dual points priced by HiGHS, {s.evaluated:,} setups solved "
            f"(+ {s.baselines_evaluated} baseline setups) {tail}{bound}", highlight=False)
        return
    console.print(
        f"search: {s.enumerated:,} enumerated → {s.retained:,} placeable = {s.dominated:,} "
        f"dominated + {s.non_dominated:,} non-dominated = {s.evaluated:,} solved + "
        f"{s.pruned_by_bound:,} pruned by bound + {s.over_capacity:,} over capacity "
        f"(+ {s.baselines_evaluated} baseline setups) {tail}{bound}",
        highlight=False)
