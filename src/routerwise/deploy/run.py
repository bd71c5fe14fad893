"""Stage deploy — the shell's one call: a plan file and options → the IR and a target's files.

Inputs: a plan path (``plan.json`` or its directory), a target name (``TARGETS``) and
:class:`~routerwise.deploy.build.DeployOptions`. Outputs: :class:`Rendered` (the IR, the
target and its files in memory). Writing them is the CLI's job (``replace_dir_contents``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from routerwise.deploy.build import DeployOptions, build_ir
from routerwise.deploy.ir import DeploymentIR
from routerwise.deploy.targets import TARGETS, Files, Target
from routerwise.errors import InputError
from routerwise.spec.plan import PLAN_FILE, load_plan


@dataclass(frozen=True, slots=True)
class Rendered:
    ir: DeploymentIR
    target: Target
    files: Files


def parse_model_paths(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["llama-3.1-8b=/models/llama", ...]`` → {model: path}; names each bad item."""
    out: dict[str, str] = {}
    for item in items:
        model, sep, path = item.partition("=")
        if not sep or not model.strip():
            raise InputError(f"--model-path {item!r} must be MODEL=PATH_OR_HF_ID")
        if model.strip() in out:
            raise InputError(f"--model-path gives model {model.strip()!r} twice")
        out[model.strip()] = path.strip()
    return out


def target_of(name: str) -> Target:
    if name not in TARGETS:
        raise InputError(f"--target {name!r} is not one of {', '.join(TARGETS)}")
    return TARGETS[name]


def render_plan(plan_path: Path, target: str, options: DeployOptions) -> Rendered:
    """Read and validate the plan, build the deployment description, render the target."""
    chosen = target_of(target)
    path = plan_path / PLAN_FILE if plan_path.is_dir() else plan_path
    plan = load_plan(path)
    text = path.read_text(encoding="utf-8")
    ir = build_ir(plan, text, str(path), options)
    return Rendered(ir, chosen, chosen.files(ir, text))
