"""The CLI shell through its real entry point: exit codes (usage errors 1, infeasible 2,
Ctrl-C 130), ``python -m routerwise``, readable ``--help`` and the catalog at 80 columns."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args, get_type_hints

import pytest
import typer

from routerwise.cli import catalog as catalog_cli
from routerwise.cli import plan as plan_cli
from routerwise.cli.app import app
from routerwise.scenarios.registry import SCENARIOS
from routerwise.spec.catalog import GPU_CATALOG, MODEL_CATALOG
from tests.cli.conftest import Cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ROUTE = ["route", "--scores", EXAMPLES / "scores.csv", "--profiles", EXAMPLES / "profiles.csv"]
COMMANDS = tuple(str(c.name) for c in app.registered_commands)  # every command, new ones too


def _python_m(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "routerwise", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


@pytest.mark.parametrize(("args", "needle"), [
    ([*ROUTE, "--rate-rps", "40", "--slo-ms", "25", "--solver", "nope"], "nope"),
    ([*ROUTE, "--rate-rps", "40", "--slo-ms", "25", "--slo-scope", "all"], "all"),
    ([*ROUTE, "--rate-rps", "forty", "--slo-ms", "25"], "--rate-rps"),
    (["estimate", "--model", "qwen2.5-7b", "--gpu", "h100", "--sweep"], "--out"),  # missing
    (["catalog", "--bogus"], "--bogus"),
    (["plan", "--out", "pyproject.toml/x", "--executor", "threads"], "threads"),
    (["plan", "no-such-scenario", "--out", "pyproject.toml/x"], "no-such-scenario"),
    (["estimate", "--gpu", "h100", "--sweep", "--out", "p.csv"], "--model"),
    (["no-such-command"], "no-such-command"),
])
def test_usage_errors_exit_1_with_clicks_message(cli: Cli, args: list[str], needle: str) -> None:
    res = cli(args)
    assert res.exit_code == 1, (res.exit_code, res.stderr)
    assert needle in res.stderr
    assert "Usage:" in res.stderr  # click's usage line and hint are kept
    assert res.stdout == ""


def test_usage_errors_exit_1_however_the_app_is_run() -> None:
    from typer.testing import CliRunner

    res = CliRunner().invoke(app, [*map(str, ROUTE), "--rate-rps", "40", "--slo-ms", "25",
                                   "--solver", "nope"])
    assert res.exit_code == 1, res.output


def test_no_arguments_print_help_and_exit_1(cli: Cli) -> None:
    res = cli([])
    assert res.exit_code == 1
    assert "Commands" in res.stdout + res.stderr


def test_infeasible_still_exits_2_and_success_0(cli: Cli) -> None:
    assert cli([*ROUTE, "--rate-rps", "40", "--slo-ms", "25"]).exit_code == 0
    res = cli([*ROUTE, "--rate-rps", "40", "--slo-ms", "0.001"])
    assert res.exit_code == 2, res.stderr


def test_bad_input_exits_1(cli: Cli, tmp_path: Path) -> None:
    res = cli(["route", "--scores", tmp_path / "missing.csv", "--profiles",
               EXAMPLES / "profiles.csv", "--rate-rps", "40", "--slo-ms", "25"])
    assert res.exit_code == 1
    assert "missing.csv" in res.stderr_flat


@pytest.mark.parametrize("signal", [KeyboardInterrupt, typer.Abort])
def test_ctrl_c_prints_interrupted_and_exits_130(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, signal: type[BaseException],
) -> None:
    def interrupted() -> None:
        raise signal

    monkeypatch.setattr(catalog_cli, "_gpu_table", interrupted)
    res = cli(["catalog"])
    assert res.exit_code == 130
    assert res.stderr.strip() == "interrupted"
    assert "Traceback" not in res.stderr + res.stdout


def test_python_m_routerwise_uses_the_same_entry_point() -> None:
    usage = _python_m("catalog", "--bogus")
    assert usage.returncode == 1, usage.stderr
    assert "No such option" in usage.stderr
    version = _python_m("--version")
    assert version.returncode == 0 and version.stdout.startswith("routerwise ")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_python_type_names(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, command: str,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich reads it when it renders the help
    res = cli([command, "--help"])
    assert res.exit_code == 0
    assert "--help" in res.stdout
    for name in ("FLOAT", "INTEGER", "TEXT", "PATH", "BOOLEAN"):  # click's names
        assert not re.search(rf"\b{name}\b", res.stdout), (name, res.stdout)
    for name in ("float", "int", "str", "path", "bool"):  # typer >= 0.2x's names
        assert f"<{name}>" not in res.stdout, (name, res.stdout)


def test_help_lists_the_choices(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert "[dual|exact]" in cli(["route", "--help"]).stdout
    assert "[fleet|per-model]" in cli(["route", "--help"]).stdout
    assert "[serial|process|ray]" in cli(["plan", "--help"]).stdout
    assert "[lagrangian|exhaustive]" in cli(["plan", "--help"]).stdout


def test_every_command_is_tested_for_help() -> None:
    assert {"plan", "route", "estimate", "catalog", "schema"} <= set(COMMANDS)


def test_plan_scenario_choices_are_the_registry() -> None:
    literal = get_type_hints(plan_cli.plan)["scenario"]
    (choices,) = [a for a in get_args(literal) if a is not type(None)]
    assert set(get_args(choices)) == set(SCENARIOS)


def test_catalog_ids_are_whole_at_80_columns() -> None:
    res = _python_m("catalog", columns=80)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    cells = {cell.strip() for line in lines for cell in re.split(r"[│┃|]", line)}
    ids = [g.name for g in GPU_CATALOG.values()] + [m.id for m in MODEL_CATALOG.values()]
    missing = [i for i in ids if i not in cells]
    assert not missing, (missing, res.stdout)


def test_a_spec_not_in_utf8_exits_1_without_a_traceback(tmp_path: Path, cli: Cli) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    res = cli(["plan", "--spec", path, "--out", tmp_path / "out"])
    assert res.exit_code == 1, res.stderr
    assert "notUTF-8text" in res.stderr_flat
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()
