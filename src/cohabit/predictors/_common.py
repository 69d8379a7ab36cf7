"""Shared helpers of the predictors: resource kinds, input checks, recency weights."""

from __future__ import annotations

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
