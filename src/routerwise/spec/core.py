"""Small shared pieces of the frozen core: provenance labels and read-only arrays."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Where a number comes from (docs/architecture.md §5): profiled on real hardware, produced by the
#: GPU-free estimator, or computed from published/aggregate figures.
Provenance = Literal["measured", "estimated", "derived"]
PROVENANCES: tuple[Provenance, ...] = ("measured", "estimated", "derived")

FloatArray = NDArray[np.float64]


def readonly(values: ArrayLike, dtype: type = np.float64) -> FloatArray:
    """Return a C-contiguous copy of ``values`` that cannot be written to."""
    arr: FloatArray = np.array(values, dtype=dtype, copy=True, order="C")
    arr.setflags(write=False)
    return arr
