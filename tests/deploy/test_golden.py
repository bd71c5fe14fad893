"""Rendered files equal the checked-in golden files (tests/deploy/golden/<plan>/<target>/).

Regenerate after an intended change, then review the diff:
``ROUTERWISE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/deploy/test_golden.py``.
The copy of the plan every target writes (plan.json) is compared with the fixture itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from routerwise.deploy.build import DeployOptions
from routerwise.deploy.targets import TARGETS
from tests.deploy.conftest import HERE, build

GOLDEN = HERE / "golden"
UPDATE = os.environ.get("ROUTERWISE_UPDATE_GOLDEN") == "1"
#: h100-mixed with the defaults; two-node with an API key and one local model path.
CASES = {
    "h100-mixed": DeployOptions(),
    "two-node": DeployOptions(api_key_env="ROUTERWISE_API_KEY",
                              model_paths={"llama-3.1-8b": "/models/llama-3.1-8b-instruct"}),
}


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("case", list(CASES))
def test_rendered_files_match_golden(case: str, target: str) -> None:
    _, ir, text = build(case, CASES[case])
    files = TARGETS[target].files(ir, text)
    if ir.gateway.plan_file in files:  # kubernetes carries the plan in a ConfigMap instead
        assert files.pop(ir.gateway.plan_file).text == text
    golden = GOLDEN / case / target
    if UPDATE:
        shutil.rmtree(golden, ignore_errors=True)
        golden.mkdir(parents=True)
        for name, item in files.items():
            (golden / name).write_text(item.text, encoding="utf-8")
    expected = {p.name: p.read_text(encoding="utf-8") for p in sorted(golden.iterdir())}
    assert sorted(files) == sorted(expected), "files differ from the golden set"
    for name, item in files.items():
        assert item.text == expected[name], (
            f"{case}/{target}/{name} differs from {golden / name}; if intended, regenerate "
            "with ROUTERWISE_UPDATE_GOLDEN=1")


def test_golden_comparison_can_fail(tmp_path: Path) -> None:
    """A one-character change in a template's output is caught (the comparison is not vacuous)."""
    _, ir, text = build("h100-mixed", CASES["h100-mixed"])
    files = TARGETS["compose"].files(ir, text)
    changed = files["compose.yaml"].text.replace("--gpu-memory-utilization", "--gpu-mem-util", 1)
    assert changed != (GOLDEN / "h100-mixed" / "compose" / "compose.yaml").read_text()
