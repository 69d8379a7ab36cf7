"""kopf handlers: thin. Each takes the keyword arguments it uses and ``**_``, finds the
runtime in ``memo.runtime`` and calls :mod:`cohabit.operator.reconciler`.

Pods and nodes are not kopf resources here: the runtime's watch cache
(:mod:`cohabit.operator.cache`) follows them and wakes the scheduler loops.

Handlers are plain module functions (unit tests call them directly); :func:`build_registry`
attaches them to a fresh :class:`kopf.OperatorRegistry` with the settings' intervals, so
nothing is registered at import time and nothing reads the environment at import.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf

from cohabit.config import GROUP, VERSION, OperatorSettings
from cohabit.operator.reconciler import (
    accept_policy,
    forget_policy,
    forget_workload,
    reconcile_workload,
    scheduling_pass,
)
from cohabit.operator.runtime import Runtime

__all__ = [
    "WORKLOAD_PLURALS",
    "build_registry",
    "cleanup",
    "configure",
    "login",
    "liveness",
    "placement_loop",
    "policy_changed",
    "policy_deleted",
    "workload_changed",
    "workload_deleted",
]

log = logging.getLogger(__name__)

WORKLOAD_PLURALS = {"databaseworkloads": "DatabaseWorkload", "gpuworkloads": "GpuWorkload"}
"""Workload resources (plural -> kind)."""


def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    """kopf login with the runtime's own ``ApiClient`` credentials (one identity for kopf's
    watches and for cohabit's binds/evictions; works with ``--kubeconfig`` and in-cluster)."""
    cfg = memo.runtime.api_client.configuration
    header = (cfg.get_api_key_with_prefix("BearerToken")
              or cfg.get_api_key_with_prefix("authorization"))
    parts = header.split(" ", 1) if header else []
    scheme, token = ((None, None) if not parts else (None, parts[0]) if len(parts) == 1
                     else (parts[0], parts[1]))
    return kopf.ConnectionInfo(
        server=cfg.host, ca_path=cfg.ssl_ca_cert, insecure=not cfg.verify_ssl,
        username=cfg.username or None, password=cfg.password or None, scheme=scheme,
        token=token, certificate_path=cfg.cert_file, private_key_path=cfg.key_file)


def cleanup(memo: Any, **_: Any) -> None:
    """kopf cleanup: release the telemetry source's pooled HTTP connections, stop the watch
    cache and write the Events still queued."""
    runtime: Runtime = memo.runtime
    close = getattr(runtime.usage, "close", None)
    if close is not None:
        close()
    runtime.cluster.stop()
    runtime.events.stop()


