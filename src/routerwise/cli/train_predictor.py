"""``routerwise train-predictor``: fit a quality predictor on a workload, report held-out quality.

Thin shell: parse, call :func:`routerwise.predict.train.train_predictor`, write the artifact
directory atomically (a temporary sibling renamed into place), print tables or ``report.json``.
"""

from __future__ import annotations

import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from routerwise.cli._common import console, err_console, print_json, run_or_exit
from routerwise.errors import InputError


class Kind(StrEnum):
    tfidf = "tfidf"
    knn = "knn"
    embedding = "embedding"
    task = "task"


class Format(StrEnum):
    auto = "auto"
    csv = "csv"
    parquet = "parquet"
    routerbench = "routerbench"
    llmrouter = "llmrouter"
    long = "long"


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out must be a directory, and this is a file")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise InputError(f"{out}: --out is a non-empty directory that is not a predictor; "
                         "choose a new or empty directory")


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``; an existing predictor at ``out`` is replaced only after that."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{tmp.name}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old)


def _load(path: Path, fmt: Format, task_file: Path | None) -> Any:
    from routerwise.spec.workload_io import load_workload

    return load_workload(path, fmt.value, task_file=task_file)


def _routing_table(report: dict[str, Any]) -> Table:
    routing, chosen = report["routing"], report["chosen_routing"]
    table = Table(title=f"held-out routing quality ({report['evaluated_on']}, "
                        f"{report['num_prompts']} prompts)")
    for col in ("best single", "random", "predictor", "oracle", "captured headroom"):
        table.add_column(col, justify="right")
    table.add_row(f"{routing['best_single']:.3f}", f"{routing['random']:.3f}",
                  f"{routing['predictor']:.3f}", f"{routing['oracle']:.3f}",
                  f"{routing['captured_headroom']:.1%}")
    table.caption = (f"best single model: {routing['best_single_model']}; predictor's estimate "
                     f"of its routing {chosen['predicted']:.3f} vs measured "
                     f"{chosen['measured']:.3f}")
    return table


def _model_table(report: dict[str, Any]) -> Table:
    table = Table(title="per model")
    for col in ("model", "AUC", "Brier", "Brier (constant)", "mean predicted", "mean observed"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for model, row in report["per_model"].items():
        auc = "—" if row["auc"] is None else f"{row['auc']:.3f}"
        table.add_row(model, auc, f"{row['brier']:.4f}", f"{row['brier_constant']:.4f}",
                      f"{row['mean_predicted']:.3f}", f"{row['mean_observed']:.3f}")
    return table


def train_predictor(
    workload: Path = typer.Option(..., "--workload", metavar="FILE",
                                  help="Training workload: prompts with per-model outcome labels."),
    out: Path = typer.Option(..., "--out", metavar="DIR",
                             help="Predictor directory to write (manifest, state, report.json)."),
    kind: Kind = typer.Option(Kind.tfidf, "--kind", help="Predictor kind."),
    folds: int = typer.Option(5, "--folds", metavar="K", min=2,
                              help="Folds for the out-of-fold report when --eval-on is not given."),
    eval_on: Path | None = typer.Option(None, "--eval-on", metavar="TEST_FILE",
                                        help="Held-out workload to report on (same models)."),
    fmt: Format = typer.Option(Format.auto, "--format", help="Format of the workload files."),
    task_file: Path | None = typer.Option(
        None, "--task-file", metavar="FILE", help="LLMRouter task names for --workload (JSONL)."),
    eval_task_file: Path | None = typer.Option(
        None, "--eval-task-file", metavar="FILE", help="LLMRouter task names for --eval-on."),
    seed: int = typer.Option(0, "--seed", metavar="S", help="Random seed (folds, calibration)."),
    as_json: bool = typer.Option(False, "--json", metavar="",
                                 help="Print report.json instead of tables."),
) -> None:
    """Train a quality predictor (expected score per model) and report held-out quality."""

    def action() -> Path:
        from routerwise.predict.artifact import save_predictor
        from routerwise.predict.train import train_predictor as train

        _check_out(out)
        train_set = _load(workload, fmt, task_file)
        held = None if eval_on is None else _load(eval_on, fmt, eval_task_file)
        run = train(train_set, kind.value, folds=folds, seed=seed, eval_workload=held)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            save_predictor(run.predictor, tmp, training=run.training, report=run.report)
            tmp.chmod(0o755)
            _replace_dir(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out / "report.json"

    report_path = run_or_exit(action)
    import json

    report = json.loads(report_path.read_text(encoding="utf-8"))
    if as_json:
        print_json(report)
        return
    console.print(_routing_table(report))
    console.print(_model_table(report))
    err_console.print(f"wrote {out}")
