"""``cli``: run the CLI through its real entry point, ``routerwise.cli.app.main``.

``CliRunner(app)`` would bypass ``main`` and with it the exit-code mapping (usage errors
exit 1, Ctrl-C 130), so tests of the shell go through ``main`` like the console script.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

from routerwise.cli.app import main


@dataclass(frozen=True, slots=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def stderr_flat(self) -> str:
        """stderr without whitespace: rich wraps long messages at the console width."""
        return "".join(self.stderr.split())


Cli = Callable[[Sequence[str]], CliResult]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(args: Sequence[str]) -> CliResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main([str(a) for a in args])
        out = capsys.readouterr()
        code = info.value.code
        return CliResult(code if isinstance(code, int) else 1, out.out, out.err)

    return run
