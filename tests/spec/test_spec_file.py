"""The YAML spec file: valid specs load, bad ones name the file and the field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from routerwise.errors import SpecError
from routerwise.spec.spec_file import load_spec, spec_json_schema

GOOD = """
name: demo
cluster: {gpu_type: a100, num_gpus: 8, gpus_per_node: 8}
models:
  - {name: mistral, catalog_id: mistral-7b}
  - {name: custom, num_layers: 2, hidden_size: 256, num_attention_heads: 4, num_kv_heads: 2,
     intermediate_size: 512, vocab_size: 1000, max_tp: 2}
workload: {path: scores.csv, format: csv, num_prompts: 100}
rate_rps: 5
slo: {metric: ttft, stat: mean, target_ms: 250}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_spec_loads(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, GOOD))
    assert spec.cluster.gpu_type == "A100-SXM-80GB"
    assert spec.models[0].to_arch().id == "mistral-7b"
    custom = spec.models[1].to_arch()
    assert custom.id == "custom" and custom.head_dim == 64
    assert spec.slo.target_ms == 250


def test_unknown_model_names_file_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("catalog_id: mistral-7b", "catalog_id: foo"))
    with pytest.raises(SpecError, match=r"spec.yaml: models\[0\].catalog_id: unknown model 'foo'"):
        load_spec(path)


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [("gpu_type: a100", "gpu_type: tpu", r"cluster.gpu_type: unknown GPU 'tpu'"),
     ("rate_rps: 5", "rate_rps: -1", r"rate_rps: Input should be greater than 0"),
     ("target_ms: 250", "target_ms: 250, extra: 1", r"slo.extra: Extra inputs"),
     ("metric: ttft", "metric: itl", r"slo.metric"),
     ("num_kv_heads: 2", "num_kv_heads: 3", r"models\[1\]: .*num_kv_heads=3 must divide")],
)
def test_bad_fields(tmp_path: Path, old: str, new: str, pattern: str) -> None:
    with pytest.raises(SpecError, match=pattern):
        load_spec(_write(tmp_path, GOOD.replace(old, new)))


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(_write(tmp_path, "- 1\n- 2\n"))


def test_schema_documents_every_field() -> None:
    schema = spec_json_schema()
    assert schema["title"] == "Spec"
    for definition in [schema, *schema["$defs"].values()]:
        for name, prop in definition["properties"].items():
            assert prop.get("description"), f"{definition['title']}.{name} lacks a description"
