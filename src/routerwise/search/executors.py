"""Executors run batches of setup evaluations (docs/architecture.md §6.5: Protocol + explicit
registry).

``serial`` evaluates in this process; ``process`` uses a process pool whose workers each hold
the evaluation context once (``init_worker``); ``ray`` (the optional ``routerwise[ray]``
extra) runs one actor per worker on a Ray cluster — a local instance by default — each
holding an ``Evaluator`` built from the context put once in Ray's object store.

Every factory takes ``(ctx, workers, *, address=None)``; only ``ray`` uses ``address``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Protocol

from routerwise.errors import InputError
from routerwise.search.evaluate import EvalContext, Evaluator, Outcome, evaluate_batch, init_worker
from routerwise.search.space import SetupOption

Batch = Sequence[tuple[int, SetupOption]]


class Executor(Protocol):
    """Evaluates batches; yields each batch's outcomes as soon as it is done (any order)."""

    def run(self, batches: Sequence[Batch]) -> Iterator[list[Outcome]]: ...

    def close(self) -> None: ...


class ExecutorFactory(Protocol):
    """Builds an executor for ``ctx``; ``workers`` None: as many as there are CPUs;
    ``address``: where a distributed executor finds its cluster (others ignore it)."""

    def __call__(self, ctx: EvalContext, workers: int | None = None, *,
                 address: str | None = None) -> Executor: ...


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


class SerialExecutor:
    def __init__(self, ctx: EvalContext, workers: int | None = None, *,
                 address: str | None = None) -> None:
        self.evaluator = Evaluator(ctx)

    def run(self, batches: Sequence[Batch]) -> Iterator[list[Outcome]]:
        for batch in batches:
            yield [self.evaluator.evaluate(i, s) for i, s in batch]

    def close(self) -> None:
        return None


class PoolExecutor:
    """A process pool; ``workers`` defaults to the CPUs this process may use."""

    def __init__(self, ctx: EvalContext, workers: int | None = None, *,
                 address: str | None = None) -> None:
        n = workers or _cpus()
        self.pool = ProcessPoolExecutor(max_workers=max(1, n), initializer=init_worker,
                                        initargs=(ctx,))

    def run(self, batches: Sequence[Batch]) -> Iterator[list[Outcome]]:
        futures = [self.pool.submit(evaluate_batch, list(b)) for b in batches]
        for fut in as_completed(futures):
            yield fut.result()

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class BatchWorker:
    """A Ray actor's state: one evaluator (and its cost cache and warm starts) per worker."""

    def __init__(self, ctx: EvalContext) -> None:
        self.evaluator = Evaluator(ctx)

    def evaluate(self, batch: Batch) -> list[Outcome]:
        return [self.evaluator.evaluate(i, s) for i, s in batch]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray, an optional extra: "
                         "pip install 'routerwise[ray]'") from None
    return ray


def _init_ray(ray: Any, workers: int | None, address: str | None) -> None:
    """Connect to the cluster at ``address``, or start a local instance (quiet, no
    dashboard) with ``workers`` CPUs (default: the CPUs this process may use)."""
    options: dict[str, Any] = {
        "ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False,
        "logging_level": logging.WARNING, "configure_logging": True,
    }
    if address is None:  # "local": a new instance, never someone else's running cluster
        options |= {"address": "local", "num_cpus": workers or _cpus()}
    else:
        options["address"] = address
    try:
        ray.init(**options)
    except ConnectionError as exc:
        raise InputError(f"--ray-address {address}: cannot connect to a Ray cluster "
                         f"({exc})") from None


class RayExecutor:
    """One ``BatchWorker`` actor (1 CPU each) per worker on a Ray cluster; batches go to
    whichever actor is free, outcomes come back as each batch completes.

    Connects with ``ray.init(address=address)`` unless Ray is already initialised in this
    process (then that session is used as it is); with no address it starts a new local
    instance of ``workers`` CPUs (never joining a cluster found through ``RAY_ADDRESS`` or
    a running ``ray start``: pass ``address="auto"`` for that). ``workers`` defaults to the
    cluster's CPUs; actors beyond its free CPUs wait for them. ``close()`` kills the actors
    and shuts Ray down only if this executor initialised it."""

    def __init__(self, ctx: EvalContext, workers: int | None = None, *,
                 address: str | None = None) -> None:
        self._ray = _import_ray()
        self._owns_ray = not self._ray.is_initialized()
        if self._owns_ray:
            _init_ray(self._ray, workers, address)
        n = max(1, workers or int(self._ray.cluster_resources().get("CPU", 1)))
        ctx_ref = self._ray.put(ctx)
        actor = self._ray.remote(num_cpus=1)(BatchWorker)
        self._actors: list[Any] = [actor.remote(ctx_ref) for _ in range(n)]

    def run(self, batches: Sequence[Batch]) -> Iterator[list[Outcome]]:
        from ray.util import ActorPool

        pool = ActorPool(self._actors)
        yield from pool.map_unordered(lambda a, b: a.evaluate.remote(list(b)), batches)

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_ray = False


EXECUTORS: Mapping[str, ExecutorFactory] = {
    "serial": SerialExecutor,
    "process": PoolExecutor,
    "ray": RayExecutor,
}


def make_executor(name: str, ctx: EvalContext, workers: int | None = None,
                  address: str | None = None) -> Executor:
    """The executor ``name`` (see ``EXECUTORS``); ``address`` is the Ray cluster's for
    ``ray`` (None: a local instance) and ignored by the others."""
    try:
        factory = EXECUTORS[name]
    except KeyError:
        raise InputError(f"unknown executor {name!r}; known: {sorted(EXECUTORS)}") from None
    return factory(ctx, workers, address=address)
