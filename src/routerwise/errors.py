"""One exception tree for RouterWise (docs/architecture.md §6.4).

``RouterWiseError``
├── ``InputError``        bad user input: a file, field or value; exit code 1
│   └── ``SpecError``     a spec file field
├── ``SolverError``     a numerical solver (HiGHS) returned no answer; exit code 1
└── ``InfeasibleError``   an expected outcome (no routing or setup meets the SLO,
                          a model that fits nowhere); exit code 2, with what *is* reachable

Bugs are not caught: they propagate as ordinary exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RouterWiseError(Exception):
    """Base class of every error RouterWise raises on purpose."""

    exit_code: int = 1


class InputError(RouterWiseError, ValueError):
    """Bad input; the message names the file, row, column, field or value."""

    exit_code = 1


class SpecError(InputError):
    """A spec file field is missing or invalid."""


class SolverError(RouterWiseError):
    """A solver (HiGHS) returned no usable answer; the message carries its status."""

    exit_code = 1


class InfeasibleError(RouterWiseError):
    """No solution meets the constraints; ``reachable`` says what can be reached instead."""

    exit_code = 2

    def __init__(self, message: str, reachable: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reachable: dict[str, Any] = dict(reachable or {})
