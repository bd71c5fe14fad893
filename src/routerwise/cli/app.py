"""The ``routerwise`` command-line application: one typer app, commands from sibling modules.

Commands are registered explicitly here (no import-time side effects elsewhere). ``main``
is the entry point (console script and ``python -m routerwise``). Exit codes: 0 success,
1 bad input *and every usage error* (click's own 2 is remapped by the app's group, so even
``CliRunner(app)`` sees 1), 2 infeasible, 130 interrupted (``main`` prints "interrupted").
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer._click.core import Context
from typer._click.exceptions import (  # typer vendors click
    ClickException,
    NoArgsIsHelpError,
    UsageError,
)
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from routerwise import __version__
from routerwise.cli import catalog, estimate, plan, route, schema, train_predictor
from routerwise.cli import deploy as deploy_cli
from routerwise.cli import emulate as emulate_cli
from routerwise.cli import profile as profile_cli
from routerwise.cli import serve as serve_cli
from routerwise.cli import simulate as simulate_cli

#: Exit codes ``main`` returns besides a command's own (InputError 1, InfeasibleError 2).
EXIT_USAGE = 1
EXIT_INTERRUPTED = 130


def _no_type(option: TyperOption | None) -> TyperOption | None:
    if option is not None:
        option.metavar = ""  # typer would print ``<bool>`` beside --help
    return option


def _no_argument_type(ctx: Context) -> None:
    return None


class _Command(TyperCommand):
    """A typer command whose help shows no value types: not beside ``--help``, and not
    beside a positional argument that has a metavar (typer would print ``<path>``)."""

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        return _no_type(super().get_help_option(ctx))

    def get_params(self, ctx: Context) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if isinstance(param, TyperArgument) and param.metavar:
                param.display_type_rich = _no_argument_type  # type: ignore[method-assign]
        return params


class _Group(TyperGroup):
    """The app's group: usage errors exit 1, and the same ``--help`` as ``_Command``.

    Every usage error (the app's own or a command's: parsing, a bad choice or number, a
    missing option) passes through ``make_context`` or ``invoke`` here, so the exit code is
    fixed at its source and holds however the app is run (``main``, ``CliRunner``).
    """

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        return _no_type(super().get_help_option(ctx))

    def make_context(
        self, info_name: str | None, args: list[str], parent: Context | None = None,
        **extra: Any,
    ) -> Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise


app = typer.Typer(
    name="routerwise",
    help="Joint GPU allocation and latency-aware routing for multi-model LLM serving.",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("plan", cls=_Command)(plan.plan)
app.command("route", cls=_Command)(route.route)
app.command("estimate", cls=_Command)(estimate.estimate)
app.command("catalog", cls=_Command)(catalog.catalog)
app.command("schema", cls=_Command)(schema.schema)
app.command("train-predictor", cls=_Command)(train_predictor.train_predictor)
app.command("simulate", cls=_Command)(simulate_cli.simulate)
app.command("emulate", cls=_Command)(emulate_cli.emulate)
app.command("deploy", cls=_Command)(deploy_cli.deploy)
app.command("profile", cls=_Command)(profile_cli.profile)
app.command("serve", cls=_Command)(serve_cli.serve)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"routerwise {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, metavar="", help="Print the version."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", metavar="", help="Log debug messages."
    ),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s: %(message)s"
    )


def _show_usage_error(exc: ClickException) -> None:
    """Click/typer's own message (usage line, hint, the error) on stderr."""
    if isinstance(exc, NoArgsIsHelpError):  # rich help prints itself while the error is built
        if text := exc.format_message().strip():
            typer.echo(text, err=True)
        return
    try:
        from typer.rich_utils import rich_format_error
    except ImportError:  # typer without rich: click's plain rendering
        exc.show()
    else:
        rich_format_error(exc)


def _interrupted() -> int:
    typer.echo("interrupted", err=True)
    return EXIT_INTERRUPTED


def run(argv: Sequence[str] | None = None) -> int:
    """Run the app on ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    Typer runs without its standalone mode so that click's usage errors (exit 2 there) can
    exit 1 here: 2 means *infeasible* in RouterWise.
    """
    try:
        code = app(args=None if argv is None else list(argv), standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        return _interrupted()
    except ClickException as exc:
        _show_usage_error(exc)
        return EXIT_USAGE
    if code == EXIT_INTERRUPTED:  # typer turns a KeyboardInterrupt into Exit(130)
        return _interrupted()
    return code if isinstance(code, int) else 0


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``routerwise`` console script and of ``python -m routerwise``."""
    sys.exit(run(argv))
