"""``routerwise emulate`` refuses bad shapes and ports with exit 1 before serving anything."""

from __future__ import annotations

import pytest

from tests.simulate.conftest import Cli


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "nope", "--gpu", "H100-SXM"], "nope"),
    (["--model", "llama-3.1-8b", "--gpu", "TPU-v9"], "TPU-v9"),
    (["--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--mps-share", "1.5"], "1.5"),
    (["--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--tp", "3"], "tp"),
    (["--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--port", "70000"], "--port"),
    (["--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--output-tokens", "0"],
     "--output-tokens"),
])
def test_bad_emulate_options_exit_1(cli: Cli, args: list[str], message: str) -> None:
    res = cli(["emulate", *args])
    assert res.exit_code == 1
    assert message in res.stderr_flat
    assert "Traceback" not in res.stderr
