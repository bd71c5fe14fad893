"""``routerwise deploy``: write what starts a plan — vLLM launch scripts with MPS, a Docker
Compose file or Kubernetes manifests (``routerwise.deploy``) — or, with ``--check``, explain
per engine why it gets its GPUs, share and memory without writing anything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from routerwise.cli._common import (
    check_out_dir,
    console,
    replace_dir_contents,
    run_or_exit,
)
from routerwise.errors import InputError

if TYPE_CHECKING:
    from routerwise.deploy.run import Rendered
    from routerwise.deploy.targets import RenderedFile

TARGET_NAMES = "vllm-script|compose|kubernetes"


def _engine_table(r: Rendered) -> Table:
    ir = r.ir
    t = Table(title=f"{ir.name} ({r.target.name}): {len(ir.engines)} engine(s) on "
              f"{ir.gpu_type}, gateway port {ir.gateway.port}")
    for col in ("engine", "node:GPUs", "share", "MPS %", "mem", "port"):
        t.add_column(col, justify="left" if col in ("engine", "node:GPUs") else "right",
                     no_wrap=True)
    for e in ir.engines:
        t.add_row(e.name, f"{e.node}:{e.local_gpu_label}", f"{e.mps_share:.0%}",
                  str(e.thread_percentage) if e.mps else "—",
                  f"{e.memory.gpu_memory_utilization:g}", str(e.port))
    return t


def _explain(r: Rendered) -> None:
    for e in r.ir.engines:
        console.print(f"\n[bold]{e.name}[/] ({e.model})", highlight=False)
        for reason in e.reasons:
            console.print(f"  • {reason}", highlight=False)
    console.print("\n[bold]deployment[/]", highlight=False)
    for note in (*r.ir.notes, *r.target.notes(r.ir)):
        console.print(f"  • {note}", highlight=False)
    console.print("\nGPU totals (≤ one GPU each): " + "; ".join(
        f"{g.gpu_id}: {g.share:.0%} share, {g.thread_percentage}% threads, "
        f"{g.memory_fraction:g} memory" for g in r.ir.gpus), highlight=False)


def _writer(item: RenderedFile) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_text(item.text, encoding="utf-8")
        if item.executable:
            path.chmod(path.stat().st_mode | 0o111)

    return write


def deploy(
    plan: Path = typer.Argument(..., metavar="PLAN", help="plan.json or the directory holding it."),
    target: str = typer.Option(..., "--target", metavar=TARGET_NAMES,
                               help="What to write: vllm-script (bash per node), compose "
                               "(Docker Compose) or kubernetes (manifests)."),
    out: Path | None = typer.Option(None, "--out", metavar="DIR",
                                    help="Directory to write into (files of an older run "
                                    "are replaced); required unless --check."),
    image: str | None = typer.Option(None, "--image", metavar="IMAGE",
                                     help="vLLM image (compose, kubernetes; default "
                                     "vllm/vllm-openai:v0.11.0)."),
    gateway_image: str | None = typer.Option(None, "--gateway-image", metavar="IMAGE",
                                             help="Image with routerwise for the gateway "
                                             "(default routerwise:VERSION, built from this "
                                             "repository)."),
    model_path: list[str] = typer.Option([], "--model-path", metavar="MODEL=PATH_OR_HF_ID",
                                         help="Weights of a model: a local path or Hugging "
                                         "Face id (repeat; default: the catalog's HF id)."),
    gateway_port: int = typer.Option(8000, "--gateway-port", metavar="PORT",
                                     help="Gateway port; engines use the next ports."),
    api_key_env: str | None = typer.Option(None, "--api-key-env", metavar="VAR",
                                           help="Environment variable holding the gateway's "
                                           "API key (passed to routerwise serve)."),
    max_model_len: int | None = typer.Option(None, "--max-model-len", metavar="TOKENS",
                                             help="vLLM context length (default: the KV "
                                             "tokens every engine is planned to hold, 4096)."),
    check: bool = typer.Option(False, "--check", metavar="",
                               help="Explain per engine why it gets its GPUs, share and "
                               "memory, and where a share was rounded; write nothing."),
) -> None:
    """Write what starts a plan: vLLM scripts with MPS, Docker Compose or Kubernetes."""
    from routerwise.deploy.build import DEFAULT_GATEWAY_IMAGE, DEFAULT_IMAGE, DeployOptions
    from routerwise.deploy.run import parse_model_paths, render_plan, target_of

    def action() -> Rendered:
        target_of(target)
        if out is None and not check:
            raise InputError("--out DIR is required (or --check to explain without writing)")
        if out is not None:
            check_out_dir(out, "--out")
        if not plan.exists():
            raise InputError(f"PLAN {plan}: does not exist")
        options = DeployOptions(
            image=image or DEFAULT_IMAGE, gateway_image=gateway_image or DEFAULT_GATEWAY_IMAGE,
            model_paths=parse_model_paths(model_path), gateway_port=gateway_port,
            api_key_env=api_key_env, max_model_len=max_model_len)
        return render_plan(plan, target, options)

    rendered = run_or_exit(action)
    console.print(_engine_table(rendered))
    if check:
        _explain(rendered)
        return
    assert out is not None  # checked in action()
    files = {name: _writer(item) for name, item in rendered.files.items()}
    run_or_exit(lambda: replace_dir_contents(out, files))
    console.print(f"wrote {', '.join(sorted(rendered.files))} to {out}; start: see "
                  f"{out / 'README.md'}", highlight=False)
