"""Deployments, memory filter, first-fit placement and enumeration counts."""

from __future__ import annotations

import itertools

import pytest

from routerwise.errors import InputError
from routerwise.search.enumerate import EnumerationCounts, count_combinations, enumerate_setups
from routerwise.search.placement import can_grow, place_deployment
from routerwise.search.space import Deployment, model_options
from routerwise.spec.catalog import get_gpu, get_model

A100 = get_gpu("A100-SXM-80GB")


def test_deployment_validates_its_fields() -> None:
    with pytest.raises(InputError, match="tp=3"):
        Deployment(3, 5, 1)
    with pytest.raises(InputError, match="share_units=11"):
        Deployment(1, 11, 1)
    d = Deployment(2, 5, 3)
    assert (d.shards, d.units, d.mps_share) == (6, 30, 0.5)


def test_memory_filter_drops_shapes_that_do_not_fit() -> None:
    opts = model_options("big", get_model("llama-2-70b"), A100, 8, 8)
    assert all(d.tp >= 2 for d in opts.options)  # 138 GB of weights never fit one GPU
    assert not any(d.tp == 2 and d.share_units < 9 for d in opts.options)
    assert opts.enumerated > len(opts.options)


def test_placement_respects_shares_distinct_gpus_and_nodes() -> None:
    loads = [0] * 8
    res = place_deployment(loads, "m", Deployment(2, 6, 3), gpus_per_node=4)
    assert res is not None
    new, instances = res
    gpus = [g for i in instances for g in i.gpu_ids]
    assert len(set(gpus)) == 6  # no two shards of one model on one GPU
    assert all(len({g // 4 for g in i.gpu_ids}) == 1 for i in instances)  # tp inside a node
    assert max(new) <= 10
    # a fourth replica does not fit: only 2 GPUs left without this model
    assert place_deployment(loads, "m", Deployment(2, 6, 4), gpus_per_node=4) is not None
    assert place_deployment(new, "m2", Deployment(4, 5, 1), gpus_per_node=4) is None


def test_can_grow_detects_idle_capacity() -> None:
    loads, inst = place_deployment([0] * 2, "m", Deployment(1, 5, 1), 2) or ([], ())
    assert can_grow(loads, inst, Deployment(1, 5, 1), 2)  # share can grow, or add a replica
    full, inst2 = place_deployment([0] * 1, "m", Deployment(1, 10, 1), 1) or ([], ())
    assert not can_grow(full, inst2, Deployment(1, 10, 1), 1)


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
