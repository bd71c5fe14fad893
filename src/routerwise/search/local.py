"""Neighbourhoods of a setup for the bounded local search (docs/architecture.md §4).

A neighbour differs from a setup by moving capacity: one model grows (one more share unit,
one more replica, or deployed when it was not) while another shrinks (one unit or replica
less, or not deployed); or one model grows into idle capacity; or one model keeps its shards
and changes tensor parallelism. Neighbours are filtered by memory fit and the cluster's
share units; placing them is the caller's job.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from routerwise.search.space import SHARE_UNITS, DeploymentOption, ModelOptions, SetupOption

Dep = DeploymentOption | None


def _grow(dep: Dep, options: ModelOptions, free_units: int) -> list[Dep]:
    if dep is None:
        return [d for d in options.options if d.replicas == 1 and d.units <= free_units]
    out: list[Dep] = []
    if dep.share_units < SHARE_UNITS:
        out.append(DeploymentOption(dep.tp, dep.share_units + 1, dep.replicas))
    out.append(DeploymentOption(dep.tp, dep.share_units, dep.replicas + 1))
    return out


def _shrink(dep: Dep) -> list[Dep]:
    if dep is None:
        return []
    out: list[Dep] = [None]
    if dep.share_units > 1:
        out.append(DeploymentOption(dep.tp, dep.share_units - 1, dep.replicas))
    if dep.replicas > 1:
        out.append(DeploymentOption(dep.tp, dep.share_units, dep.replicas - 1))
    return out


def _reshape(dep: Dep, options: ModelOptions) -> list[Dep]:
    """Other deployments of the model on the same share units (tp, share and replicas
    traded against each other, e.g. 1×tp1@100% ↔ 1×tp2@50% ↔ 2×tp1@50%)."""
    if dep is None:
        return []
    return [d for d in options.options if d.units == dep.units and d != dep]


Changes = dict[int, Dep]


def _single_moves(deps: list[Dep], options: Sequence[ModelOptions], free: int
                  ) -> Iterator[Changes]:
    for i, dep in enumerate(deps):
        for g in _grow(dep, options[i], free):
            yield {i: g}
        for r in _reshape(dep, options[i]):
            yield {i: r}


def _pair_reshapes(deps: list[Dep], options: Sequence[ModelOptions]) -> Iterator[Changes]:
    """Two shapes traded at once: what one alone cannot place, two can."""
    for i, j in itertools.combinations(range(len(deps)), 2):
        for ri in _reshape(deps[i], options[i]):
            for rj in _reshape(deps[j], options[j]):
                yield {i: ri, j: rj}


def _transfers(deps: list[Dep], options: Sequence[ModelOptions], used: int, total: int
               ) -> Iterator[Changes]:
    """One model shrinks, another grows into what it freed."""
    for i, dep in enumerate(deps):
        for s in _shrink(dep):
            freed = used - (dep.units if dep else 0) + (s.units if s else 0)
            for j, other in enumerate(deps):
                if j != i:
                    for g in _grow(other, options[j], total - freed):
                        yield {i: s, j: g}


def neighbours(setup: SetupOption, options: Sequence[ModelOptions], allowed:
               Sequence[frozenset[DeploymentOption]], total_units: int) -> Iterator[SetupOption]:
    """Every distinct neighbour whose deployments fit in memory and whose units fit."""
    deps = list(setup.deployments)
    used = setup.units
    seen: set[tuple[Dep, ...]] = {tuple(deps)}
    moves = itertools.chain(_single_moves(deps, options, total_units - used),
                            _pair_reshapes(deps, options),
                            _transfers(deps, options, used, total_units))
    for changes in moves:
        if any(d is not None and d not in allowed[i] for i, d in changes.items()):
            continue
        new = list(deps)
        for i, d in changes.items():
            new[i] = d
        key = tuple(new)
        if key in seen or not any(new) or sum(d.units for d in new if d) > total_units:
            continue
        seen.add(key)
        yield SetupOption(setup.models, key)
