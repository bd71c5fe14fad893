"""The predictor directory: identical predictions after a round trip; corrupt/foreign refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from routerwise.errors import InputError
from routerwise.predict.artifact import (
    FORMAT_VERSION,
    MANIFEST,
    _sha256,
    load_predictor,
    save_predictor,
)
from routerwise.predict.evaluate import fit_on
from routerwise.predict.state import STATE_NPZ
from tests.predict.synthetic_text import synthetic_workload

TRAINING = {"source": "<synthetic>", "data_sha256": "0" * 64}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("artifact") / "tfidf"
    predictor = fit_on(synthetic_workload(200, 0), "tfidf", np.random.default_rng(0))
    return save_predictor(predictor, path, training=TRAINING, report={"routing": {}})


def _copy(saved: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(saved, target)
    return target


@pytest.mark.parametrize("kind", ["tfidf", "knn", "task"])
def test_round_trip_gives_identical_predictions(kind: str, tmp_path: Path) -> None:
    train, test = synthetic_workload(200, 0), synthetic_workload(30, 1)
    predictor = fit_on(train, kind, np.random.default_rng(0))
    save_predictor(predictor, tmp_path / kind, training=TRAINING)
    loaded = load_predictor(tmp_path / kind)
    assert loaded.kind == kind and loaded.models == predictor.models
    for hints in (test.tasks, None):
        np.testing.assert_array_equal(loaded.predict(test.prompts, hints),
                                      predictor.predict(test.prompts, hints))


def test_manifest_records_what_was_trained(saved: Path) -> None:
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["kind"] == "tfidf"
    assert manifest["models"] == ["generalist", "specialist"]
    assert manifest["training"]["data_sha256"] == "0" * 64
    assert {"numpy", "scikit-learn", "routerwise"} <= set(manifest["libraries"])
    assert set(manifest["files"]) == {"state.npz", "state.json"}


def test_missing_directory_and_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a directory"):
        load_predictor(tmp_path / "nope")
    with pytest.raises(InputError, match=r"manifest\.json: missing"):
        load_predictor(tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"format": "something-else"}, "not a RouterWise predictor manifest"),
        ({"format_version": 99}, "format_version 99 is not supported"),
        ({"kind": "bert"}, "unknown kind 'bert'"),
        ({"models": []}, "'models' must be a non-empty list"),
        ({"models": ["a", "b", "c"]}, r"models \['a', 'b', 'c'\] differ"),
        ({"files": {"../secret": "x"}}, "missing"),
    ],
)
def test_foreign_or_other_version_manifest_is_refused(saved: Path, tmp_path: Path,
                                                      edit: dict[str, object],
                                                      message: str) -> None:
    target = _copy(saved, tmp_path)
    manifest = json.loads((target / MANIFEST).read_text()) | edit
    (target / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=message) as info:
        load_predictor(target)
    assert str(target) in str(info.value)


def test_manifest_that_is_not_json_names_the_file(saved: Path, tmp_path: Path) -> None:
    target = _copy(saved, tmp_path)
    (target / MANIFEST).write_text("{not json")
    with pytest.raises(InputError, match=r"manifest\.json: not valid JSON"):
        load_predictor(target)


def test_corrupt_state_file_fails_its_hash(saved: Path, tmp_path: Path) -> None:
    target = _copy(saved, tmp_path)
    data = bytearray((target / STATE_NPZ).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (target / STATE_NPZ).write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"state\.npz: content does not match its sha256"):
        load_predictor(target)


def _rehash(target: Path) -> None:
    manifest = json.loads((target / MANIFEST).read_text())
    manifest["files"] = {n: _sha256(target / n) for n in manifest["files"]}
    (target / MANIFEST).write_text(json.dumps(manifest))


def test_pickled_arrays_are_never_loaded_even_with_a_matching_hash(saved: Path,
                                                                   tmp_path: Path) -> None:
    target = _copy(saved, tmp_path)
    with np.load(target / STATE_NPZ) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["coef"] = np.array([object()], dtype=object)  # would need pickle to load
    np.savez(target / STATE_NPZ, **arrays)
    _rehash(target)
    with pytest.raises(InputError, match=r"state\.npz: not a readable numpy \.npz"):
        load_predictor(target)


def test_state_with_wrong_shapes_is_refused(saved: Path, tmp_path: Path) -> None:
    target = _copy(saved, tmp_path)
    with np.load(target / STATE_NPZ) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["intercept"] = np.zeros(5)
    np.savez(target / STATE_NPZ, **arrays)
    _rehash(target)
    with pytest.raises(InputError, match=r"state\.npz: array 'intercept' has shape \(5,\)"):
        load_predictor(target)
