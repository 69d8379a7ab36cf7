"""The cohabit operator: kopf handlers (thin) over the engine.

* :mod:`cohabit.operator.handlers`: the handlers and :func:`build_registry`;
* :mod:`cohabit.operator.reconciler`: what they do, as plain functions;
* :mod:`cohabit.operator.status`: status and conditions;
* :mod:`cohabit.operator.runtime`: runtime objects (in kopf's memo) and metrics;
* :mod:`cohabit.operator.main`: :func:`~cohabit.operator.main.run`.
"""
