"""``routerwise schema``: print (or write) the JSON schema of the spec file."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from routerwise.cli._common import atomic_path, console, print_json
from routerwise.spec.spec_file import spec_json_schema


def schema(
    out: Path | None = typer.Option(None, "--out", metavar="FILE",
                                   help="Write the schema to this file."),
) -> None:
    """The JSON schema of the YAML spec file."""
    payload = spec_json_schema()
    if out is None:
        print_json(payload)
        return
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    console.print(f"wrote {out}")
