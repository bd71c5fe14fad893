"""Executors run batches of setup evaluations (docs/architecture.md §6.5: Protocol + explicit
registry).

``serial`` evaluates in this process; ``process`` uses a process pool whose workers each hold
the evaluation context once (``init_worker``). A Ray executor plugs in by implementing the
same protocol and adding a registry entry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Protocol

from routerwise.errors import InputError
from routerwise.search.evaluate import EvalContext, Evaluator, Outcome, evaluate_batch, init_worker
from routerwise.search.space import SetupOption

Batch = Sequence[tuple[int, SetupOption]]


class Executor(Protocol):
    """Evaluates batches; yields each batch's outcomes as soon as it is done (any order)."""

    def run(self, batches: Sequence[Batch]) -> Iterator[list[Outcome]]: ...

    def close(self) -> None: ...


class SerialExecutor:
    def __init__(self, ctx: EvalContext, workers: int | None = None) -> None:
        self.evaluator = Evaluator(ctx)

    def run(self, batches: Sequence[Batch]) -> Iterator[list[Outcome]]:
        for batch in batches:
            yield [self.evaluator.evaluate(i, s) for i, s in batch]

    def close(self) -> None:
        return None


class PoolExecutor:
    """A process pool; ``workers`` defaults to the CPUs this process may use."""

    def __init__(self, ctx: EvalContext, workers: int | None = None) -> None:
        n = workers or len(os.sched_getaffinity(0))
        self.pool = ProcessPoolExecutor(max_workers=max(1, n), initializer=init_worker,
                                        initargs=(ctx,))

    def run(self, batches: Sequence[Batch]) -> Iterator[list[Outcome]]:
        futures = [self.pool.submit(evaluate_batch, list(b)) for b in batches]
        for fut in as_completed(futures):
            yield fut.result()

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


EXECUTORS: Mapping[str, Callable[[EvalContext, int | None], Executor]] = {
    "serial": SerialExecutor,
    "process": PoolExecutor,
}


def make_executor(name: str, ctx: EvalContext, workers: int | None = None) -> Executor:
    try:
        factory = EXECUTORS[name]
    except KeyError:
        raise InputError(f"unknown executor {name!r}; known: {sorted(EXECUTORS)}") from None
    return factory(ctx, workers)
