"""In-place pod resize (``pods/resize``, Kubernetes >= 1.33) against the request shapes of the
upstream API, and the fallback to the owner's template when discovery does not list it (the
1.20 test API server exercises that path for real in tests/integration)."""

from __future__ import annotations

from kubernetes import client

from cohabit.actuator import EvictionLimits
from cohabit.actuator.kubernetes import KubernetesActuator
from cohabit.model import Resize, Resources
from tests.helpers.fake_kube import FakeKube

TARGETS = {"ns/db": ("ns", "Deployment", "db")}


def make(fake):
    act = KubernetesActuator(client.ApiClient(), limits=EvictionLimits(dry_run=False),
                             resolve_target=TARGETS.get)
    act.core = act.apps = act.apis = fake
    return act


def _fake(pod_resize: bool) -> FakeKube:
    fake = FakeKube(pod_resize=pod_resize)
    guaranteed = {"cpu": "500m", "memory": "1Gi"}
    fake.add_deployment("db", requests=dict(guaranteed), limits=dict(guaranteed))
    for name in ("db-0", "db-1"):
        fake.add_pod(name, node="n1", labels={"app": "db"}, requests=dict(guaranteed),
                     limits=dict(guaranteed))
    fake.add_pod("db-new", labels={"app": "db"}, requests=dict(guaranteed))  # not running
    return fake


def test_in_place_patches_each_running_pod_and_leaves_the_template():
    fake = _fake(pod_resize=True)
    act = make(fake)
    [outcome] = act.apply([Resize("ns/db", "main", Resources(230, 256))])
    assert outcome.status == "done" and "in place" in outcome.message
    assert [(ns, name) for ns, name, _ in fake.resizes] == [("ns", "db-0"), ("ns", "db-1")]
    # The upstream shape (kubectl patch pod --subresource resize): strategic merge of the
    # container's resources; a Guaranteed pod's limits follow its requests.
    assert fake.resizes[0][2] == {"spec": {"containers": [{"name": "main", "resources": {
        "requests": {"cpu": "230m", "memory": "256Mi"},
        "limits": {"cpu": "230m", "memory": "256Mi"}}}]}}
    assert fake.patches == []  # no rollout
    assert "in place" in act.resize_method()
    again = act.apply([Resize("ns/db", "main", Resources(230, 256))])[0]
    assert again.status == "done" and "already at the target" in again.message
    assert len(fake.resizes) == 2  # idempotent


def test_without_pods_resize_the_owner_template_is_patched():
    fake = _fake(pod_resize=False)
    fake.deployments[("ns", "db")].spec.template.spec.containers[0].resources.limits = None
    act = make(fake)
    [outcome] = act.apply([Resize("ns/db", "main", Resources(230, 256))])
    assert outcome.status == "done" and "patched Deployment ns/db" in outcome.message
    assert fake.resizes == [] and len(fake.patches) == 1
    assert "pods restart" in act.resize_method()


def test_in_place_refuses_a_request_above_a_separate_limit():
    fake = FakeKube(pod_resize=True)
    fake.add_deployment("db", requests={"cpu": "250m"})
    fake.add_pod("db-0", node="n1", labels={"app": "db"}, requests={"cpu": "250m"},
                 limits={"cpu": "500m"})
    [outcome] = make(fake).apply([Resize("ns/db", "main", Resources(800, 0))])
    assert outcome.status == "refused" and "exceed the limit 500m" in outcome.message
    assert fake.resizes == []
