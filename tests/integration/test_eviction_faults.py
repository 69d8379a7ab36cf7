"""The eviction budget holds under faults, on a real kube-apiserver (issue 9, Safety 1).

Regression: the actuator used to post the eviction and only then record it in the ledger
ConfigMap; a failing ledger write (403, 409, timeout) left the pod evicted, the outcome
"failed" and the eviction uncounted (three evictions in a row with a budget of one).

Each run evicts :data:`PODS` pods with a budget of :data:`BUDGET` per hour through the
operator's actuator and ledger (``eviction_support.run_pass``), authenticated as a service
account, through a fault-injecting proxy (``harness.faultproxy``) in front of a private
etcd + kube-apiserver 1.20. Faults, drawn at random (seeded) at every step of an eviction
(pod read, ledger read, ledger reservation write, API discovery, the eviction, ledger
confirm/release):

* RBAC denied: the service account's RoleBinding for that step is deleted before the request
  is forwarded (the real server answers 403) and restored after;
* 409: the ledger ConfigMap is written by another client before the request is forwarded
  (the real server answers 409 Conflict / AlreadyExists);
* timeouts: the request is held past the client's 2 s timeout, then dropped, or forwarded
  late (carried out after the client gave up); or forwarded with its answer dropped;
* the API server stopped mid-pass (SIGKILL of kube-apiserver at a random step, restarted
  after the pass);
* the actuator's process SIGKILLed with the eviction held at the proxy after the reservation
  was written (between the ledger write and the eviction), or after the eviction was
  forwarded (between the eviction and the confirmation), or at any other step.

After each faulty pass a second pass runs, in the test's process (for a killed actuator: a
restarted operator, another process on the same ledger), as the operator's next pass would.
At the end, after the ledger's grace period, one settle pass checks every reservation whose
outcome was unknown. Then, per run: the pods really
evicted (read from the server: terminating) are at most the budget; every pod reported
``done`` was really evicted; every pod really evicted is ``done`` in the ledger, and was
either reported ``done`` or reported ``failed`` with "outcome unknown" (its answer lost), or
its process was killed before it could report.

Run counts: :data:`RUNS` in-process runs (RBAC, 409, timeouts, lost answers),
:data:`KILL_RUNS` runs with SIGKILL of the actuator's process, :data:`STOP_RUNS` runs with the
API server stopped (``COHABIT_FAULT_RUNS``, ``COHABIT_FAULT_KILL_RUNS``,
``COHABIT_FAULT_STOP_RUNS`` change them).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.integration.eviction_support import (
    ACCOUNT,
    NAMESPACE,
    ROLES,
    actuator,
    client_for,
    kill,
    run_pass,
    write_kubeconfig,
)
from tests.integration.harness import rest
from tests.integration.harness.cluster import start_local_cluster
from tests.integration.harness.faultproxy import Fault, FaultProxy, Request
from tests.integration.harness.kube import service_account_token
from tests.integration.harness.procs import ManagedProcess, wait_until

RUNS = int(os.environ.get("COHABIT_FAULT_RUNS", "24"))
KILL_RUNS = int(os.environ.get("COHABIT_FAULT_KILL_RUNS", "8"))
STOP_RUNS = int(os.environ.get("COHABIT_FAULT_STOP_RUNS", "2"))
PODS = 4
BUDGET = 2
TIMEOUT = 2.0
GRACE = 6.0
HOLD = TIMEOUT + 0.4
SEED = 20261129
DRIVER = "tests.integration.eviction_driver"  # run with -m from the repository root
REPO = Path(__file__).resolve().parents[2]


def kind_of(req: Request) -> str:
    if "/configmaps" in req.path:
        return "ledger-write" if req.method in ("PUT", "POST") else "ledger-read"
    if req.path.endswith("/eviction"):
        return "eviction"
    if "/pods/" in req.path:
        return "pod-read"
    return "discovery"


# -- the world ---------------------------------------------------------------------------------

class World:
    """Private cluster, service account with revocable rights, proxy (see eviction_support)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.cluster = start_local_cluster(workdir / "kube")
        self.admin = self.cluster.api_client()
        rest.request(self.admin, "POST", "/api/v1/namespaces", body={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        rest.request(self.admin, "POST", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
                     body={"apiVersion": "v1", "kind": "ServiceAccount",
                           "metadata": {"name": ACCOUNT}})
        for key, rules in ROLES.items():
            rest.request(self.admin, "POST", self._rbac("roles"), body={
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": f"{ACCOUNT}-{key}"}, "rules": rules})
            self.restore(key)
        pki = self.cluster.workdir / "pki"
        self.proxy = FaultProxy(self.cluster.server, self.cluster.ca_file,
                                pki / "server.crt", pki / "server.key").start()
        token = service_account_token(self.admin, NAMESPACE, ACCOUNT)
        self.kubeconfig = write_kubeconfig(workdir / "evictor.kubeconfig", self.proxy.url,
                                           self.cluster.ca_file, token)
        self.api = client_for(str(self.kubeconfig))

    def close(self) -> None:
        self.api.close()
        self.proxy.stop()
        self.admin.close()
        self.cluster.stop()

    @staticmethod
    def _rbac(kind: str, name: str = "") -> str:
        tail = f"/{name}" if name else ""
        return f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}/{kind}{tail}"

    def _allowed(self, key: str) -> bool:
        verb, resource, sub = {"read": ("get", "pods", ""), "evict": ("create", "pods",
                                                                      "eviction"),
                               "ledger": ("update", "configmaps", "")}[key]
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}",
                           "groups": ["system:serviceaccounts",
                                      f"system:serviceaccounts:{NAMESPACE}"],
                           "resourceAttributes": {"verb": verb, "resource": resource,
                                                  "subresource": sub,
                                                  "namespace": NAMESPACE}}}
        out = rest.request(self.admin, "POST",
                           "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=review)
        return bool(out["status"].get("allowed"))

    def revoke(self, key: str) -> None:
        """Delete the RoleBinding and wait until the server's authorizer denies."""
        rest.request(self.admin, "DELETE", self._rbac("rolebindings", f"{ACCOUNT}-{key}"))
        wait_until(lambda: True if not self._allowed(key) else None, 10, f"{key} denied")

    def restore(self, key: str) -> None:
        rest.request(self.admin, "POST", self._rbac("rolebindings"), body={
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{ACCOUNT}-{key}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": f"{ACCOUNT}-{key}"},
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT,
                          "namespace": NAMESPACE}]})
        wait_until(lambda: True if self._allowed(key) else None, 10, f"{key} allowed")

    def bump_ledger(self, name: str) -> None:
        """Another writer gets there first: the client's write then answers 409."""
        path = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
        try:
            cm = rest.request(self.admin, "GET", f"{path}/{name}")
        except ApiException as exc:
            if exc.status != 404:
                raise
            rest.request(self.admin, "POST", path, body={
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                "data": {"evictions": "[]"}})
            return
        cm["metadata"].setdefault("annotations", {})["bumped"] = str(time.time())
        rest.request(self.admin, "PUT", f"{path}/{name}", body=cm)

    def stop_apiserver(self) -> None:
        proc = self.cluster.processes["kube-apiserver"]
        kill(proc.pid)
        proc.proc.wait(10)

    def start_apiserver(self) -> None:
        old = self.cluster.processes["kube-apiserver"]
        old.stop()
        new = ManagedProcess("kube-apiserver", old.argv, old.log_path)
        self.cluster.processes["kube-apiserver"] = new

        def ready() -> bool | None:
            rest.request(self.admin, "GET", f"/api/v1/namespaces/{NAMESPACE}", timeout=2)
            return True

        wait_until(ready, 60, "kube-apiserver restarted", interval=0.2, alive=new.exited)

    def make_pods(self, run: int) -> dict[str, str]:
        uids = {}
        for i in range(PODS):
            name = f"r{run:03d}-p{i}"
            pod = rest.request(self.admin, "POST", f"/api/v1/namespaces/{NAMESPACE}/pods",
                               body={"apiVersion": "v1", "kind": "Pod",
                                     "metadata": {"name": name},
                                     "spec": {"nodeName": "fault-node", "containers": [
                                         {"name": "c", "image": "x"}]}})
            uids[name] = pod["metadata"]["uid"]
        return uids

    def evicted(self, uids: dict[str, str]) -> set[str]:
        """Pods the server shows evicted: terminating, gone or replaced."""
        out = set()
        for name, uid in uids.items():
            try:
                pod = rest.request(self.admin, "GET",
                                   f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")
            except ApiException as exc:
                if exc.status == 404:
                    out.add(name)
                    continue
                raise
            if pod["metadata"].get("deletionTimestamp") or pod["metadata"]["uid"] != uid:
                out.add(name)
        return out

    def ledger(self, name: str) -> list[dict[str, Any]]:
        try:
            cm = rest.request(self.admin, "GET",
                              f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}")
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise
        return json.loads(cm["data"]["evictions"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    w = World(tmp_path_factory.mktemp("eviction-faults"))
    try:
        yield w
    finally:
        w.close()


# -- one run -----------------------------------------------------------------------------------

@dataclass
class Run:
    index: int
    mode: str  # "inprocess" | "kill" | "stop"
    uids: dict[str, str]
    targets: list[tuple[str, int, str | None]]
    counts: Counter = field(default_factory=Counter)
    fired: list[tuple[str, str]] = field(default_factory=list)
    outcomes: list[dict[str, str]] = field(default_factory=list)
    killed: bool = False
    stopped: bool = False

    @property
    def ledger(self) -> str:
        return f"ledger-{self.index:03d}"


KINDS = {
    "pod-read": ["rbac", "drop", "reset"],
    "ledger-read": ["rbac", "drop", "reset"],
    "discovery": ["drop", "reset"],
    "ledger-write": ["rbac", "conflict", "drop", "late", "reset"],
    "eviction": ["rbac", "drop", "late", "reset"],
}
RBAC_KEY = {"pod-read": "read", "ledger-read": "read", "ledger-write": "ledger",
            "eviction": "evict"}


class Injector:
    """The proxy hook of one run: counts requests per selector, fires the run's faults."""

    def __init__(self, world: World, run: Run, rng: random.Random) -> None:
        self.world, self.run, self.rng = world, run, rng
        self.driver: subprocess.Popen | None = None
        self.armed = True

    def __call__(self, req: Request) -> Fault | None:
        if not self.armed:
            return None
        kind = kind_of(req)
        run = self.run
        run.counts["any"] += 1
        run.counts[kind] += 1
        for selector, n, fault in run.targets:
            if selector in ("any", kind) and run.counts[selector] == n:
                chosen = fault or self.rng.choice(KINDS[kind])
                run.fired.append((kind, chosen))
                return self._fault(chosen, kind)
        return None

    def _fault(self, chosen: str, kind: str) -> Fault:
        w, run = self.world, self.run
        if chosen == "rbac":
            key = RBAC_KEY[kind]
            return Fault(before=lambda: w.revoke(key), after=lambda: w.restore(key),
                         label="rbac")
        if chosen == "conflict":
            return Fault(before=lambda: w.bump_ledger(run.ledger), label="conflict")
        if chosen in ("drop", "late"):
            return Fault(chosen, hold_s=HOLD)
        if chosen == "reset":
            return Fault("reset")
        if chosen == "kill-before":  # between the ledger write and the eviction
            return Fault("drop", before=self._kill, label="kill-before")
        if chosen == "kill-after":  # the eviction reached the server, then the kill
            return Fault("reset", after=self._kill, label="kill-after")
        if chosen == "kill":
            return Fault("drop", before=self._kill, label="kill")
        if chosen == "stop":
            def stop() -> None:
                w.stop_apiserver()
                run.stopped = True
            return Fault(before=stop, label="stop-apiserver")
        raise AssertionError(chosen)

    def _kill(self) -> None:
        assert self.driver is not None
        kill(self.driver.pid)
        self.run.killed = True


def _plan(rng: random.Random, mode: str) -> list[tuple[str, int, str | None]]:
    evictions = rng.randint(1, BUDGET)  # the n-th eviction request of the pass
    if mode == "kill":
        choice = rng.random()
        if choice < 0.4:
            return [("eviction", evictions, "kill-before")]
        if choice < 0.7:
            return [("eviction", evictions, "kill-after")]
        return [("any", rng.randint(1, 14), "kill")]
    if mode == "stop":
        return [(rng.choice(["eviction", "ledger-write"]), evictions, "stop")]
    targets: list[tuple[str, int, str | None]] = [("any", rng.randint(1, 16), None)]
    if rng.random() < 0.6:
        targets.append(("eviction", evictions, None))
    if rng.random() < 0.6:
        targets.append(("ledger-write", rng.randint(1, 2 * BUDGET), None))
    return targets


def _driver(world: World) -> subprocess.Popen:
    """The actuator's process, started ahead of its run (it waits for its orders)."""
    log = open(world.workdir / "drivers.log", "a")  # noqa: SIM115
    try:
        return subprocess.Popen([sys.executable, "-m", DRIVER, str(world.kubeconfig)],
                                cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=log, text=True, start_new_session=True)
    finally:
        log.close()


def _collect(proc: subprocess.Popen, run: Run, pods: list[str]) -> None:
    orders = {"ledger": run.ledger, "pods": pods, "budget": BUDGET, "timeout": TIMEOUT,
              "grace": GRACE}
    out, _ = proc.communicate(json.dumps(orders) + "\n", timeout=120)
    for line in out.splitlines():
        doc = json.loads(line)
        if "pod" in doc:
            run.outcomes.append(doc)


def execute(world: World, run: Run, rng: random.Random,
            driver: subprocess.Popen | None = None) -> None:
    """The faulty pass (in the ``driver`` process for kill runs), then the recovery pass in
    this process (a restarted operator: another process, the same ledger)."""
    pods = list(run.uids)
    rng.shuffle(pods)
    injector = Injector(world, run, rng)
    injector.driver = driver
    world.proxy.hook = injector
    try:
        if driver is not None:
            _collect(driver, run, pods)
        else:
            run_pass(world.api, run.ledger, pods, BUDGET, TIMEOUT, GRACE, run.outcomes.append)
    finally:
        injector.armed = False
        world.proxy.hook = None
    world.proxy.wait_idle()  # held requests forwarded or dropped, callbacks done
    if run.stopped:
        world.start_apiserver()
    run_pass(world.api, run.ledger, pods, BUDGET, TIMEOUT, GRACE, run.outcomes.append)


def verify(world: World, run: Run) -> dict[str, int]:
    """The invariants of the module docstring for one run; counts for the report."""
    evicted = world.evicted(run.uids)
    where = f"run {run.index} ({run.mode}, faults {run.fired}): {run.outcomes}"
    assert len(evicted) <= BUDGET, f"budget exceeded: {sorted(evicted)}; {where}"
    done = {o["pod"] for o in run.outcomes if o["status"] == "done"}
    assert done <= evicted, f"reported done but not evicted: {done - evicted}; {where}"
    entries = world.ledger(run.ledger)
    in_ledger = {e["pod"].split("/", 1)[1] for e in entries if e["state"] == "done"}
    assert in_ledger == evicted, f"ledger {entries} vs evicted {sorted(evicted)}; {where}"
    assert all(e["state"] == "done" for e in entries), f"unsettled {entries}; {where}"
    unknown = {o["pod"] for o in run.outcomes
               if o["status"] == "failed" and "outcome unknown" in o["message"]}
    silent = evicted - done - unknown  # only a killed process may leave one unreported
    assert not silent or run.killed, f"{silent} evicted, reported neither done nor " \
        f"'outcome unknown'; {where}"
    statuses = {o["status"] for o in run.outcomes}
    assert statuses <= {"done", "refused", "skipped", "failed"}, where
    return {"evicted": len(evicted), "reported_done": len(done & evicted),
            "reported_unknown_then_settled": len((evicted - done) & unknown),
            "killed_then_settled": len(silent)}


def test_eviction_budget_holds_under_faults(world):
    rng = random.Random(SEED)
    modes = ["inprocess"] * RUNS + ["kill"] * KILL_RUNS + ["stop"] * STOP_RUNS
    runs = []
    started = time.monotonic()
    seconds: Counter = Counter()
    # actuator processes start up ahead of their runs, two at a time, while other runs go
    drivers = [_driver(world) for _ in range(min(2, KILL_RUNS))]
    spawned = len(drivers)
    for index, mode in enumerate(modes):
        run = Run(index, mode, world.make_pods(index), _plan(rng, mode))
        t0 = time.monotonic()
        driver = None
        if mode == "kill":
            driver = drivers.pop(0)
            if spawned < KILL_RUNS:
                drivers.append(_driver(world))
                spawned += 1
        execute(world, run, rng, driver)
        seconds[mode] += time.monotonic() - t0
        runs.append(run)
    time.sleep(GRACE)  # every reservation is now old enough to be checked
    settler_api = client_for(str(world.kubeconfig))
    try:
        for run in runs:
            actuator(settler_api, run.ledger, BUDGET, TIMEOUT, GRACE).settle_ledger()
    finally:
        settler_api.close()
    totals: Counter = Counter()
    for run in runs:
        totals.update(verify(world, run))
    fired = Counter(f"{kind}:{fault}" for run in runs for kind, fault in run.fired)
    took = time.monotonic() - started
    print(f"\n{len(runs)} runs ({RUNS} in-process, {KILL_RUNS} SIGKILL, {STOP_RUNS} API "
          f"server stops), budget {BUDGET} of {PODS} pods each, {took:.0f} s; "
          f"(seconds per mode {({k: round(v) for k, v in seconds.items()})}); "
          f"faults fired: {dict(sorted(fired.items()))}; {dict(totals)}")
    assert sum(run.killed for run in runs) >= KILL_RUNS // 2, "SIGKILL faults did not fire"
    assert sum(run.stopped for run in runs) == STOP_RUNS
    kinds = {f for run in runs for _, f in run.fired}
    assert {"rbac", "conflict", "drop", "late", "reset"} <= kinds
    assert totals["evicted"] > 0 and totals["killed_then_settled"] > 0
