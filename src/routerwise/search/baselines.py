"""The baselines the plan is compared with (the routing is still optimised for each):

* ``equal_split`` — every model the same share of the cluster (in tenths of a GPU);
* ``size_proportional`` — shares proportional to parameter count;
* ``isolated`` — whole dedicated GPUs per model, no MPS sharing (the best such setup);
* ``best_single_model`` — all traffic to one model on the whole cluster (the best one).

Each returns candidate setups; the search evaluates them and keeps the best per baseline.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from routerwise.search.enumerate import PlacedSetup
from routerwise.search.placement import Layout, UnitInstance, place_deployment
from routerwise.search.space import SHARE_UNITS, DeploymentOption, ModelOptions, SetupOption

BASELINES = ("equal_split", "size_proportional", "isolated", "best_single_model")


def place(options: Sequence[ModelOptions], chosen: Sequence[DeploymentOption | None], num_gpus: int,
          gpus_per_node: Layout) -> PlacedSetup | None:
    """Place ``chosen`` (models in decreasing size, first fit); None when it does not fit."""
    loads = [0] * num_gpus
    placed: dict[int, tuple[UnitInstance, ...]] = {}
    for i in sorted(range(len(options)), key=lambda i: -options[i].arch.params_b):
        dep = chosen[i]
        if dep is None:
            continue
        res = place_deployment(loads, options[i].model, dep, gpus_per_node)
        if res is None:
            return None
        loads, placed[i] = res
    instances = tuple(inst for i in range(len(options)) for inst in placed.get(i, ()))
    setup = SetupOption(tuple(o.model for o in options), tuple(chosen))
    return PlacedSetup(setup, instances, dominated=False)


def place_variants(options: Sequence[ModelOptions],
                   variants: Sequence[Sequence[DeploymentOption | None]], num_gpus: int,
                   gpus_per_node: Layout, max_tries: int = 2000) -> PlacedSetup | None:
    """The first placeable combination of per-model ``variants`` (each list in order of
    preference), depth-first with models in decreasing size and placement as it goes."""
    order = sorted(range(len(options)), key=lambda i: -options[i].arch.params_b)
    chosen: list[DeploymentOption | None] = [None] * len(options)
    placed: dict[int, tuple[UnitInstance, ...]] = {}
    tries = 0

    def walk(depth: int, loads: list[int]) -> bool:
        nonlocal tries
        if depth == len(order):
            return True
        i = order[depth]
        for dep in variants[i]:
            tries += 1
            if tries > max_tries:
                return False
            if dep is None:
                res: tuple[list[int], tuple[UnitInstance, ...]] | None = (loads, ())
            else:
                res = place_deployment(loads, options[i].model, dep, gpus_per_node)
            if res is not None:
                chosen[i], placed[i] = dep, res[1]
                if walk(depth + 1, res[0]):
                    return True
        return False

    if not walk(0, [0] * num_gpus):
        return None
    instances = tuple(inst for i in range(len(options)) for inst in placed.get(i, ()))
    return PlacedSetup(SetupOption(tuple(o.model for o in options), tuple(chosen)), instances,
                       dominated=False)


def budget_split(options: Sequence[ModelOptions], weights: Sequence[float], num_gpus: int,
                 gpus_per_node: Layout, max_tries: int = 5000) -> PlacedSetup | None:
    """Each model gets ``weight``'s fraction of the cluster's share units: the placeable
    combination that uses the most of each model's budget (depth-first, largest first)."""
    total = sum(weights)
    units = num_gpus * SHARE_UNITS
    budgets = [int(units * w / total + 1e-9) for w in weights]
    ranked = [sorted((d for d in o.options if d.units <= b),
                     key=lambda d: (-d.units, -d.share_units, d.tp))
              for o, b in zip(options, budgets, strict=True)]
    if any(not r for r in ranked):
        return None
    for combo in itertools.islice(itertools.product(*ranked), max_tries):
        placed = place(options, combo, num_gpus, gpus_per_node)
        if placed is not None:
            return placed
    return None


def isolated_setups(options: Sequence[ModelOptions], num_gpus: int, gpus_per_node: Layout
                    ) -> list[PlacedSetup]:
    """Every placement of all models on whole, dedicated GPUs (share 100%)."""
    whole = [[d for d in o.options if d.share_units == SHARE_UNITS] for o in options]
    out = []
    for combo in itertools.product(*whole):
        if sum(d.shards for d in combo) > num_gpus:
            continue
        placed = place(options, combo, num_gpus, gpus_per_node)
        if placed is not None:
            out.append(placed)
    return out


def single_model_setups(options: Sequence[ModelOptions], num_gpus: int, gpus_per_node: Layout
                        ) -> list[PlacedSetup]:
    """Each model alone on the whole cluster: every whole-GPU deployment that uses it all."""
    out = []
    for i, o in enumerate(options):
        for d in o.options:
            if d.share_units == SHARE_UNITS and d.shards == num_gpus:
                chosen: list[DeploymentOption | None] = [None] * len(options)
                chosen[i] = d
                placed = place(options, chosen, num_gpus, gpus_per_node)
                if placed is not None:
                    out.append(placed)
    return out


def isolated_combinations(options: Sequence[ModelOptions]) -> int:
    """How many whole-GPU combinations :func:`isolated_setups` would try."""
    return math.prod(sum(1 for d in o.options if d.share_units == SHARE_UNITS) for o in options)


def baseline_setups(options: Sequence[ModelOptions], num_gpus: int, gpus_per_node: Layout,
                    isolated_limit: int | None = None) -> dict[str, list[PlacedSetup]]:
    """Candidate setups of each baseline (possibly none: then that baseline is infeasible).

    With ``isolated_limit``, ``isolated`` is left out (no key) when it has more whole-GPU
    combinations than that: the caller searches it instead of listing it.
    """
    equal = budget_split(options, [1.0] * len(options), num_gpus, gpus_per_node)
    sized = budget_split(options, [o.arch.params_b for o in options], num_gpus, gpus_per_node)
    out = {
        "equal_split": [equal] if equal else [],
        "size_proportional": [sized] if sized else [],
        "best_single_model": single_model_setups(options, num_gpus, gpus_per_node),
    }
    if isolated_limit is None or isolated_combinations(options) <= isolated_limit:
        out["isolated"] = isolated_setups(options, num_gpus, gpus_per_node)
    return out
