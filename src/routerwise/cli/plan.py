"""``routerwise plan``: choose how to split a GPU cluster among LLMs and how to route."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from routerwise.cli._common import atomic_path, console, err_console, print_json, run_or_exit
from routerwise.errors import InfeasibleError
from routerwise.plan.plots import latency_curves_png, quality_spread_png
from routerwise.plan.run import PlanRun, make_plan
from routerwise.profiles.table import load_profiles
from routerwise.search.search import SearchConfig


def plan(
    scenario: Literal["h100-mixed", "paper-a100-3m", "paper-a100-4m"] | None = typer.Argument(
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
    executor: Literal["serial", "process"] = typer.Option(
        "process", "--executor", metavar="[serial|process]", help="serial or process."),
    workers: int | None = typer.Option(None, "--workers", metavar="N",
                                       help="Processes (default: CPUs)."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Also print plan.json."),
) -> None:
    """Plan GPUs (tp, replicas, MPS share per model) and routing prices within a latency SLO."""
    from routerwise.plan.inputs import resolve_spec

    spec_obj, source, spec_path = run_or_exit(lambda: resolve_spec(scenario, spec, rate_rps,
                                                                     slo_ms))
    tables = [run_or_exit(lambda p=p: load_profiles(p)) for p in profiles]  # type: ignore[misc]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True,
                  disable=as_json) as bars:
        shapes_bar = bars.add_task("latency profiles", total=None)
        search_bar = bars.add_task("setups", total=None, visible=False)
        try:
            run = run_or_exit(lambda: make_plan(
                spec_obj, source, spec_path, supplied=tables,
                config=SearchConfig(executor=executor, workers=workers),
                profile_progress=lambda i, n, what: bars.update(
                    shapes_bar, completed=i, total=n, description=f"profiles: {what}"),
                search_progress=lambda i, n: bars.update(
                    search_bar, completed=i, total=n, visible=True,
                    description="evaluating setups"),
            ))
        except InfeasibleError as exc:
            err_console.print(f"[bold red]{exc}[/]", highlight=False)
            raise typer.Exit(2) from exc
    _write(run, out)
    if as_json:
        print_json(run.plan.doc)
    else:
        _render(run, out)
    if not run.plan.doc["feasible"]:
        err_console.print(f"[bold red]{run.plan.doc['infeasible']['message']}[/]",
                          highlight=False)
        raise typer.Exit(2)


def _write(run: PlanRun, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    doc = run.plan.doc
    with atomic_path(out / "plan.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    slo = doc["slo"]["target_ms"]
    title = f"{doc['scenario']}: {doc['rate_rps']:g} req/s, mean TTFT ≤ {slo:g} ms"
    chosen = doc["quality"]["predicted"]
    with atomic_path(out / "quality_spread.png") as tmp:
        quality_spread_png(tmp, run.plan.feasible_qualities, run.plan.baseline_qualities,
                           chosen, title)
    if run.plan.chosen is not None:
        per_model = doc["predicted"]["per_model"]
        points = {m: (v["rate_rps"], v["ttft_mean_ms"]) for m, v in per_model.items()
                  if v["ttft_mean_ms"] is not None}
        with atomic_path(out / "latency_curves.png") as tmp:
            latency_curves_png(tmp, run.chosen_curves(), points, doc["slo"]["target_ms"],
                               title)


def _fmt(v: Any, spec: str = ".4f") -> str:
    return "—" if v is None else format(v, spec)


def _render(run: PlanRun, out: Path) -> None:
    doc = run.plan.doc
    if doc["feasible"]:
        setup = Table(title=f"Setup on {doc['cluster']['num_gpus']}× {doc['cluster']['gpu_type']}")
        for col in ("model", "tp", "MPS share", "GPU ids"):
            setup.add_column(col)
        for inst in doc["setup"]:
            setup.add_row(inst["model"], str(inst["tp"]), f"{inst['mps_share']:.0%}",
                          ",".join(map(str, inst["gpu_ids"])))
        console.print(setup)
        routing = Table(title=f"Routing at {doc['rate_rps']:g} req/s")
        for col in ("model", "deployment", "share", "rate (req/s)", "mean TTFT (ms)", "price"):
            routing.add_column(col, justify="left" if col in ("model", "deployment") else "right")
        for m, v in doc["predicted"]["per_model"].items():
            routing.add_row(m, v["deployment"] or "not deployed",
                            f"{doc['routing']['fractions'][m]:.1%}", f"{v['rate_rps']:.2f}",
                            _fmt(v["ttft_mean_ms"], ".1f"), _fmt(doc["routing"]["prices"][m]))
        console.print(routing)
        q = doc["quality"]
        console.print(
            f"quality [bold]{q['predicted']:.4f}[/] predicted"
            + (f", {q['truth']:.4f} on truth" if q["truth"] is not None else "")
            + f"  ·  mean TTFT {doc['predicted']['ttft_mean_ms']:.1f} ms ≤ SLO "
            f"{doc['slo']['target_ms']:g} ms")
    base = Table(title="Baselines (routing optimised for each)")
    for col in ("baseline", "feasible", "quality", "vs RouterWise"):
        base.add_column(col)
    mine = doc["quality"]["predicted"]
    for name, b in doc["baselines"].items():
        gain = (f"{mine / b['quality'] - 1:+.1%}" if mine and b["quality"] else "—")
        base.add_row(name, "yes" if b["feasible"] else "no", _fmt(b["quality"]), gain)
    console.print(base)
    s = doc["search"]
    spread = f"{s['spread']:.0%}" if s["spread"] is not None else "—"
    console.print(
        f"search: {s['enumerated']:,} enumerated, {s['retained']:,} retained (placeable), "
        f"{s['dominated']:,} dominated, {s['evaluated']:,} evaluated, "
        f"{s['pruned_by_bound']:,} pruned by bound, in {s['seconds']:.1f} s  ·  quality spread "
        f"over feasible setups {_fmt(s['quality_min'], '.3f')}–{_fmt(s['quality_max'], '.3f')} "
        f"({spread})")
    console.print(f"wrote {out / 'plan.json'}, {out / 'quality_spread.png'}"
                  + (f", {out / 'latency_curves.png'}" if doc["feasible"] else ""))
