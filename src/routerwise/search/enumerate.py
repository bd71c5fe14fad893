"""Enumerate placeable setups depth-first, placing as we go, and flag the dominated ones.

Counts (DESIGN.md §6 ``search``): ``enumerated`` — every combination of per-model options
(memory-infeasible shapes and "not deployed" included); ``retained`` — combinations that fit
in memory and are placed on the cluster; ``dominated`` — retained setups where some model
could take one more share unit or replica (or an undeployed model could be added) in place,
which can only help: they leave capacity idle that another setup uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from routerwise.search.placement import Instance, can_grow, place_deployment
from routerwise.search.space import Deployment, ModelOptions, Setup


@dataclass(frozen=True, slots=True)
class PlacedSetup:
    """A retained setup with its placement and whether it is dominated."""

    setup: Setup
    instances: tuple[Instance, ...]
    dominated: bool


@dataclass(slots=True)
class EnumerationCounts:
    enumerated: int = 0
    retained: int = 0
    dominated: int = 0


def count_combinations(options: list[ModelOptions]) -> int:
    """All combinations of per-model options, each model possibly not deployed."""
    return math.prod(o.enumerated + 1 for o in options)


def enumerate_setups(options: list[ModelOptions], num_gpus: int, gpus_per_node: int,
                     counts: EnumerationCounts) -> Iterator[PlacedSetup]:
    """Yield every placeable setup (dominated ones flagged); fills ``counts`` as it goes.

    Models are placed in decreasing size (first-fit decreasing by model), so the order of
    ``options`` only affects the order of the output's model tuples, which follows the input.
    """
    order = sorted(range(len(options)), key=lambda i: -options[i].arch.params_b)
    names = tuple(o.model for o in options)
    counts.enumerated = count_combinations(options)
    smallest = [min(o.options, key=lambda d: d.units) if o.options else None for o in options]
    chosen: list[Deployment | None] = [None] * len(options)
    placed: list[tuple[Instance, ...]] = [()] * len(options)

    def leaf(loads: list[int]) -> PlacedSetup | None:
        if all(d is None for d in chosen):
            return None
        dominated = False
        for i, dep in enumerate(chosen):
            if dep is not None:
                dominated = can_grow(loads, placed[i], dep, gpus_per_node)
            elif smallest[i] is not None:
                dep0 = smallest[i]
                assert dep0 is not None
                dominated = place_deployment(loads, names[i], dep0, gpus_per_node) is not None
            if dominated:
                break
        instances = tuple(inst for i in range(len(options)) for inst in placed[i])
        return PlacedSetup(Setup(names, tuple(chosen)), instances, dominated)

    def walk(depth: int, loads: list[int]) -> Iterator[PlacedSetup]:
        if depth == len(order):
            out = leaf(loads)
            if out is not None:
                counts.retained += 1
                counts.dominated += out.dominated
                yield out
            return
        i = order[depth]
        chosen[i], placed[i] = None, ()
        yield from walk(depth + 1, loads)
        free = len(loads) * 10 - sum(loads)
        for dep in options[i].options:
            if dep.units > free or dep.shards > num_gpus:
                continue
            res = place_deployment(loads, names[i], dep, gpus_per_node)
            if res is None:
                continue
            chosen[i], placed[i] = dep, res[1]
            yield from walk(depth + 1, res[0])
        chosen[i], placed[i] = None, ()

    yield from walk(0, [0] * num_gpus)
