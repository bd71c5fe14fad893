"""Shared helpers of the deploy tests: checked-in plan fixtures rendered into a directory."""

from __future__ import annotations

from pathlib import Path

from routerwise.deploy.build import DeployOptions, build_ir
from routerwise.deploy.ir import DeploymentIR
from routerwise.deploy.targets import TARGETS, Files
from routerwise.spec.plan import Plan, load_plan

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
#: The checked-in plans (``make_fixtures.py`` regenerates them).
FIXTURE_NAMES = ("h100-mixed", "paper-a100-3m", "paper-a100-4m", "two-node")


def fixture_path(name: str) -> Path:
    return FIXTURES / f"{name}.plan.json"


def source_of(name: str) -> str:
    """The plan's path as the artifacts record it: relative, so golden files are stable."""
    return f"tests/deploy/fixtures/{name}.plan.json"


def build(name: str, options: DeployOptions | None = None) -> tuple[Plan, DeploymentIR, str]:
    path = fixture_path(name)
    text = path.read_text(encoding="utf-8")
    plan = load_plan(path)
    return plan, build_ir(plan, text, source_of(name), options or DeployOptions()), text


def write_files(files: Files, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name, item in files.items():
        (out / name).write_text(item.text, encoding="utf-8")
        if item.executable:
            (out / name).chmod(0o755)
    return out


def render_into(plan_text: str, ir: DeploymentIR, target: str, out: Path) -> Path:
    return write_files(TARGETS[target].files(ir, plan_text), out)
