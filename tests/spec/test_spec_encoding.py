"""A spec file that cannot be read as UTF-8 text is a named SpecError (exit 1), not a traceback
(the exit code through the CLI: tests/cli/test_shell.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from routerwise.errors import SpecError
from routerwise.spec.spec_file import load_spec

SPEC = """
name: café  # a non-ASCII comment, saved in the wrong encoding below
cluster: {gpu_type: a100, num_gpus: 8, gpus_per_node: 8}
models:
  - {name: mistral, catalog_id: mistral-7b}
workload: {builtin: h100-mixed}
rate_rps: 5
slo: {metric: ttft, stat: mean, target_ms: 250}
"""


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_a_spec_not_in_utf8_is_named(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC, encoding=encoding)
    with pytest.raises(SpecError, match="not UTF-8 text") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_a_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)