def configure(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    """Startup: kopf settings (state in ``cohabit.io`` annotations, peering, posting level).

    Peering: with ``runtime.standalone`` none at all (no peering resource needed); otherwise
    mandatory, so an instance never acts without the peering that elects one active
    instance (a missing peering CRD pauses every watch, logged at WARNING and reported by
    ``/healthz``).
    """
    runtime: Runtime = memo.runtime
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="cohabit.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="cohabit.io", key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.peering.name = runtime.settings.peering
    settings.peering.standalone = runtime.standalone
    settings.peering.mandatory = not runtime.standalone
    settings.execution.max_workers = 8
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60


def workload_changed(body: Any, spec: Any, name: str, namespace: str | None, meta: Any,
                     status: Any, patch: Any, memo: Any, **_: Any) -> None:
    """create/update/resume and the re-plan timer of a workload: write its status
    (``namespace`` is kopf's ``str | None``; a workload is namespaced, so always set)."""
    runtime: Runtime = memo.runtime
    new = reconcile_workload(runtime, body["kind"], name, namespace or "", dict(spec),
                             int(meta.get("generation") or 0), dict(status or {}), time.time(),
                             uid=str(meta.get("uid") or ""))
    patch.status.update(new)
    runtime.wake_all()


def workload_deleted(body: Any, name: str, namespace: str | None, memo: Any,
                     **_: Any) -> None:
    """delete of a workload: forget it and its metric series.

    The workload carries kopf's finalizer (``kopf.timer`` handlers, here the re-plan timer,
    always add one, so kopf stops the timer before the object goes): deleting it waits for
    a running operator. README "Removing cohabit" says how to remove everything cleanly.
    """
    forget_workload(memo.runtime, name, namespace or "", str(body.get("kind") or ""))


def policy_changed(spec: Any, name: str, meta: Any, status: Any, patch: Any, memo: Any,
                   **_: Any) -> None:
    """create/update/resume of a ``PlacementPolicy``: validate, keep, write its status."""
    new = accept_policy(memo.runtime, name, dict(spec), int(meta.get("generation") or 0),
                        dict(status or {}), time.time(), uid=str(meta.get("uid") or ""))
    patch.status.update(new)


def policy_deleted(name: str, memo: Any, **_: Any) -> None:
    """delete of a ``PlacementPolicy`` (its scheduler daemon's finalizer holds it until
    kopf stopped the daemon): forget it; workloads naming it report ``PolicyNotFound``."""
    forget_policy(memo.runtime, name)


def placement_loop(name: str, stopped: Any, memo: Any, logger: Any, **_: Any) -> None:
    """Daemon per ``PlacementPolicy``: the secondary scheduler for the pods that follow it.

    Runs a scheduling pass when woken by a pending pod (or every ``scheduler.interval_s``),
    and a rebinding pass every ``reconcile.interval_s``. kopf stops it when the policy is
    deleted or this operator loses peering.
    """
    runtime: Runtime = memo.runtime
    wake = runtime.waker(name)
    last_rebind = time.time()  # first rebinding after one interval: let status settle
    while not stopped:
        now = time.time()
        rebind = now - last_rebind >= runtime.settings.reconcile.interval_s
        try:
            scheduling_pass(runtime, name, now, rebind=rebind)
        except Exception:  # keep the scheduler alive; the next pass retries
            logger.exception("scheduling pass for policy %s failed", name)
        if rebind:
            last_rebind = now
        deadline = time.monotonic() + runtime.settings.scheduler.interval_s
        while not stopped and time.monotonic() < deadline:
            if wake.wait(0.2):
                break
        wake.clear()


def liveness(memo: Any, **_: Any) -> dict[str, Any]:
    """Liveness probe payload (``/healthz``): whether this instance is ready to act and what
    it holds.

    ``ready`` is false while any kopf watch is paused (``paused`` says which and why: the
    peering CRD is missing, or another instance is active) or the node/pod cache has not
    synced. ``workloads`` counts the valid ones, ``invalid`` the ones whose spec failed
    validation. The probe answers 200 either way (a standby is alive, not broken).
    """
    runtime: Runtime = memo.runtime
    paused = runtime.pauses.snapshot() if runtime.pauses is not None else {}
    synced = runtime.cluster.synced
    return {"ready": not paused and synced, "paused": paused,
            "mode": "standalone" if runtime.standalone else
                    f"peering {runtime.settings.peering}",
            "cacheSynced": synced, "workloads": len(runtime.workloads),
            "invalid": len(runtime.invalid), "policies": len(runtime.policies),
            "invalidPolicies": len(runtime.invalid_policies)}


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    """A kopf registry with every cohabit handler, intervals from ``settings``."""
    reg = kopf.OperatorRegistry()
    kopf.on.login(registry=reg)(login)
    kopf.on.startup(registry=reg)(configure)
    kopf.on.cleanup(registry=reg)(cleanup)
    for plural in WORKLOAD_PLURALS:
        kopf.on.resume(GROUP, VERSION, plural, registry=reg, id="reconcile")(workload_changed)
        kopf.on.create(GROUP, VERSION, plural, registry=reg, id="reconcile")(workload_changed)
        kopf.on.update(GROUP, VERSION, plural, registry=reg, id="reconcile",
                       field="spec")(workload_changed)
        kopf.timer(GROUP, VERSION, plural, registry=reg, id="replan",
                   interval=settings.reconcile.interval_s,
                   idle=settings.reconcile.idle_s or None,
                   initial_delay=settings.reconcile.interval_s)(workload_changed)
        kopf.on.delete(GROUP, VERSION, plural, registry=reg, optional=True,
                       id="forget")(workload_deleted)
    for register in (kopf.on.resume, kopf.on.create):
        register(GROUP, VERSION, "placementpolicies", registry=reg, id="accept")(policy_changed)
    kopf.on.update(GROUP, VERSION, "placementpolicies", registry=reg, id="accept",
                   field="spec")(policy_changed)
    kopf.on.delete(GROUP, VERSION, "placementpolicies", registry=reg, optional=True,
                   id="forget")(policy_deleted)
    kopf.daemon(GROUP, VERSION, "placementpolicies", registry=reg, id="scheduler",
                cancellation_timeout=10.0)(placement_loop)
    kopf.on.probe(registry=reg, id="state")(liveness)
    return reg
