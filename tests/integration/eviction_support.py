"""The eviction fault-injection world (tests/integration/test_eviction_faults.py).

* :func:`run_pass` -- the operator's actuator (``KubernetesActuator`` over a
  ``ConfigMapLedger``, the API client configured as ``cohabit operator`` configures it in
  :func:`cohabit.operator.main.api_client_from_environment`: urllib3 retries off; see
  :func:`client_for`) evicting a list of pods one by one, each outcome reported through
  ``emit`` as it happens. The test runs it in-process, or in a subprocess
  (``eviction_driver.py``, which imports no more than the actuator so it starts fast) that it
  can SIGKILL.
* :class:`EvictionWorld` -- a private etcd + kube-apiserver (the test stops and restarts the
  server, so it must not be the session's), a namespace, a service account whose rights are
  three RoleBindings the test revokes and restores (pod reads, evictions, the ledger
  ConfigMaps), and a :class:`~harness.faultproxy.FaultProxy` in front of the server that the
  service account's kubeconfig points at.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cohabit.actuator import EvictionLimits
from cohabit.actuator.kubernetes import ConfigMapLedger, KubernetesActuator
from cohabit.model import Evict

NAMESPACE = "evict"
ACCOUNT = "evictor"
ROLES = {
    "read": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
             {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    "evict": [{"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]}],
    "ledger": [{"apiGroups": [""], "resources": ["configmaps"],
                "verbs": ["create", "update"]}],
}
"""The service account's rights, one Role + RoleBinding each (``evictor-<key>``)."""


def client_for(kubeconfig: str) -> Any:
    """An ``ApiClient`` as ``api_client_from_environment`` builds one from a kubeconfig
    (``retries = 0``), without importing the operator (kopf, the engine, scikit-learn)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.retries = 0
    return client.ApiClient(cfg)


def actuator(api: Any, ledger: str, budget: int, timeout: float, grace: float
             ) -> KubernetesActuator:
    """The operator's actuator and ledger as ``build_runtime`` makes them (ledger name per
    run, so runs are independent)."""
    book = ConfigMapLedger(api, NAMESPACE, name=ledger, request_timeout=timeout)
    limits = EvictionLimits(dry_run=False, evictions_per_hour=budget, max_unavailable=1000)
    return KubernetesActuator(api, limits=limits, ledger=book, request_timeout=timeout,
                              ledger_grace_s=grace, verify_binds=False)


def run_pass(api: Any, ledger: str, pods: list[str], budget: int, timeout: float,
             grace: float, emit: Callable[[dict[str, str]], None]) -> None:
    """Evict ``pods`` (names in :data:`NAMESPACE`) one by one; ``emit`` each outcome."""
    act = actuator(api, ledger, budget, timeout, grace)
    for pod in pods:
        [outcome] = act.apply([Evict(f"{NAMESPACE}/{pod}")])
        emit({"pod": pod, "status": outcome.status, "message": outcome.message})


def write_kubeconfig(path: Path, server: str, ca_file: Path, token: str) -> Path:
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": "c", "cluster": {
               "server": server,
               "certificate-authority-data": base64.b64encode(ca_file.read_bytes()).decode()}}],
           "users": [{"name": "u", "user": {"token": token}}],
           "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
           "current-context": "c"}
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


def kill(pid: int) -> None:
    """SIGKILL a process group (the driver runs in its own session)."""
    with contextlib.suppress(ProcessLookupError):  # it died already
        os.killpg(pid, signal.SIGKILL)
