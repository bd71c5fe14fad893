"""The Ray executor (issue 13, item 3): a small search on a local Ray instance gives the
same candidates as the process pool; Ray missing is a named error; an executor that
started Ray stops it, one that found it running leaves it alone. Starting a local Ray
instance takes ~10 s on a 2-core machine: the two tests that do are marked slow."""

from __future__ import annotations

import builtins
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from routerwise.errors import InputError
from routerwise.search.evaluate import EvalContext
from routerwise.search.executors import make_executor
from routerwise.search.search import Candidate, SearchConfig, search_setups
from routerwise.search.space import ModelOptions
from tests.search.synthetic import small_problem

ray = pytest.importorskip("ray", reason="the ray extra is not installed: "
                                        "pip install 'routerwise[ray]'")



@pytest.fixture(scope="module")
def small() -> tuple[EvalContext, list[ModelOptions]]:
    return small_problem()


@pytest.fixture
def local_ray() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="warning")
    try:
        yield
    finally:
        ray.shutdown()


def _key(c: Candidate) -> tuple[Any, ...]:
    return c.index, c.status, c.setup, c.baselines


@pytest.mark.slow
def test_ray_search_matches_the_process_pool(small: Any, local_ray: None) -> None:
    ctx, opts = small
    t = time.perf_counter()
    on_ray = search_setups(ctx, opts, 4, 4, SearchConfig(executor="ray", workers=2))
    ray_s = time.perf_counter() - t
    assert ray.is_initialized(), "the executor must not shut down a Ray it did not start"
    pooled = search_setups(ctx, opts, 4, 4, SearchConfig(executor="process", workers=2))
    print(f"ray {ray_s:.1f} s; {on_ray.evaluated} evaluated of {on_ray.retained} retained")
    assert (on_ray.evaluated, on_ray.pruned, on_ray.retained) == (
        pooled.evaluated, pooled.pruned, pooled.retained)
    assert [_key(c) for c in on_ray.candidates] == [_key(c) for c in pooled.candidates]
    for a, b in zip(on_ray.candidates, pooled.candidates, strict=True):
        # each worker warm-starts from its own previous solutions: equal to solver tolerance
        if math.isnan(b.quality):
            assert math.isnan(a.quality), a.index
        else:
            assert a.quality == pytest.approx(b.quality, abs=1e-6), a.index
            assert a.fractions == pytest.approx(b.fractions, abs=1e-4), a.index
    assert sum(c.status == "feasible" for c in on_ray.candidates) > 0


@pytest.mark.slow
def test_ray_executor_stops_the_instance_it_started(small: Any) -> None:
    ctx, opts = small
    assert not ray.is_initialized()
    executor = make_executor("ray", ctx, workers=1)
    try:
        assert ray.is_initialized()
        setups = [(i, s.setup) for i, s in enumerate(_few_setups(opts))]
        outs = [o for batch in executor.run([setups[:2], setups[2:]]) for o in batch]
    finally:
        executor.close()
    assert not ray.is_initialized()
    assert sorted(o.index for o in outs) == list(range(len(setups)))


def _few_setups(opts: list[ModelOptions]) -> list[Any]:
    from routerwise.search.enumerate import EnumerationCounts, enumerate_setups

    out = []
    for placed in enumerate_setups(opts, 4, 4, EnumerationCounts()):
        out.append(placed)
        if len(out) == 3:
            break
    return out


def test_missing_ray_is_a_named_error(small: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(InputError, match=r"pip install 'routerwise\[ray\]'"):
        make_executor("ray", small[0], workers=1)
