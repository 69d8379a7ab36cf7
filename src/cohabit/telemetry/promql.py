"""A workload's PromQL confined to its namespace: a label matcher injected into every vector
selector, as prom-label-proxy does (prometheus-community/prom-label-proxy ``injectproxy``).

``spec.qos.query`` is written by whoever may create a workload, but it runs with the
operator's Prometheus access and its last value lands in the workload's status. So before it
is sent, :func:`confine` parses it (``promql-parser``, GreptimeTeam's Rust PromQL parser,
compatible with Prometheus 2.45), adds ``<label>="<namespace>"`` to every vector selector (in
range selectors and subqueries too) and prints it back. Matchers are ANDed, so the query can
only see series of that namespace whatever else it matches; a query that names another
namespace with ``=`` is refused outright.

The printed query is parsed again and compared with the original node by node (selectors,
matchers, literals, functions, modifiers): the rewrite is sent only if the sole difference is
the injected matcher, so a value the printer cannot reproduce (e.g. an escaped quote) makes
the query refused rather than changed. Refusals raise :class:`PromqlRefused`, which the usage
source reports as ``TelemetryUnavailable`` (the workload gets ``LowConfidence`` with the
reason, and no action).
"""

from __future__ import annotations

from typing import Any

import promql_parser as pp

__all__ = ["PromqlRefused", "confine", "selectors"]


class PromqlRefused(ValueError):
    """A query that is not valid PromQL or cannot be confined safely; says why."""


def _matchers(sel: Any) -> tuple[tuple[str, str, str], ...]:
    return tuple((str(m.op), m.name, m.value) for m in sel.matchers.matchers)


def _signature(expr: Any, drop: tuple[str, str, str] | None = None) -> list[tuple[Any, ...]]:
    """Pre-order list of every node with the fields that decide its meaning; ``drop`` is a
    matcher left out of each selector's matchers (the injected one, once)."""
    out: list[tuple[Any, ...]] = []

    def visit(node: Any) -> None:
        kind = type(node).__name__
        if isinstance(node, pp.VectorSelector):
            ms = list(_matchers(node))
            if drop is not None and drop in ms:
                ms.remove(drop)
            out.append((kind, node.name, tuple(sorted(ms)), str(node.offset), str(node.at),
                        len(node.matchers.or_matchers)))
        elif isinstance(node, pp.MatrixSelector):
            out.append((kind, str(node.range)))
        elif isinstance(node, pp.SubqueryExpr):
            out.append((kind, str(node.range), str(node.step), str(node.offset), str(node.at)))
        elif isinstance(node, pp.StringLiteral | pp.NumberLiteral):
            out.append((kind, repr(node.val)))
        elif isinstance(node, pp.Call):
            out.append((kind, node.func.name, len(node.args)))
        elif isinstance(node, pp.AggregateExpr | pp.BinaryExpr):
            out.append((kind, str(node.op), str(node.modifier)))
        else:
            out.append((kind,))

    pp.walk(expr, pre_visit=visit)
    return out


def selectors(query: str) -> list[tuple[str | None, tuple[tuple[str, str, str], ...]]]:
    """``(metric name, matchers)`` of every vector selector of ``query``, in order.

    Raises:
        PromqlRefused: ``query`` is not valid PromQL.
    """
    return _selectors_of(_parse(query))


def _parse(query: str) -> Any:
    try:
        return pp.parse(query)
    except (ValueError, TypeError) as exc:
        raise PromqlRefused(f"not valid PromQL: {exc}") from exc


def confine(query: str, namespace: str, label: str = "namespace") -> str:
    """``query`` with ``label="namespace"`` added to every vector selector.

    Example: ``confine('histogram_quantile(0.99, rate(http_bucket[5m]))', "shop")`` is
    ``'histogram_quantile(0.99, rate(http_bucket{namespace="shop"}[5m]))'``.

    Raises:
        PromqlRefused: not valid PromQL; a selector matching ``label`` equal to another
            namespace; ``or`` between label matchers; or a query the printer does not
            reproduce exactly (refused rather than changed).
    """
    if not namespace or '"' in namespace or "\\" in namespace:
        raise PromqlRefused(f"namespace {namespace!r} cannot be a label value here")
    expr = _parse(query)
    injected = pp.Matcher(pp.MatchOp.Equal, label, namespace)
    for _name, ms in selectors(query):
        for op, name, value in ms:
            if name == label and op == str(pp.MatchOp.Equal) and value != namespace:
                raise PromqlRefused(f"the query reads {label}={value!r}; a workload of "
                                    f"namespace {namespace!r} may only read its own")

    def add(sel: Any) -> Any:
        if sel.matchers.or_matchers:
            raise PromqlRefused("'or' between label matchers is not supported")
        sel.matchers = pp.Matchers([*sel.matchers.matchers, injected])
        return sel

    def post(node: Any) -> Any:
        if isinstance(node, pp.VectorSelector):
            return pp.parse(str(add(node)))
        if isinstance(node, pp.MatrixSelector):
            node.vector_selector = add(node.vector_selector)
            return node
        return None

    try:
        out = str(pp.transform(expr, post_visit=post))
    except (ValueError, TypeError) as exc:  # the printed selector did not parse again
        raise PromqlRefused(f"the query cannot be confined to its namespace safely: {exc}; "
                            "simplify it, e.g. avoid escaped quotes in label values") from exc
    _verify(query, out, (str(injected.op), label, namespace))
    return out


def _verify(original: str, rewritten: str, injected: tuple[str, str, str]) -> None:
    """Refuse unless ``rewritten`` is ``original`` plus ``injected`` in every selector."""
    before = _signature(_parse(original))
    again = _parse(rewritten)
    after = _signature(again, drop=injected)
    confined = all(injected in ms for _, ms in _selectors_of(again))
    if before != after or not confined:
        raise PromqlRefused("the query cannot be confined to its namespace safely (the "
                            "rewritten query differs from the original beyond the injected "
                            "matcher); simplify it, e.g. avoid escaped quotes in strings")


def _selectors_of(expr: Any) -> list[tuple[str | None, tuple[tuple[str, str, str], ...]]]:
    """``(metric name, matchers)`` of every vector selector of the parsed ``expr``, in order."""
    found: list[tuple[str | None, tuple[tuple[str, str, str], ...]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, pp.VectorSelector):
            found.append((node.name, _matchers(node)))

    pp.walk(expr, pre_visit=visit)
    return found
