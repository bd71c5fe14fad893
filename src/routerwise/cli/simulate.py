"""``routerwise simulate``: a discrete-event simulation of a plan's cluster, request by request
(``routerwise.simulate``), with every predicted number beside its simulated value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from routerwise.cli._common import (
    atomic_path,
    check_out_file,
    console,
    err_console,
    print_json,
    run_or_exit,
)
from routerwise.errors import InfeasibleError, InputError


def _fmt(value: Any, spec: str = ".4g") -> str:
    return "—" if value is None else format(value, spec)


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value:+.1%}"


def _ci(payload: dict[str, Any], key: str, spec: str = ".4g") -> str:
    ci = payload["ci95"].get(key)
    return "—" if ci is None else f"[{ci[0]:{spec}}, {ci[1]:{spec}}]"


def _fleet_table(p: dict[str, Any]) -> Table:
    t = Table(title=f"Simulated {p['simulated']}: {p['requests']:,} requests measured "
              f"({p['completed']:,} completed), {p['arrivals']} at {p['rate_rps']:.4g} req/s")
    for col in ("metric", "simulated", "95% CI", "predicted", "error"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    pred, err = p["predicted"], p["errors"]
    t.add_row("mean TTFT (ms)", _fmt(p["ttft_mean_ms"]), _ci(p, "ttft_mean_ms"),
              _fmt(pred["ttft_mean_ms"]), _pct(err["ttft_mean"]))
    for key, label in (("ttft_p50_ms", "p50 TTFT (ms)"), ("ttft_p90_ms", "p90 TTFT (ms)"),
                       ("ttft_p99_ms", "p99 TTFT (ms)"), ("tpot_mean_ms", "mean TPOT (ms)"),
                       ("e2e_mean_ms", "mean E2E (ms)")):
        t.add_row(label, _fmt(p[key]), _ci(p, key), "", "")
    t.add_row(f"TTFT ≤ {p['slo']['target_ms']:g} ms",
              _fmt(p["slo_attainment"], ".1%"), _ci(p, "slo_attainment", ".1%"), "", "")
    q = p["quality"]
    t.add_row(f"quality ({q['score_source']})", _fmt(q["predicted"]), _ci(p, "quality"),
              _fmt(pred["quality"]), _fmt(err["quality"], "+.4f"))
    if q["truth"] is not None:
        t.add_row("quality on truth", _fmt(q["truth"]), _ci(p, "quality_truth"),
                  _fmt(pred["quality_truth"]), _fmt(err["quality_truth"], "+.4f"))
    return t


def _model_table(p: dict[str, Any]) -> Table:
    t = Table(title="Per model (TTFT means in ms; plan: its prediction)")
    cols = ("model", "deployment", "req/s", "TTFT", "plan", "error", "p99", "busy", "slow")
    for col in cols:
        t.add_column(col, justify="left" if col in ("model", "deployment") else "right",
                     no_wrap=col in ("model", "deployment"))
    for m, d in p["per_model"].items():
        err = d["error"]["ttft_mean"]
        t.add_row(m, d["deployment"] or "—", _fmt(d["rate_rps"], ".3g"),
                  _fmt(d["ttft_mean_ms"], ".3g"), _fmt(d["predicted"]["ttft_mean_ms"], ".3g"),
                  "—" if err is None else f"{err:+.0%}", _fmt(d["ttft_p99_ms"], ".3g"),
                  _fmt(d["utilisation"], ".0%"), _fmt(d["interference_slowdown"], ".2f"))
    return t


def _render(p: dict[str, Any]) -> None:
    console.print(_fleet_table(p))
    console.print(_model_table(p))
    console.print(f"busy: share of time its engines ran steps; slow: step-time factor from "
                  f"MPS co-runners ({p['interference']['model']}). CI: {p['ci95']['method']}; "
                  f"warm-up {p['warmup_s']:g} s excluded; {p['steps']:,} engine steps in "
                  f"{p['wall_s']:.1f} s", highlight=False)


def _simulate(plan: Path, baseline: str | None, duration_s: float, seed: int, arrivals: str,
              rate_rps: float | None, warmup_s: float | None, replications: int,
              interference: str, find_max_rate: bool) -> dict[str, Any]:
    from routerwise.simulate.arrivals import parse_arrivals
    from routerwise.simulate.capacity import MAX_FACTOR, sustainable_rate_rps
    from routerwise.simulate.diagnose import diagnose
    from routerwise.simulate.inputs import load_target
    from routerwise.simulate.interference import parse_interference
    from routerwise.simulate.report import report_dict
    from routerwise.simulate.run import SimOptions, simulate_target

    options = SimOptions(duration_s=duration_s, seed=seed, arrivals=parse_arrivals(arrivals),
                         rate_rps=rate_rps, warmup_s=warmup_s, replications=replications,
                         interference=parse_interference(interference))
    target = load_target(plan, baseline)
    with Progress(TextColumn(f"simulating {target.name}"), BarColumn(),
                  TextColumn("{task.completed:.0f}/{task.total:.0f} s simulated"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task("simulate", total=duration_s * replications)
        report = simulate_target(
            target, options, lambda done, total: bar.update(task, completed=done, total=total))
    diag = diagnose(report)
    sustainable = None
    if find_max_rate:
        with Progress(TextColumn("searching the sustainable rate"), BarColumn(),
                      TextColumn("{task.completed:.0f}/{task.total:.0f} probes"),
                      TimeElapsedColumn(), console=err_console, transient=True) as bar:
            task = bar.add_task("probes", total=12)
            sustainable = sustainable_rate_rps(
                target, options, lambda done, total: bar.update(task, completed=done,
                                                                total=total))
    payload = report_dict(report, diag, sustainable)
    if find_max_rate:
        planned = target.planned.rate_rps
        start = rate_rps or planned
        at_least = sustainable is not None and sustainable >= MAX_FACTOR * start * (1 - 1e-9)
        payload["warnings"].append(
            "in simulation this setup and routing sustain "
            + (f"{'at least ' if at_least else ''}{sustainable:.4g} req/s"
               if sustainable is not None else "no probed rate")
            + f" within the SLO (stable, mean TTFT ≤ {target.plan.slo.target_ms:g} ms); the "
            f"plan was made for {planned:.4g} req/s")
    return payload


def simulate(
    plan: Path = typer.Argument(..., metavar="PLAN",
                                help="plan.json or the directory holding it."),
    duration_s: float = typer.Option(..., "--duration-s", metavar="S",
                                     help="Simulated seconds of arrivals (per replication)."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Random seed."),
    arrivals: str = typer.Option("poisson", "--arrivals", metavar="poisson|gamma:CV|trace:FILE",
                                 help="Arrival process: poisson, gamma:CV (gamma gaps with that "
                                 "coefficient of variation) or trace:FILE (arrival_s column)."),
    rate_rps: float | None = typer.Option(None, "--rate-rps", metavar="R",
                                          help="Total arrival rate (req/s); default the "
                                          "plan's (a trace: as recorded)."),
    baseline: str | None = typer.Option(None, "--baseline", metavar="NAME",
                                        help="Simulate this baseline's setup from the plan "
                                        "(equal_split, size_proportional, isolated, "
                                        "best_single_model)."),
    warmup_s: float | None = typer.Option(None, "--warmup-s", metavar="S",
                                          help="Arrivals before this are not measured "
                                          "(default 10% of the duration, at most 300 s)."),
    replications: int = typer.Option(1, "--replications", metavar="N",
                                     help="Independent runs (seeds spawned from --seed); 2 or "
                                     "more give confidence intervals over runs."),
    interference: str = typer.Option("bandwidth", "--interference",
                                     metavar="none|bandwidth[:KEY=V,...]",
                                     help="MPS co-runner model: none, or bandwidth with "
                                     "bandwidth=0.28,compute=0 (simulate/interference.py)."),
    find_max_rate: bool = typer.Option(False, "--find-max-rate", metavar="",
                                       help="Also search the highest rate this setup sustains "
                                       "within the SLO in simulation (about a dozen shorter "
                                       "runs)."),
    out: Path | None = typer.Option(None, "--out", metavar="FILE.json",
                                    help="Also write the JSON report here."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the report as JSON."),
) -> None:
    """Simulate a plan's cluster request by request and compare with its predictions."""

    def action() -> dict[str, Any]:
        if out is not None:
            check_out_file(out, "--out", (".json",))
        if not plan.exists():
            raise InputError(f"PLAN {plan}: does not exist")
        return _simulate(plan, baseline, duration_s, seed, arrivals, rate_rps, warmup_s,
                         replications, interference, find_max_rate)

    try:
        payload = run_or_exit(action)
    except InfeasibleError as exc:
        err_console.print(f"[bold red]infeasible:[/] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from exc
    if out is not None:
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n",
                           encoding="utf-8")
    if as_json:
        print_json(payload)
    else:
        _render(payload)
    for w in payload["warnings"]:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
