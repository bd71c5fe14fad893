"""Regenerate the deploy tests' plan fixtures (``tests/deploy/fixtures/``).

* ``<scenario>.plan.json``: ``routerwise plan <scenario> --out DIR`` for each built-in
  scenario, copied here (seconds to minutes each; the cache makes re-runs quick).
* ``two-node.plan.json``: derived from ``h100-mixed.plan.json`` (no planning): a 16-GPU,
  2-node H100 cluster whose setup has whole GPUs, unequal MPS shares on one GPU (60% + 40%),
  a share that is not a whole percent (1/3, rounded down to 33%), replicas on both nodes and
  one model named in the plan but not deployed. Its predictions are the source plan's (the
  deploy stage only reads the setup, routing and the per-model loads it explains).

Run from the repository root: ``.venv/bin/python tests/deploy/make_fixtures.py [--plan]``
(``--plan`` re-plans the built-in scenarios too), then regenerate the golden files:
``ROUTERWISE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/deploy/test_golden.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
SCENARIOS = ("h100-mixed", "paper-a100-3m", "paper-a100-4m")


def _plan_scenarios() -> None:
    routerwise = Path(sys.executable).parent / "routerwise"
    for scenario in SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([str(routerwise), "plan", scenario, "--out", tmp], check=True)
            shutil.copy(Path(tmp) / "plan.json", FIXTURES / f"{scenario}.plan.json")


def _instance(model: str, tp: int, share: float, gpus: list[int]) -> dict[str, Any]:
    return {"model": model, "gpu_type": "H100-SXM", "tp": tp, "mps_share": share,
            "gpu_ids": gpus}


SETUP = [
    _instance("llama-3.1-70b", 4, 1.0, [0, 1, 2, 3]),
    _instance("qwen2.5-32b", 2, 0.6, [4, 5]),
    _instance("llama-3.1-8b", 1, 0.4, [4]),
    _instance("qwen2.5-7b", 1, 0.333333, [5]),
    _instance("qwen2.5-32b", 2, 0.6, [12, 13]),
    _instance("llama-3.1-8b", 1, 0.4, [12]),
    _instance("qwen2.5-7b", 1, 0.333333, [13]),
]
DEPLOYMENTS = {
    "llama-3.1-70b": (4, 1.0, 1), "qwen2.5-32b": (2, 0.6, 2), "llama-3.1-8b": (1, 0.4, 2),
    "qwen2.5-7b": (1, 0.333333, 2),
}


def _label(tp: int, share: float, replicas: int) -> str:
    return f"{replicas}×tp{tp}@{share * 100:.4g}%"


def two_node() -> dict[str, Any]:
    """The two-node fixture, from the h100-mixed plan."""
    plan: dict[str, Any] = json.loads((FIXTURES / "h100-mixed.plan.json").read_text())
    plan["scenario"] = "two-node"
    plan["cluster"] = {"gpu_type": "H100-SXM", "num_gpus": 16, "gpus_per_node": 8}
    plan["inputs"]["spec"]["cluster"] = {**plan["cluster"]}
    plan["setup"] = SETUP
    plan["deployments"] = [
        {"model": m, "gpu_type": "H100-SXM", "tp": tp, "mps_share": s, "replicas": r}
        for m, (tp, s, r) in DEPLOYMENTS.items()]
    for model, load in plan["predicted"]["per_model"].items():
        load["deployment"] = _label(*DEPLOYMENTS[model])
    return plan


def main() -> None:
    if "--plan" in sys.argv[1:]:
        _plan_scenarios()
    text = json.dumps(two_node(), indent=2, allow_nan=False) + "\n"
    (FIXTURES / "two-node.plan.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
