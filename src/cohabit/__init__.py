"""cohabit: capacity planning and contention-aware placement for GPU and database workloads.

Subpackages (see ``docs/architecture.md``): ``model`` (plain dataclasses), ``config``,
``telemetry``, ``predictors``, ``planner``, ``placement``, ``actuator`` (the stages),
``engine`` (the one place the chain is wired), ``operator`` (kopf handlers), ``simulator``
(the offline trace simulator) and ``cli``.
"""

__version__ = "0.1.0"
