"""``routerwise serve``: an OpenAI-compatible gateway that routes by a plan
(``routerwise.serve``): score − price argmax, online price control, fallbacks, metrics."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import typer

from routerwise.cli._common import console, run_or_exit
from routerwise.errors import InputError


def _config(plan: Path, backends: list[str], predictor: Path | None, api_key_env: str | None,
            no_control: bool) -> object:
    missing = [m for m in ("fastapi", "uvicorn", "prometheus_client")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"the gateway needs the serve extra ({', '.join(missing)} missing): "
                         "pip install 'routerwise[serve]'")
    from routerwise.serve.config import ControllerConfig, GatewayConfig, parse_backend

    key = None
    if api_key_env is not None:
        key = os.environ.get(api_key_env)
        if not key:
            raise InputError(f"--api-key-env {api_key_env}: the variable is not set or empty")
    if predictor is not None and not predictor.is_dir():
        raise InputError(f"--predictor {predictor}: not a predictor directory")
    return GatewayConfig(plan_path=plan, backends=tuple(parse_backend(b) for b in backends),
                         predictor_dir=predictor, api_key=key,
                         controller=ControllerConfig(enabled=not no_control))


def serve(
    plan: Path = typer.Option(..., "--plan", metavar="PLAN",
                              help="plan.json or its directory (`routerwise plan --out`)."),
    backend: list[str] = typer.Option(..., "--backend", metavar="MODEL=URL",
                                      help="A deployed model's OpenAI base URL; repeat for "
                                           "each model of the plan."),
    predictor: Path | None = typer.Option(None, "--predictor", metavar="DIR",
                                          help="Quality predictor (`routerwise "
                                               "train-predictor --out`); none: task hints "
                                               "or the plan's prior."),
    host: str = typer.Option("127.0.0.1", "--host", metavar="ADDR", help="Address to bind."),
    port: int = typer.Option(8080, "--port", metavar="P", help="TCP port."),
    api_key_env: str | None = typer.Option(None, "--api-key-env", metavar="VAR",
                                           help="Environment variable holding the API key "
                                                "clients must send (none: no key)."),
    log_level: str = typer.Option("info", "--log-level", metavar="LEVEL",
                                  help="critical, error, warning, info or debug."),
    no_control: bool = typer.Option(False, "--no-control", metavar="",
                                    help="Keep the plan's prices (no online controller)."),
) -> None:
    """Serve an OpenAI-compatible gateway that routes requests by a plan."""
    from routerwise.serve.run import LOG_LEVELS

    def action() -> object:
        if not 0 < port < 65536:
            raise InputError(f"--port {port}: must be in 1..65535")
        if log_level not in LOG_LEVELS:
            raise InputError(f"--log-level {log_level!r}: one of {', '.join(LOG_LEVELS)}")
        return _config(plan, backend, predictor, api_key_env, no_control)

    cfg = run_or_exit(action)
    console.print(f"RouterWise gateway on http://{host}:{port}/v1 — model `routerwise` routes "
                  f"over {len(backend)} backend(s)", highlight=False)
    from routerwise.serve.run import serve as run_server

    run_or_exit(lambda: run_server(cfg, host, port, log_level))  # type: ignore[arg-type]
