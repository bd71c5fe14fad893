"""Registry of routing solvers (DESIGN.md §5.5): a Protocol and an explicit name → function map."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from routerwise.errors import InputError
from routerwise.routing.dual import solve_dual
from routerwise.routing.problem import RoutingProblem, RoutingResult


class Solver(Protocol):
    def __call__(self, problem: RoutingProblem) -> RoutingResult: ...


def _exact(problem: RoutingProblem) -> RoutingResult:
    # imported on use: scipy.optimize adds ~0.3 s to every CLI start otherwise
    from routerwise.routing.exact import solve_exact

    return solve_exact(problem)


SOLVERS: Mapping[str, Solver] = {"dual": solve_dual, "exact": _exact}


def solve(problem: RoutingProblem, solver: str = "dual") -> RoutingResult:
    """Solve ``problem`` with the solver named ``solver``."""
    try:
        fn = SOLVERS[solver]
    except KeyError:
        raise InputError(f"unknown solver {solver!r}; known: {sorted(SOLVERS)}") from None
    return fn(problem)
