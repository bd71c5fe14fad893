"""Shared shell helpers for CLI commands: error → exit code mapping, JSON, atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from routerwise.errors import InfeasibleError, RouterWiseError

T = TypeVar("T")

#: Human output goes to stdout; warnings and errors to stderr so ``--json`` stays parseable.
console = Console()
err_console = Console(stderr=True)


def parse_csv_floats(text: str, flag: str) -> tuple[float, ...]:
    """Parse ``"1,2.5,4"`` into floats; names ``flag`` on failure."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"{flag}={text!r} must be comma-separated numbers") from exc


def run_or_exit(action: Callable[[], T]) -> T:
    """Run ``action``; turn RouterWise errors into a red message and their exit code."""
    try:
        return action()
    except InfeasibleError:
        raise  # callers render infeasible results themselves
    except RouterWiseError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from exc


def print_json(payload: Any) -> None:
    """Print ``payload`` as JSON on stdout (no rich markup, no wrapping)."""
    typer.echo(json.dumps(payload, indent=2, sort_keys=False, allow_nan=False))


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it into place only if the block succeeds.

    Nothing half-written is ever left at ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
