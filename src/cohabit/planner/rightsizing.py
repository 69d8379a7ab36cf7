"""Right-sizing: turn confident recommendations into ``Resize`` actions within the bounds.

For a workload in ``Apply`` mode, each container whose current request differs from the
recommended target by more than ``tolerance`` (relative) gets a ``Resize`` to the target
clamped into the workload's ``[min, max]`` bounds. Like VPA's updater it leaves requests that
are close enough alone (no churn), and, like VPA's ``lowConfidence`` gate, never acts on a
recommendation below ``min_confidence`` or flagged low-confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from cohabit.model import RESOURCE_FIELDS, Action, Resize, Resources
from cohabit.planner.base import PlanContext, PolicyArgsError

__all__ = ["RightSizing", "RightSizingArgs", "clamp_measured", "validate_right_sizing_args"]


def clamp_measured(target: Resources, current: Resources, lower: Resources,
                   upper: Resources, measured: frozenset[str] | None = None) -> Resources:
    """``target`` clamped into ``[lower, upper]`` field by field. Fields not in ``measured``
    (default: the fields with a non-zero target; 0 means "no samples") keep their ``current``
    value unclamped."""
    clamped = target.clamp(lower, upper)
    if measured is None:
        measured = frozenset(f for f in RESOURCE_FIELDS if getattr(target, f))
    return Resources(**{f: getattr(clamped, f) if f in measured else getattr(current, f)
                        for f in RESOURCE_FIELDS})


@dataclass(frozen=True)
class RightSizingArgs:
    """Arguments of :class:`RightSizing`.

    Attributes:
        min_confidence: recommendations below this confidence never act, in [0, 1].
        tolerance: relative difference below which a request is left alone, >= 0.
    """

    min_confidence: float = 0.5
    tolerance: float = 0.1


def validate_right_sizing_args(args: RightSizingArgs) -> None:
    """Raise :class:`PolicyArgsError` naming the bad argument."""
    if not 0.0 <= args.min_confidence <= 1.0:
        raise PolicyArgsError(f"RightSizing.min_confidence={args.min_confidence} not in [0, 1]")
    if args.tolerance < 0:
        raise PolicyArgsError(f"RightSizing.tolerance={args.tolerance} is negative")


class RightSizing:
    """Resize ``Apply``-mode workloads to confident recommendations (see module doc)."""

    name = "RightSizing"

    def __init__(self, args: RightSizingArgs) -> None:
        self.args = args

    def plan(self, ctx: PlanContext) -> list[Action]:
        actions: list[Action] = []
        for workload in ctx.workloads:
            if workload.mode != "Apply":
                continue
            for rec in ctx.recommendations.get(workload.key, ()):
                if rec.low_confidence or rec.confidence < self.args.min_confidence:
                    continue
                current = ctx.current.get((workload.key, rec.container))
                if current is None:
                    continue
                wanted = clamp_measured(rec.target, current, workload.min_resources,
                                        workload.max_resources)
                changed = [f for f in RESOURCE_FIELDS if self._differs(getattr(current, f),
                                                               getattr(wanted, f))]
                if not changed:
                    continue
                detail = ", ".join(f"{f} {getattr(current, f)}->{getattr(wanted, f)}"
                                   for f in changed)
                actions.append(Resize(workload.key, rec.container, wanted,
                                      reason=f"right-size (confidence {rec.confidence:.2f}): "
                                             f"{detail}"))
        return actions

    def _differs(self, current: int, wanted: int) -> bool:
        if current == wanted:
            return False
        return abs(wanted - current) > self.args.tolerance * max(current, 1)
