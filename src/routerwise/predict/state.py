"""Reading and writing a predictor's fitted state: plain ``.npz`` arrays and JSON, never pickle.

Stage: predict (file I/O at its edge). ``np.load(allow_pickle=False)`` refuses object arrays,
so loading a state file runs no code. Every error names the file and what is wrong.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from routerwise.errors import InputError

STATE_NPZ = "state.npz"
STATE_JSON = "state.json"


def write_state(directory: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
                ) -> list[str]:
    """Write ``state.npz`` and ``state.json`` into ``directory``; return their names."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / STATE_NPZ).open("wb") as fh:
        np.savez(fh, allow_pickle=False, **{k: np.asarray(v) for k, v in arrays.items()})
    (directory / STATE_JSON).write_text(json.dumps(meta), encoding="utf-8")
    return [STATE_NPZ, STATE_JSON]


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; InputError naming the file when missing or malformed."""
    if not path.is_file():
        raise InputError(f"{path}: missing (not a predictor directory, or an incomplete one)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` file (object arrays refused: no code runs on load)."""
    if not path.is_file():
        raise InputError(f"{path}: missing (not a predictor directory, or an incomplete one)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [n for n in names if n not in data.files]
            if missing:
                raise InputError(f"{path}: lacks array(s) {missing}; has {sorted(data.files)}")
            return {n: np.array(data[n]) for n in names}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path}: not a readable numpy .npz state file: {exc}") from exc


def meta_field(meta: Mapping[str, Any], key: str, kind: type, path: Path) -> Any:
    """``meta[key]`` checked to be a ``kind``; InputError naming the file and field."""
    value = meta.get(key)
    if not isinstance(value, kind):
        raise InputError(f"{path}: field {key!r} should be {kind.__name__}, found {value!r}")
    return value


def check_shape(array: np.ndarray, shape: tuple[int, ...], name: str, path: Path) -> None:
    """Shape check with a message naming the file and array."""
    if array.shape != shape:
        raise InputError(f"{path}: array {name!r} has shape {array.shape}, expected {shape}")
