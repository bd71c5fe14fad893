"""The package layout of docs/architecture.md §2: a stage imports only from stages to its left."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "routerwise"

#: Pipeline order. ``scenarios`` holds built-in specs and their data: it may use ``spec`` only,
#: and the plan stage and later resolve scenario names through it.
ORDER = (
    "spec", "predict", "profiles", "latency", "routing", "search", "plan", "simulate", "serve",
    "deploy",
)
ALLOWED: dict[str, set[str]] = {stage: set(ORDER[:i]) for i, stage in enumerate(ORDER)}
ALLOWED["scenarios"] = {"spec"}
#: built-in scenarios are inputs to the shell stages
for _later in ("plan", "simulate", "serve", "deploy"):
    ALLOWED[_later].add("scenarios")
ALLOWED["cli"] = set(ORDER) | {"scenarios", "cli"}
SHARED = {"errors", "__init__", "__main__"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "routerwise" and len(parts) > 1:
                found.add(parts[1])
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.parent != SRC)


def test_every_subpackage_is_a_known_stage() -> None:
    stages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert stages <= set(ALLOWED), f"unknown stage packages: {stages - set(ALLOWED)}"
    assert {"spec", "latency", "routing", "cli"} <= stages


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_left(module: Path) -> None:
    stage = module.relative_to(SRC).parts[0]
    allowed = ALLOWED[stage] | {stage} | SHARED
    bad = _imports(module) - allowed
    assert not bad, f"{module.relative_to(SRC)} (stage {stage!r}) imports later stage(s) {bad}"


def test_import_does_no_work() -> None:
    """Importing the CLI must not read files, start clients or compute (architecture §6.12)."""
    import subprocess
    import sys

    code = (
        "import sys, time; t=time.perf_counter(); import routerwise.cli.app; "
        "heavy = [m for m in ('aiconfigurator_core', 'matplotlib', 'scipy.optimize') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"heavy modules imported at CLI import time: {out.stdout}"
