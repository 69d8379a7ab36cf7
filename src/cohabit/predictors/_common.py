"""Shared helpers of the predictors: resource kinds, input checks, recency weights, fan-out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import TypeVar

import numpy as np

from cohabit.model import RESOURCE_FIELDS

RESOURCES = RESOURCE_FIELDS
"""Resource names, as the fields of :class:`cohabit.model.Resources`."""

MEMORY_LIKE = frozenset({"memory_mib", "gpu_memory_mib"})
"""Resources whose shortfall is fatal (an OOM kill), sized from peaks with an OOM bump."""


def check_resource(resource: str) -> str:
    """Return ``resource`` or raise ``ValueError`` naming the allowed values."""
    if resource not in RESOURCES:
        raise ValueError(f"resource must be one of {RESOURCES}, got {resource!r}")
    return resource


def decay_weights(times: np.ndarray, half_life_s: float) -> np.ndarray:
    """Exponential decay weights ``2 ** ((t - t_max) / half_life)`` (newest sample = 1)."""
    if half_life_s <= 0 or not np.isfinite(half_life_s):
        return np.ones_like(times, dtype=float)
    return np.exp2((times - times.max()) / half_life_s)


T = TypeVar("T")
R = TypeVar("R")

FAN_OUT_CHUNKS = 32
"""Tasks a fan-out is cut into: enough to balance a few dozen workers, few enough that each
task's fixed cost (shipping the shared inputs, scheduling) stays small."""


def fan_out(executor: Executor | None, fn: Callable[[list[T]], list[R]],
            items: Sequence[T], chunks: int = FAN_OUT_CHUNKS) -> list[R]:
    """``fn`` over contiguous chunks of ``items``, results concatenated in ``items`` order.

    Args:
        executor: a :class:`concurrent.futures.Executor` (e.g. Dask's
            ``Client.get_executor()``), or ``None`` to call ``fn(items)`` here, in one go.
        fn: a picklable callable taking a list of items and returning a list of results (one
            task per chunk, so each task's shared inputs travel once).
        items: the per-workload work, e.g. pod series.
        chunks: at most this many tasks (>= 1).

    Returns:
        the results of every chunk, concatenated in order: the same list ``fn(items)`` gives
        whenever ``fn`` treats each item on its own.

    Raises:
        whatever ``fn`` raises (the first failing chunk's error).
    """
    items = list(items)
    if executor is None or len(items) < 2:
        return fn(items)
    n = max(1, min(chunks, len(items)))
    bounds = np.linspace(0, len(items), n + 1).round().astype(int)
    parts = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    futures = [executor.submit(fn, part) for part in parts]
    try:
        return [r for f in futures for r in f.result()]
    finally:
        for f in futures:
            f.cancel()
