"""``routerwise schema [spec|plan]``: print (or write) the JSON schema of a file contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from routerwise.cli._common import atomic_path, check_out_file, console, print_json, run_or_exit


class Subject(StrEnum):
    spec = "spec"
    plan = "plan"


def _schema_of(subject: str) -> dict[str, Any]:
    from routerwise.spec.plan import plan_json_schema
    from routerwise.spec.spec_file import spec_json_schema

    makers: dict[str, Callable[[], dict[str, Any]]] = {
        "spec": spec_json_schema, "plan": plan_json_schema}
    return makers[subject]()


def schema(
    subject: Subject = typer.Argument(Subject.spec, metavar="[spec|plan]",
                                      help="spec: the YAML spec file; plan: plan.json."),
    out: Path | None = typer.Option(None, "--out", metavar="FILE",
                                   help="Write the schema to this file."),
) -> None:
    """The JSON schema of the YAML spec file (default) or of plan.json."""
    if out is not None:
        run_or_exit(lambda: check_out_file(out, "--out", (".json",)))
    payload = _schema_of(subject.value)
    if out is None:
        print_json(payload)
        return
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    console.print(f"wrote {out}")
