"""A real Kubernetes API on loopback: etcd + kube-apiserver, or a user's cluster.

:func:`start_local_cluster` starts Debian's etcd 3.4 and the kube-apiserver 1.20.2 that
``scripts/build-kube-apiserver.sh`` builds, both bound to 127.0.0.1 on free ports:

- secure port only (``--insecure-port=0``), TLS from a throwaway CA (:mod:`.pki`);
- token authentication (``--token-auth-file``) with one admin token in ``system:masters``;
- ``--authorization-mode=RBAC``, so least-privilege RBAC in a chart is really enforced for
  any other identity (service-account tokens are signed with the generated SA key);
- admission plugins for a cluster WITHOUT a controller-manager: ``ServiceAccount`` is off
  (nothing would create the ``default`` service account of a new namespace), and so is
  ``TaintNodesByCondition`` (nothing would lift the not-ready taint from a new Node); storage,
  certificate, ingress-class and runtime-class plugins are off too.

There is no controller-manager, scheduler or kubelet: Deployments make no pods, namespaces
never finish terminating, PDB status is not computed, pods are not started. The harness's
:class:`~.kubelet.KubeletStandIn` covers pods and PDB status; tests create pods directly.

:func:`external_cluster` wraps the cluster of a user's ``KUBECONFIG`` instead.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import ssl
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import binaries
from .pki import make_pki
from .procs import ManagedProcess, free_port, wait_until

ADMIN_USER = "cohabit-test-admin"

ENABLED_ADMISSION = (
    "NamespaceLifecycle,LimitRanger,DefaultTolerationSeconds,Priority,ResourceQuota,"
    "MutatingAdmissionWebhook,ValidatingAdmissionWebhook"
)
DISABLED_ADMISSION = (
    "ServiceAccount,TaintNodesByCondition,DefaultStorageClass,StorageObjectInUseProtection,"
    "PersistentVolumeClaimResize,RuntimeClass,CertificateApproval,CertificateSigning,"
    "CertificateSubjectRestriction,DefaultIngressClass"
)


@dataclass
class Cluster:
    """A reachable Kubernetes API.

    Attributes:
        kubeconfig: kubeconfig file whose current context is this cluster (admin identity).
        server: API URL, e.g. ``https://127.0.0.1:43121``.
        external: True for a user's cluster from ``KUBECONFIG`` (no servers were started;
            tests must not assume the harness's stand-ins or a 1.20 server).
        token: the admin bearer token (local cluster only).
        ca_file: the CA that signed the serving certificate (local cluster only).
        workdir: certificates, token file, kubeconfig, logs (local cluster only).
        processes: the started etcd and kube-apiserver (empty for an external cluster).
    """

    kubeconfig: Path
    server: str
    external: bool
    token: str | None = None
    ca_file: Path | None = None
    workdir: Path | None = None
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """Environment entries that point kubectl/helm/kopf at this cluster."""
        return {"KUBECONFIG": str(self.kubeconfig)}

    def api_client(self):
        """A new ``kubernetes.client.ApiClient`` for this cluster; the caller closes it."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def version(self) -> tuple[int, int]:
        """The server's (major, minor) version, e.g. ``(1, 20)``."""
        from kubernetes import client

        with self.api_client() as api:
            info = client.VersionApi(api).get_code()
        return int(info.major), int("".join(ch for ch in info.minor if ch.isdigit()))

    def kubeconfig_for_token(self, token: str, path: Path, user: str = "token-user") -> Path:
        """Write a kubeconfig for this cluster (same server and CA as :attr:`kubeconfig`'s
        current context) that authenticates with bearer ``token``; return ``path``.

        With :func:`harness.kube.service_account_token` this runs a program as a service
        account, so RBAC rules (e.g. a chart's least-privilege Role) are really enforced.
        """
        doc = yaml.safe_load(self.kubeconfig.read_text())
        context = next(c for c in doc["contexts"] if c["name"] == doc["current-context"])
        cluster = next(c for c in doc["clusters"] if c["name"] == context["context"]["cluster"])
        out = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [cluster],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
            "current-context": user,
        }
        path.write_text(yaml.safe_dump(out, sort_keys=False))
        path.chmod(0o600)
        return path

    def log_tail(self, name: str = "kube-apiserver", lines: int = 40) -> str:
        """Last ``lines`` of a started server's log (empty for an external cluster)."""
        proc = self.processes.get(name)
        return proc.log_tail(lines) if proc else ""

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd (no-op for an external cluster)."""
        for name in ("kube-apiserver", "etcd"):
            if name in self.processes:
                self.processes[name].stop()
        data_dir = getattr(self.processes.get("etcd"), "data_dir", None)
        if data_dir is not None:  # etcd's data lives in /dev/shm (RAM) when it can
            shutil.rmtree(data_dir, ignore_errors=True)


def write_kubeconfig(path: Path, server: str, ca_file: Path, token: str) -> Path:
    """Write a kubeconfig (context ``cohabit-test``) using bearer ``token``; return ``path``."""
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cohabit-test",
                      "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [{"name": "cohabit-test",
                      "context": {"cluster": "cohabit-test", "user": ADMIN_USER,
                                  "namespace": "default"}}],
        "current-context": "cohabit-test",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


def _https_get(url: str, ca_file: Path, token: str, timeout: float = 2.0) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        exc.close()
        return exc.code, body


def _etcd_data_root() -> str | None:
    """tmpfs (``/dev/shm``) when writable: etcd fsyncs every write, which tmpfs makes cheap."""
    shm = Path("/dev/shm")
    try:
        probe = tempfile.mkdtemp(prefix="cohabit-probe-", dir=shm)
    except OSError:
        return None
    Path(probe).rmdir()
    return str(shm)


def start_etcd(workdir: Path) -> tuple[ManagedProcess, str, Path]:
    """Start etcd on 127.0.0.1 (free client+peer ports); return (process, URL, data dir)."""
    etcd = binaries.require("etcd")
    client_port, peer_port = free_port(), free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="cohabit-etcd-", dir=_etcd_data_root()))
    url = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    proc = ManagedProcess(
        "etcd",
        [str(etcd), "--name", "cohabit-test", "--data-dir", str(data_dir),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"cohabit-test={peer}", "--initial-cluster-state", "new",
         "--log-level", "warn", "--logger", "zap"],
        workdir / "logs" / "etcd.log",
    )

    def healthy() -> bool | None:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
            return True if json.loads(resp.read()).get("health") == "true" else None

    try:
        wait_until(healthy, timeout=30, what="etcd /health", alive=proc.exited)
    except BaseException:
        proc.stop()
        raise
    return proc, url, data_dir


def start_local_cluster(workdir: Path, extra_args: tuple[str, ...] = ()) -> Cluster:
    """Start etcd + kube-apiserver on loopback and wait until ``/readyz`` and the ``default``
    namespace answer (about 5 s).

    ``workdir`` receives ``pki/``, ``tokens.csv``, ``kubeconfig`` and ``logs/``.
    ``extra_args`` are appended to the kube-apiserver command line.
    Raises ``RuntimeError`` (with the log tail) if a server dies, ``TimeoutError`` if it is
    not ready in 60 s; skips/fails through :func:`binaries.require` if a binary is missing.
    """
    apiserver = binaries.require("kube-apiserver")
    openssl = binaries.require("openssl")
    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir / "pki", openssl)
    token = secrets.token_hex(24)
    tokens = workdir / "tokens.csv"
    tokens.write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
    tokens.chmod(0o600)

    etcd_proc, etcd_url, etcd_data = start_etcd(workdir)
    port = free_port()
    server = f"https://127.0.0.1:{port}"
    argv = [
        str(apiserver),
        "--bind-address=127.0.0.1", f"--secure-port={port}", "--insecure-port=0",
        "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
        f"--etcd-servers={etcd_url}",
        f"--tls-cert-file={pki.server_cert}", f"--tls-private-key-file={pki.server_key}",
        f"--client-ca-file={pki.ca_cert}",
        f"--token-auth-file={tokens}", "--authorization-mode=RBAC",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        "--service-account-issuer=https://kubernetes.default.svc",
        "--api-audiences=https://kubernetes.default.svc",
        "--service-cluster-ip-range=10.96.0.0/24",  # an allocation range only: no traffic
        f"--enable-admission-plugins={ENABLED_ADMISSION}",
        f"--disable-admission-plugins={DISABLED_ADMISSION}",
        "--allow-privileged=true", "--profiling=false", "--event-ttl=30m",
        f"--cert-dir={workdir / 'pki'}", "--v=1",
        *extra_args,
    ]
    api_proc = ManagedProcess("kube-apiserver", argv, workdir / "logs" / "kube-apiserver.log")
    cluster = Cluster(
        kubeconfig=write_kubeconfig(workdir / "kubeconfig", server, pki.ca_cert, token),
        server=server,
        external=False,
        token=token,
        ca_file=pki.ca_cert,
        workdir=workdir,
        processes={"etcd": etcd_proc, "kube-apiserver": api_proc},
    )

    def ready() -> bool | None:
        status, _ = _https_get(f"{server}/readyz", pki.ca_cert, token)
        if status != 200:
            return None
        status, _ = _https_get(f"{server}/api/v1/namespaces/default", pki.ca_cert, token)
        return True if status == 200 else None

    def dead() -> str | None:
        return api_proc.exited() or etcd_proc.exited()

    cluster.processes["etcd"].data_dir = etcd_data  # type: ignore[attr-defined]
    try:
        wait_until(ready, timeout=60, what="kube-apiserver /readyz", interval=0.2, alive=dead)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def external_cluster(kubeconfig: str) -> Cluster:
    """Wrap a user's cluster from a kubeconfig file (``KUBECONFIG``); starts nothing.

    Raises ``FileNotFoundError`` if the file is missing and ``ValueError`` for a
    colon-separated list (give one file).
    """
    if ":" in kubeconfig:
        raise ValueError(f"KUBECONFIG={kubeconfig!r}: give a single kubeconfig file")
    path = Path(kubeconfig).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"KUBECONFIG={kubeconfig}: no such file")
    from kubernetes import config

    _, context = config.list_kube_config_contexts(config_file=str(path))
    cluster_name = context["context"]["cluster"]
    doc = yaml.safe_load(path.read_text())
    server = next(c["cluster"]["server"] for c in doc.get("clusters", [])
                  if c["name"] == cluster_name)
    return Cluster(kubeconfig=path, server=server, external=True)
