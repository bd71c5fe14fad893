"""Deployments, memory filter, first-fit placement and enumeration counts."""

from __future__ import annotations

import itertools

import pytest

from routerwise.errors import InputError
from routerwise.search.enumerate import EnumerationCounts, count_combinations, enumerate_setups
from routerwise.search.placement import place_deployment
from routerwise.search.space import DeploymentOption, model_options
from routerwise.spec.catalog import get_gpu, get_model

A100 = get_gpu("A100-SXM-80GB")


def test_deployment_validates_its_fields() -> None:
    with pytest.raises(InputError, match="tp=3"):
        DeploymentOption(3, 5, 1)
    with pytest.raises(InputError, match="share_units=11"):
        DeploymentOption(1, 11, 1)
    d = DeploymentOption(2, 5, 3)
    assert (d.shards, d.units, d.mps_share) == (6, 30, 0.5)


def test_memory_filter_drops_shapes_that_do_not_fit() -> None:
    opts = model_options("big", get_model("llama-2-70b"), A100, 8, 8)
    assert all(d.tp >= 2 for d in opts.options)  # 138 GB of weights never fit one GPU
    assert not any(d.tp == 2 and d.share_units < 9 for d in opts.options)
    assert opts.enumerated > len(opts.options)


def test_placement_respects_shares_distinct_gpus_and_nodes() -> None:
    loads = [0] * 8
    res = place_deployment(loads, "m", DeploymentOption(2, 6, 3), gpus_per_node=4)
    assert res is not None
    new, instances = res
    gpus = [g for i in instances for g in i.gpu_ids]
    assert len(set(gpus)) == 6  # no two shards of one model on one GPU
    assert all(len({g // 4 for g in i.gpu_ids}) == 1 for i in instances)  # tp inside a node
    assert max(new) <= 10
    # a fourth replica does not fit: only 2 GPUs left without this model
    assert place_deployment(loads, "m", DeploymentOption(2, 6, 4), gpus_per_node=4) is not None
    assert place_deployment(new, "m2", DeploymentOption(4, 5, 1), gpus_per_node=4) is None


def _one_step_better(a: DeploymentOption | None, b: DeploymentOption | None) -> bool:
    """``a`` is ``b`` plus one share unit or one replica, or ``b`` is not deployed."""
    if b is None:
        return a is not None
    if a is None or a.tp != b.tp:
        return False
    return ((a.share_units, a.replicas) in {(b.share_units + 1, b.replicas),
                                            (b.share_units, b.replicas + 1)})


def test_every_dominated_setup_has_a_retained_upgrade() -> None:
    """Regression: dominance must point at an upgrade the placement actually retains (on 3
    GPUs, adding llama-2-13b to ``mistral 3×tp1@50%, yi 1×tp2@50%`` does not place)."""
    models = ["mistral-7b", "llama-2-13b", "yi-34b"]
    opts = [model_options(m, get_model(m), A100, 3, 3) for m in models]
    found = {s.setup.deployments: s.dominated
             for s in enumerate_setups(opts, 3, 3, EnumerationCounts())}
    for chosen, dominated in found.items():
        better = [o for o in found if sum(x != y for x, y in zip(o, chosen, strict=True)) == 1
                  and all(x == y or _one_step_better(x, y)
                          for x, y in zip(o, chosen, strict=True))]
        assert dominated == bool(better), (chosen, better[:1])


def test_enumeration_counts_match_an_independent_brute_force() -> None:
    models = ["llama-2-13b", "yi-34b"]
    opts = [model_options(m, get_model(m), A100, 2, 2) for m in models]
    counts = EnumerationCounts()
    found = {s.setup.deployments for s in enumerate_setups(opts, 2, 2, counts)}
    assert counts.enumerated == count_combinations(opts)
    brute = set()
    for combo in itertools.product(*[(None, *o.options) for o in opts]):
        if all(d is None for d in combo):
            continue
        loads = [0, 0]
        ok = True
        for i in sorted(range(2), key=lambda i: -opts[i].arch.params_b):
            if combo[i] is None:
                continue
            res = place_deployment(loads, models[i], combo[i], 2)
            if res is None:
                ok = False
                break
            loads = res[0]
        if ok:
            brute.add(combo)
    assert found == brute
    assert counts.retained == len(brute)
