"""Enumerate placeable setups depth-first, placing as we go, and flag the dominated ones.

Counts (docs/architecture.md §4 ``search``): ``enumerated`` — every combination of per-model options
(memory-infeasible shapes and "not deployed" included); ``retained`` — combinations that fit
in memory and are placed on the cluster; ``dominated`` — retained setups for which a setup
with one model given one more share unit or replica (or an undeployed model added) is also
retained, which can only help: they leave capacity idle that another setup uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from routerwise.search.placement import Layout, UnitInstance, place_deployment
from routerwise.search.space import SHARE_UNITS, DeploymentOption, ModelOptions, SetupOption


@dataclass(frozen=True, slots=True)
class PlacedSetup:
    """A retained setup with its placement and whether it is dominated."""

    setup: SetupOption
    instances: tuple[UnitInstance, ...]
    dominated: bool


@dataclass(slots=True)
class EnumerationCounts:
    enumerated: int = 0
    retained: int = 0
    dominated: int = 0


def count_combinations(options: list[ModelOptions]) -> int:
    """All combinations of per-model options, each model possibly not deployed."""
    return math.prod(o.enumerated + 1 for o in options)


Chosen = tuple[DeploymentOption | None, ...]


def _walk(options: list[ModelOptions], num_gpus: int, gpus_per_node: Layout
          ) -> Iterator[tuple[Chosen, tuple[UnitInstance, ...]]]:
    """Depth-first over per-model options, models in decreasing size, placing as it goes
    (first fit); yields every non-empty placeable combination with its instances."""
    order = sorted(range(len(options)), key=lambda i: -options[i].arch.params_b)
    names = tuple(o.model for o in options)
    chosen: list[DeploymentOption | None] = [None] * len(options)
    placed: list[tuple[UnitInstance, ...]] = [()] * len(options)

    def walk(depth: int, loads: list[int]) -> Iterator[tuple[Chosen, tuple[UnitInstance, ...]]]:
        if depth == len(order):
            if any(d is not None for d in chosen):
                yield tuple(chosen), tuple(x for i in range(len(options)) for x in placed[i])
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


def _upgrades(chosen: Chosen, options: list[ModelOptions], allowed: list[set[DeploymentOption]],
              num_gpus: int) -> Iterator[Chosen]:
    """Setups that differ from ``chosen`` by one step that can only help: one more share
    unit or one more replica for a model, or an undeployed model added."""
    for i, dep in enumerate(chosen):
        steps: list[DeploymentOption] = []
        if dep is None:
            steps = list(options[i].options)
        else:
            if dep.share_units < SHARE_UNITS:
                steps.append(DeploymentOption(dep.tp, dep.share_units + 1, dep.replicas))
            if dep.tp * (dep.replicas + 1) <= num_gpus:
                steps.append(DeploymentOption(dep.tp, dep.share_units, dep.replicas + 1))
        for step in steps:
            if step in allowed[i]:
                yield (*chosen[:i], step, *chosen[i + 1:])


#: How often (in placeable setups walked) the enumeration reports progress.
TICK_EVERY = 5000


def enumerate_setups(options: list[ModelOptions], num_gpus: int, gpus_per_node: Layout,
                     counts: EnumerationCounts, tick: Callable[[int], None] | None = None
                     ) -> Iterator[PlacedSetup]:
    """Yield every retained (placeable) setup, dominated ones flagged; fills ``counts``.

    Two passes over the same deterministic walk: the first collects every retained
    combination, the second flags a setup as dominated when one of its upgrades is itself
    retained — so a dominated setup always has a retained setup at least as good (its
    curves are pointwise no slower), and following upgrades ends at a non-dominated one.
    """
    counts.enumerated = count_combinations(options)
    names = tuple(o.model for o in options)
    retained: set[Chosen] = set()
    for chosen, _ in _walk(options, num_gpus, gpus_per_node):
        retained.add(chosen)
        if tick is not None and len(retained) % TICK_EVERY == 0:
            tick(len(retained))
    allowed = [set(o.options) for o in options]
    for chosen, instances in _walk(options, num_gpus, gpus_per_node):
        dominated = any(up in retained for up in _upgrades(chosen, options, allowed, num_gpus))
        counts.retained += 1
        if tick is not None and counts.retained % TICK_EVERY == 0:
            tick(len(retained) + counts.retained)
        counts.dominated += dominated
        yield PlacedSetup(SetupOption(names, chosen), instances, dominated)
