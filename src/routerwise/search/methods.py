"""The search methods behind ``routerwise plan --search`` (Protocol + explicit registry).

``lagrangian`` (default) scales to many models and GPUs and proves how far from optimal its
answer can be; ``exhaustive`` enumerates every placeable setup — the reference for small
problems and in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol

from routerwise.errors import InputError
from routerwise.search.evaluate import EvalContext
from routerwise.search.placement import Layout
from routerwise.search.scalable import scalable_search
from routerwise.search.search import SearchConfig, SearchResult, search_setups
from routerwise.search.space import ModelOptions


class SearchMethod(Protocol):
    def __call__(self, ctx: EvalContext, options: list[ModelOptions], num_gpus: int,
                 gpus_per_node: Layout, config: SearchConfig,
                 progress: Callable[[int, int], None] | None,
                 enumeration_progress: Callable[[int], None] | None) -> SearchResult: ...


def _exhaustive(ctx: EvalContext, options: list[ModelOptions], num_gpus: int,
                gpus_per_node: Layout, config: SearchConfig,
                progress: Callable[[int, int], None] | None,
                enumeration_progress: Callable[[int], None] | None) -> SearchResult:
    return search_setups(ctx, options, num_gpus, gpus_per_node, config, progress,
                         enumeration_progress)


def _lagrangian(ctx: EvalContext, options: list[ModelOptions], num_gpus: int,
                gpus_per_node: Layout, config: SearchConfig,
                progress: Callable[[int, int], None] | None,
                enumeration_progress: Callable[[int], None] | None) -> SearchResult:
    return scalable_search(ctx, options, num_gpus, gpus_per_node, config, progress)


SEARCH_METHODS: Mapping[str, SearchMethod] = MappingProxyType(
    {"lagrangian": _lagrangian, "exhaustive": _exhaustive})


def run_search(ctx: EvalContext, options: list[ModelOptions], num_gpus: int,
               gpus_per_node: Layout, config: SearchConfig = SearchConfig(),
               progress: Callable[[int, int], None] | None = None,
               enumeration_progress: Callable[[int], None] | None = None) -> SearchResult:
    """Run ``config.method``; an unknown name is an InputError listing the known ones."""
    try:
        method = SEARCH_METHODS[config.method]
    except KeyError:
        raise InputError(f"unknown search method {config.method!r}; known: "
                         f"{sorted(SEARCH_METHODS)}") from None
    return method(ctx, options, num_gpus, gpus_per_node, config, progress,
                  enumeration_progress)
