"""``routerwise emulate``: an OpenAI-compatible server that behaves like one vLLM instance of a
shape in real time (``routerwise.simulate.emulator``); placeholder text, realistic timing."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import typer

from routerwise.cli._common import console, run_or_exit
from routerwise.errors import InputError

if TYPE_CHECKING:
    from fastapi import FastAPI


def emulate(
    model: str = typer.Option(..., "--model", metavar="ID",
                              help="Model catalog id (see `routerwise catalog`)."),
    gpu: str = typer.Option(..., "--gpu", metavar="GPU", help="GPU type (e.g. H100-SXM)."),
    tp: int = typer.Option(1, "--tp", metavar="N", help="Tensor parallelism."),
    mps_share: float = typer.Option(1.0, "--mps-share", metavar="S",
                                    help="MPS compute share in (0, 1]."),
    host: str = typer.Option("127.0.0.1", "--host", metavar="ADDR", help="Address to bind."),
    port: int = typer.Option(8000, "--port", metavar="P", help="TCP port."),
    output_tokens: int = typer.Option(128, "--output-tokens", metavar="N",
                                      help="Tokens generated when a request has no max_tokens."),
) -> None:
    """Serve an emulated OpenAI-compatible engine (timing from the engine model)."""

    def action() -> FastAPI:
        if not 0 < port < 65536:
            raise InputError(f"--port {port}: must be in 1..65535")
        missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
        if missing:
            raise InputError(f"the emulator needs the serve extra ({', '.join(missing)} "
                             "missing): pip install 'routerwise[serve]'")
        if output_tokens < 1:
            raise InputError(f"--output-tokens {output_tokens}: must be >= 1")
        from routerwise.simulate.emulator import create_app, emulated_engine

        engine, info = emulated_engine(model, gpu, tp, mps_share, output_tokens)
        app = create_app(engine, info)
        console.print(f"emulating {info.model} on {info.gpu} tp={tp} share={mps_share:g} "
                      f"(KV {info.kv_capacity_tokens:,} tokens) at http://{host}:{port}/v1 "
                      "— timing from the engine model, placeholder text", highlight=False)
        return app

    app = run_or_exit(action)
    from routerwise.simulate.emulator import serve

    serve(app, host, port)
