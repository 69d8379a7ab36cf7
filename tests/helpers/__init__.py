"""Helpers shared by the unit and simulator tests, imported as ``tests.helpers.<module>``:

* :mod:`.operator_factories` -- runtimes' parts for the operator tests (usage sources over the
  real GenAI trace, a recording actuator, a static cluster source, workload specs);
* :mod:`.placement_factories` -- nodes and pods for the placement tests;
* :mod:`.fake_kube` -- an in-memory Kubernetes API for the actuator tests;
* :mod:`.loopback_servers` -- API clients pointed at a closed port or a silent server;
* :mod:`.replay_nvml` -- NVML replaying recorded readings.

The integration tier's helpers are in :mod:`tests.integration` (``harness``,
``operator_support``, ``eviction_support``).
"""
