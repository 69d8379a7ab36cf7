"""Parameters of cohabit's own placement score (``spec.score`` of a ``PlacementPolicy``).

The ``cohabit`` score plugin (:func:`cohabit.placement.policies.score_cohabit`) adds up
documented parts (:mod:`cohabit.placement.parts`), each multiplied by a weight here. The
defaults are the values every benchmark in ``docs/benchmarks.md`` ran with, on every pod
list and seed: nothing is tuned per pod list. Setting a weight to 0 switches its part off;
with ``lookahead = 0`` and no interference profiles or usage data the score is exactly FGD's.

No kubernetes import here (import-linter enforces it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["SCORE_FIELDS", "ScoreWeights", "parse_score_weights"]

LOOKAHEAD_WEIGHTINGS = ("count", "demand")


@dataclass(frozen=True)
class ScoreWeights:
    """Weights of the ``cohabit`` placement score, in score points (FGD's scale is 0..100).

    Raises (from ``__post_init__``):
        ValueError: a negative or non-finite weight, a target outside (0, 1], an unknown
            ``lookahead_weighting`` (the message names the field).
    """

    fragmentation: float = 1.0
    """Multiplier of FGD's score ``int(100 * sigmoid(frag gain / 1000))`` (Weng et al.,
    ATC'23): the fragmentation part."""

    lookahead: float = 0.01
    """Points per GPU (1000 milli) of look-ahead fragment avoided
    (:mod:`cohabit.placement.lookahead`: idle GPU the typical pods could not use even if they
    kept arriving, counting CPU that runs out first and remainders inside GPUs). The default
    is below one point across the whole range of a node's fragment, so it orders the nodes
    FGD's integer score ties."""

    lookahead_quantum: float = 1000.0
    """Look-ahead gains are rounded to the nearest multiple of this many milli before they
    are weighted: differences below half of it stay ties, broken by the seeded node order
    as in FGD (0 = no rounding)."""

    lookahead_coverage: float = 100.0
    """Share of the workload's pods (percent) the look-ahead's typical shapes cover; FGD
    keeps 95, 100 keeps every shape (rare multi-GPU shapes included)."""

    lookahead_weighting: str = "demand"
    """``"demand"``: typical pods weighted by their share of GPU demand; ``"count"``: by
    frequency, as FGD."""

    interference: float = 0.3
    """Points per percent of predicted co-location slowdown (suffered + inflicted, see
    :meth:`cohabit.placement.Interference.penalty`); ``PlacementPolicy.spec.interferenceWeight``
    sets it in the operator."""

    ls_protection: float = 3.0
    """Multiplier of the interference penalty a latency-sensitive (LS) pod suffers (the
    QoS-class part: LS protected, best-effort pods soak up what is left, as PIMCloud and
    Koordinator co-locate them); 1 = LS treated like any pod."""

    correlation: float = 10.0
    """Points per unit of Pearson correlation between the pod's GPU utilisation and its
    GPU neighbours' (positive part), Kube-Knots' CBP signal (Thinakaran et al., CLUSTER'19):
    correlated peaks collide."""

    peak_fit: float = 50.0
    """Points per GPU of predicted peak overflow: how far the predicted peaks of the pods on
    the GPU (this one included) exceed one GPU (Kube-Knots' PP signal, the peak forecast
    injected by the engine)."""

    qos_target: float = 0.8
    """Fraction of solo speed below which an LS pod's QoS is at risk: the replay's QoS guard
    throttles the best-effort pods on its GPU to restore it."""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "lookahead_weighting":
                if v not in LOOKAHEAD_WEIGHTINGS:
                    raise ValueError(f"score.lookaheadWeighting: {v!r} is not one of "
                                     f"{', '.join(LOOKAHEAD_WEIGHTINGS)}")
                continue
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) \
                    or v < 0:
                raise ValueError(f"score.{_camel(f.name)}: expected a finite number >= 0, "
                                 f"got {v!r}")
        if not 0 < self.lookahead_coverage <= 100:
            raise ValueError(f"score.lookaheadCoverage: expected a number in (0, 100], got "
                             f"{self.lookahead_coverage!r}")
        if not 0 < self.qos_target <= 1:
            raise ValueError(f"score.qosTarget: expected a number in (0, 1], got "
                             f"{self.qos_target!r}")


SCORE_FIELDS = tuple(f.name for f in fields(ScoreWeights))
"""Field names of :class:`ScoreWeights` (snake case; the spec uses camel case)."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def parse_score_weights(obj: Mapping[str, Any] | None, path: str = "spec.score") -> ScoreWeights:
    """``spec.score`` (camel-case keys, every one optional) as :class:`ScoreWeights`
    (``interference`` is not among them: ``spec.interferenceWeight`` sets it).

    Raises:
        ValueError: not an object, an unknown key, or a value out of range; the message
            starts with the field's JSON path (``spec.score.lookahead``).
    """
    if obj is None:
        return ScoreWeights()
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected an object")
    by_camel = {_camel(n): n for n in SCORE_FIELDS if n != "interference"}
    kwargs = {}
    for key, value in obj.items():
        name = by_camel.get(key)
        if name is None:
            raise ValueError(f"{path}.{key}: unknown field (known: {', '.join(by_camel)})")
        kwargs[name] = value
    try:
        return ScoreWeights(**kwargs)
    except ValueError as exc:
        raise ValueError(str(exc).replace("score.", f"{path}.", 1)) from None
