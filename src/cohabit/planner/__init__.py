"""Planner: policies that decide *what* should change (resize, evict), never how.

One explicit registry, :data:`POLICIES` (as the descheduler's ``RegisterDefaultPlugins``):
name -> :class:`~cohabit.planner.base.PluginSpec` with an args dataclass (defaults), a
validator and a factory. :func:`build_policies` turns a parsed ``PlacementPolicy`` into the
enabled policies.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from cohabit.config import PolicyConfig
from cohabit.planner.base import PlanContext, PlannerPolicy, PluginSpec, PolicyArgsError
from cohabit.planner.rebinding import (
    Rebinding,
    RebindingArgs,
    node_contention,
    room_victims,
    validate_rebinding_args,
)
from cohabit.planner.rightsizing import RightSizing, RightSizingArgs, validate_right_sizing_args

__all__ = [
    "POLICIES",
    "PlanContext",
    "PluginSpec",
    "PlannerPolicy",
    "PolicyArgsError",
    "Rebinding",
    "RebindingArgs",
    "RightSizing",
    "RightSizingArgs",
    "build_policies",
    "build_policy",
    "node_contention",
    "room_victims",
]

POLICIES: dict[str, PluginSpec] = {
    "RightSizing": PluginSpec(RightSizingArgs, RightSizing, validate_right_sizing_args),
    "Rebinding": PluginSpec(RebindingArgs, Rebinding, validate_rebinding_args),
}
"""Every planner policy, by name."""


def build_policy(name: str, args: dict[str, Any] | None = None) -> PlannerPolicy:
    """The registered policy ``name`` built from ``args`` (missing args take defaults).

    Raises:
        PolicyArgsError: unknown policy or argument, or a value out of range.
    """
    if name not in POLICIES:
        raise PolicyArgsError(f"unknown planner policy {name!r}; known: {', '.join(POLICIES)}")
    spec = POLICIES[name]
    known = {f.name for f in fields(spec.args_type)}
    unknown = set(args or {}) - known
    if unknown:
        raise PolicyArgsError(f"{name}: unknown argument {sorted(unknown)[0]!r}")
    parsed = spec.args_type(**(args or {}))
    spec.validate(parsed)
    return spec.factory(parsed)


def build_policies(config: PolicyConfig) -> list[PlannerPolicy]:
    """The planner policies a ``PlacementPolicy`` enables, in a fixed order."""
    out: list[PlannerPolicy] = []
    if config.right_sizing.enabled:
        out.append(build_policy("RightSizing", {
            "min_confidence": config.right_sizing.min_confidence,
            "tolerance": config.right_sizing.tolerance,
        }))
    if config.rebinding.enabled:
        out.append(build_policy("Rebinding", {
            "contention_threshold": config.rebinding.contention_threshold,
        }))
    return out
