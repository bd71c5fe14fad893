"""The ``routerwise`` command-line application: one typer app, commands from sibling modules.

Commands are registered explicitly here (no import-time side effects elsewhere).
"""

from __future__ import annotations

import logging

import typer

from routerwise import __version__
from routerwise.cli import catalog, estimate, plan, route, schema

app = typer.Typer(
    name="routerwise",
    help="Joint GPU allocation and latency-aware routing for multi-model LLM serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("plan")(plan.plan)
app.command("route")(route.route)
app.command("estimate")(estimate.estimate)
app.command("catalog")(catalog.catalog)
app.command("schema")(schema.schema)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"routerwise {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s: %(message)s"
    )


def main() -> None:
    """Entry point of the ``routerwise`` console script."""
    app()
