"""Fixtures of the real-component integration tier (see tests/integration/README.md).

Every test under tests/integration gets the ``integration`` marker automatically.

Cluster choice: the harness starts etcd + kube-apiserver 1.20.2 on 127.0.0.1, unless
``KUBECONFIG`` names a kubeconfig file (a user's real cluster), in which case that cluster is
used and nothing is started (``COHABIT_LOCAL_CLUSTER=1`` forces the local one). The
kubelet stand-in only runs against the local cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient
from prometheus_client import CollectorRegistry

from tests.integration.harness import binaries
from tests.integration.harness.cluster import Cluster, external_cluster, start_local_cluster
from tests.integration.harness.kube import create_namespace, delete_namespace, force_delete_pods
from tests.integration.harness.kubelet import KubeletStandIn
from tests.integration.harness.nodes import create_node, delete_node
from tests.integration.harness.prometheus import (
    Exporter,
    PrometheusServer,
    serve_registry,
    start_prometheus,
)
from tests.integration.harness.tools import Tool, helm_tool, kubectl_tool

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def prerequisites() -> None:
    """The database tests' prerequisites: skip (fail under CI) without PostgreSQL binaries
    or a writable cgroup tree."""
    from cohabit.cgroup import CgroupError, detect
    from cohabit.profiling import PostgresBinaries, PrerequisiteError

    try:
        PostgresBinaries.find()
    except PrerequisiteError as exc:
        binaries.need(str(exc))
    try:
        detect().create("probe").destroy()
    except CgroupError as exc:
        binaries.need(str(exc))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On a failure, attach the server logs' tails when etcd or kube-apiserver has died."""
    outcome = yield
    report = outcome.get_result()
    cluster = getattr(item, "funcargs", {}).get("kube_cluster")
    if report.failed and isinstance(cluster, Cluster):
        for name, proc in cluster.processes.items():
            dead = proc.exited()
            if dead:
                report.sections.append((f"{name} died", dead))


def _use_external() -> str | None:
    kubeconfig = os.environ.get("KUBECONFIG", "")
    if kubeconfig and os.environ.get("COHABIT_LOCAL_CLUSTER") != "1":
        return kubeconfig
    return None


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The cluster under test (:class:`harness.cluster.Cluster`), started once per session.

    Local: etcd + kube-apiserver on loopback (about 5 s to ready), stopped at session end;
    logs in ``cluster.workdir / "logs"``. External (``KUBECONFIG`` set): the user's cluster.
    """
    external = _use_external()
    if external:
        yield external_cluster(external)
        return
    cluster = start_local_cluster(tmp_path_factory.mktemp("kube"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kubeconfig(kube_cluster: Cluster) -> Path:
    """Path of a kubeconfig file (admin identity) for the cluster under test."""
    return kube_cluster.kubeconfig


@pytest.fixture(scope="session")
def kube_client(kube_cluster: Cluster) -> Iterator[ApiClient]:
    """A configured ``kubernetes.client.ApiClient`` (admin). Use it with the typed APIs,
    e.g. ``CoreV1Api(kube_client)``, or with ``harness.rest.request`` for raw JSON."""
    api = kube_cluster.api_client()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def kubelet(kube_cluster: Cluster) -> Iterator[KubeletStandIn]:
    """The kubelet + PDB-status stand-in, running for the session (local cluster only).

    On an external cluster it is returned unstarted (real kubelets do the work there).
    """
    standin = KubeletStandIn(kube_cluster.api_client)
    if kube_cluster.external:
        yield standin
        return
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def namespace(kube_client: ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; its pods are deleted at once and the
    namespace deleted at teardown."""
    name = create_namespace(kube_client, request.node.name[:30])
    yield name
    delete_namespace(kube_client, name)


@pytest.fixture
def make_node(kube_client: ApiClient) -> Iterator[Callable[..., dict[str, Any]]]:
    """Factory ``make_node(name, cpu_milli=8000, memory_mib=32768, gpus=0, gpu_product=None,
    labels=None, allocatable=None, pods=110, taints=None) -> dict`` creating Ready Nodes
    (see ``harness.nodes.node_manifest``); at teardown the pods bound to them are deleted at
    once (so a later test reusing a node name starts empty) and then the nodes."""
    created: list[str] = []

    def factory(name: str, **kwargs: Any) -> dict[str, Any]:
        node = create_node(kube_client, name, **kwargs)
        created.append(name)
        return node

    yield factory
    for name in created:
        force_delete_pods(kube_client, field_selector=f"spec.nodeName={name}")
        delete_node(kube_client, name)


def _tool_home(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    return tmp_path_factory.mktemp(f"{name}-home")


@pytest.fixture(scope="session")
def helm(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Tool:
    """Real helm v3.17.3 (:class:`harness.tools.Tool`: ``.path``, ``.env``, ``.run(*args)``)
    with ``KUBECONFIG`` set to the cluster under test and private helm homes."""
    return helm_tool(binaries.require("helm"), kubeconfig, _tool_home(tmp_path_factory, "helm"))


@pytest.fixture(scope="session")
def helm_binary() -> Tool:
    """helm without a cluster (for ``lint``/``template``/``create``); starts no servers."""
    return Tool(path=binaries.require("helm"), env=dict(os.environ))


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Tool:
    """Real kubectl v1.31 (:class:`harness.tools.Tool`) pointed at the cluster under test.
    Against the 1.20 server it warns about version skew on stderr; ``apply``/``get`` work."""
    return kubectl_tool(binaries.require("kubectl"), kubeconfig,
                        _tool_home(tmp_path_factory, "kubectl"))


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Callable[..., PrometheusServer]]:
    """Factory ``prometheus(targets, scrape_interval="1s", extra_scrape_configs=None,
    rule_files=None) -> PrometheusServer`` starting a real Prometheus on loopback; all are
    stopped at teardown. ``targets``: ``["127.0.0.1:PORT"]`` or ``{"job": [...]}``."""
    servers: list[PrometheusServer] = []

    def factory(targets: dict[str, list[str]] | list[str], **kwargs: Any) -> PrometheusServer:
        server = start_prometheus(targets, workdir=tmp_path_factory.mktemp("prometheus"),
                                  **kwargs)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def exporter() -> Iterator[Callable[..., Exporter]]:
    """Factory ``exporter(registry=None) -> Exporter`` serving a ``prometheus_client``
    registry on 127.0.0.1 (``.target``, ``.url``, ``.registry``); stopped at teardown."""
    exporters: list[Exporter] = []

    def factory(registry: CollectorRegistry | None = None) -> Exporter:
        exp = serve_registry(registry if registry is not None else CollectorRegistry())
        exporters.append(exp)
        return exp

    yield factory
    for exp in exporters:
        exp.stop()
