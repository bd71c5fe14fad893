"""Small shared pieces of the frozen core: provenance labels and read-only arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Where a number comes from (docs/architecture.md §5): profiled on real hardware, produced by the
#: GPU-free estimator, or computed from published/aggregate figures.
Provenance = Literal["measured", "estimated", "derived"]
PROVENANCES: tuple[Provenance, ...] = ("measured", "estimated", "derived")

FloatArray = NDArray[np.float64]

if TYPE_CHECKING:
    from pydantic import ValidationError


def readonly(values: ArrayLike, dtype: type = np.float64) -> FloatArray:
    """Return a C-contiguous copy of ``values`` that cannot be written to."""
    arr: FloatArray = np.array(values, dtype=dtype, copy=True, order="C")
    arr.setflags(write=False)
    return arr


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def validation_lines(exc: ValidationError, source: str, most: int = 12) -> str:
    """A pydantic error as lines ``source: field.path: message`` (one per problem)."""
    lines = []
    for e in exc.errors()[:most]:
        msg = str(e["msg"]).removeprefix("Value error, ")
        lines.append(f"{source}: {_field_path(tuple(e['loc']))}: {msg}")
    return "\n".join(lines)
