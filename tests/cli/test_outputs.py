"""Output-path preflight (``check_out_dir``, ``check_out_file``) and ``replace_dir_contents``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from routerwise.cli._common import (
    MANIFEST_NAME,
    check_out_dir,
    check_out_file,
    replace_dir_contents,
)
from routerwise.errors import InputError


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("x")
    return path


def test_out_dir_ok_when_creatable_or_a_directory(tmp_path: Path) -> None:
    start = time.perf_counter()
    check_out_dir(tmp_path, "--out")
    check_out_dir(tmp_path / "new" / "deeper", "--out")
    assert time.perf_counter() - start < 1.0
    assert not (tmp_path / "new").exists()  # a check, not a mkdir


@pytest.mark.parametrize(("rel", "needle"), [
    ("a-file", "is a file, not a directory"),
    ("a-file/sub", "a-file is a file"),
    ("a-file/sub/deeper", "a-file is a file"),
])
def test_out_dir_rejects_files_and_paths_under_files(
    afile: Path, rel: str, needle: str,
) -> None:
    path = afile.parent / rel
    with pytest.raises(InputError, match="--out") as info:
        check_out_dir(path, "--out")
    assert needle in str(info.value) and str(path) in str(info.value)


def test_out_dir_rejects_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    # root may write anywhere, so simulate the permission rather than chmod
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real(p, mode))
    with pytest.raises(InputError, match=r"--out .*locked: the directory is not writable"):
        check_out_dir(locked, "--out")
    with pytest.raises(InputError, match=r"cannot be created, .*locked is not writable"):
        check_out_dir(locked / "new", "--out")


def test_out_file_checks(tmp_path: Path, afile: Path) -> None:
    check_out_file(tmp_path / "new" / "p.csv", "--out", (".csv",))
    check_out_file(tmp_path / "P.CSV", "--out", (".csv",))
    check_out_file(afile, "--plot")  # an existing file is replaced; no suffix rule
    cases: list[tuple[Path, tuple[str, ...], str]] = [
        (tmp_path / "p.txt", (".csv",), "must end in .csv"),
        (tmp_path / "p.txt", (".png", ".svg"), "must end in .png or .svg"),
        (tmp_path, (), "is a directory, not a file"),
        (afile / "p.csv", (".csv",), "a-file is a file"),
    ]
    for path, suffixes, needle in cases:
        with pytest.raises(InputError, match="--flag") as info:
            check_out_file(path, "--flag", suffixes)
        assert needle in str(info.value), (path, str(info.value))


def _text(content: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_text(content, encoding="utf-8")

    return write


def _listing(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_a_new_run_leaves_no_file_of_the_previous_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("the user's own file")
    replace_dir_contents(out, {"plan.json": _text("1"), "plot.png": _text("1"),
                               "deploy/a.yaml": _text("1")})
    assert _listing(out) == {"mine.txt", "plan.json", "plot.png", "deploy/a.yaml", MANIFEST_NAME}
    replace_dir_contents(out, {"plan.json": _text("2"), "deploy/b.yaml": _text("2")})
    assert _listing(out) == {"mine.txt", "plan.json", "deploy/b.yaml", MANIFEST_NAME}
    assert (out / "plan.json").read_text() == "2"
    assert (out / "mine.txt").read_text() == "the user's own file"
    assert json.loads((out / MANIFEST_NAME).read_text()) == ["deploy/b.yaml", "plan.json"]


def test_owned_names_are_removed_without_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "plot.png").write_text("from a run before manifests")
    (tmp_path / "other.png").write_text("not ours")
    replace_dir_contents(tmp_path, {"plan.json": _text("1")}, owned=("plan.json", "plot.png"))
    assert _listing(tmp_path) == {"plan.json", "other.png", MANIFEST_NAME}


def test_a_failing_writer_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    replace_dir_contents(tmp_path, {"plan.json": _text("old"), "plot.png": _text("old")})
    before = {name: (tmp_path / name).read_bytes() for name in _listing(tmp_path)}

    def boom(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        replace_dir_contents(tmp_path, {"plan.json": _text("new"), "plot.png": boom})
    assert {name: (tmp_path / name).read_bytes() for name in _listing(tmp_path)} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".routerwise-staging")] == []


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", MANIFEST_NAME, ""])
def test_names_must_stay_inside(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not a file name inside"):
        replace_dir_contents(tmp_path / "out", {name: _text("x")})
    assert not (tmp_path / "escape.txt").exists()


def test_a_tampered_manifest_removes_nothing(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("keep")
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(["keep.txt", "../x"]))
    replace_dir_contents(tmp_path, {"plan.json": _text("1")})
    assert (tmp_path / "keep.txt").exists()
