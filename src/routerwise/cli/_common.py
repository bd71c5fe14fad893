"""Shared shell helpers for CLI commands: error → exit code mapping, JSON, output-path
preflight checks (before any work), atomic writes and replacing a run's output files."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from routerwise.errors import InfeasibleError, InputError, RouterWiseError

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


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (``Path.exists`` is False under a file)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def _check_creatable(path: Path, flag: str) -> None:
    """``path`` does not exist; its nearest existing ancestor must be a writable directory."""
    if path.is_symlink():
        raise InputError(f"{flag} {path}: a dangling symbolic link")
    ancestor = _nearest_existing(path.absolute())
    if not ancestor.is_dir():
        raise InputError(f"{flag} {path}: cannot be created, {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: cannot be created, {ancestor} is not writable")


def check_out_dir(path: Path, flag: str) -> None:
    """Preflight an output directory (no side effects): a writable directory, or creatable.

    Raises ``InputError`` naming ``flag`` and ``path`` when it is a file, lies under a file,
    or cannot be written; cheap, so commands call it before any work.
    """
    if not path.exists():
        _check_creatable(path, flag)
    elif not path.is_dir():
        raise InputError(f"{flag} {path}: is a file, not a directory")
    elif not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: the directory is not writable")


def check_out_file(path: Path, flag: str, suffixes: tuple[str, ...] = ()) -> None:
    """Preflight an output file (no side effects): not a directory, a suffix in ``suffixes``
    (lower case; any when empty), and a parent that is a writable directory or creatable.

    Files are written by ``atomic_path`` (a temp file renamed over the target), so a
    read-only existing file can still be replaced; only its directory must be writable.
    """
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a directory, not a file")
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{flag} {path}: must end in {' or '.join(suffixes)}")
    if not path.exists():
        _check_creatable(path, flag)
    elif not os.access(path.absolute().parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: cannot be replaced, its directory is not writable")


#: Names of the files the last ``replace_dir_contents`` wrote into a directory.
MANIFEST_NAME = ".routerwise-outputs.json"

Writer = Callable[[Path], None]


def _check_names(names: Iterable[str], out_dir: Path) -> None:
    for name in names:
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or name in ("", ".", MANIFEST_NAME):
            raise ValueError(f"{name!r} is not a file name inside {out_dir}")


def _previous_outputs(out_dir: Path) -> set[str]:
    try:
        names = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(names, list):
        return set()
    valid = [n for n in names if isinstance(n, str)]
    try:
        _check_names(valid, out_dir)
    except ValueError:
        return set()  # a tampered manifest: remove nothing rather than something unexpected
    return set(valid)


def _remove_stale(out_dir: Path, names: set[str]) -> None:
    for name in sorted(names):
        target = out_dir / name
        if target.is_file() or target.is_symlink():
            target.unlink()
        for parent in target.parents:  # prune directories the stale files leave empty
            if parent == out_dir or not parent.is_relative_to(out_dir):
                break
            try:
                parent.rmdir()
            except OSError:
                break


def replace_dir_contents(
    out_dir: Path, files: Mapping[str, Writer], owned: tuple[str, ...] = ()
) -> None:
    """Write one run's files into ``out_dir`` so that no file of an older run is left beside them.

    ``files`` maps a relative name (``"plan.json"``, ``"deploy/a.yaml"``) to a writer that
    writes that file at the path it is given. Every writer runs first, into a staging
    directory inside ``out_dir``; if one fails, ``out_dir`` is left exactly as it was. Then
    the files of the previous run that this run does not write are removed (the previous
    run's names come from the manifest ``.routerwise-outputs.json``, plus ``owned``: names
    this command may write in any run, for directories written before manifests existed),
    each new file is moved into place with ``os.replace``, and the manifest is rewritten.

    Why not build a whole new directory and swap it in: ``--out`` may be a directory that
    holds the user's own files (``--out .``); a swap would delete them. Only files this
    command wrote or owns are ever removed. The cost: a reader that looks during the final
    moves may see some new files beside some not yet replaced (never a half-written file).
    """
    _check_names(list(files), out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".routerwise-staging-", dir=out_dir))
    try:
        for name, writer in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            writer(staging / name)
        _remove_stale(out_dir, (_previous_outputs(out_dir) | set(owned)) - set(files))
        for name in files:
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).replace(out_dir / name)
        with atomic_path(out_dir / MANIFEST_NAME) as tmp:
            tmp.write_text(json.dumps(sorted(files), indent=1), encoding="utf-8")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
