"""The README's test command sets up the integration tier or stops naming the one command.

Run against the real scripts with an empty binary cache (``COHABIT_CACHE``), so nothing on
the machine is installed, built or removed: ``--check`` modes only report, and
``scripts/test.sh`` run by an unprivileged user must stop before any test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"


def _run(args: list[str], cache: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "COHABIT_CACHE": str(cache)}
    env.pop("COHABIT_SKIP_INTEGRATION", None)
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                          check=False, **kw)


@pytest.mark.parametrize(("script", "names"), [
    ("build-kube-apiserver.sh", "kube-apiserver v1.20 is not built"),
    ("fetch-helm.sh", "helm v3.17.3 / kubectl are not in"),
    ("ci-system-deps.sh", "missing: "),
])
def test_check_modes_report_without_building(tmp_path, script, names):
    cache = tmp_path / "empty-cache"
    res = _run(["bash", str(SCRIPTS / script), "--check"], cache)
    assert res.returncode == 1, res.stderr
    assert names in res.stderr
    assert not cache.exists()  # nothing fetched or built, not even the folder


def test_ci_system_deps_check_names_every_missing_binary(tmp_path):
    res = _run(["bash", str(SCRIPTS / "ci-system-deps.sh"), "--check"], tmp_path / "none")
    missing = res.stderr.split("missing: ", 1)[1].split()
    assert "kube-apiserver" in missing and "helm/kubectl" in missing


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None,
                    reason="needs root to run the script as an unprivileged user")
def test_test_sh_stops_before_any_test_when_it_cannot_install():
    res = _run(["runuser", "-u", "nobody", "--", "bash", str(SCRIPTS / "test.sh")],
               Path("/nonexistent/cohabit-cache"))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Run once, as root:   sudo bash scripts/ci-system-deps.sh" in res.stderr
    assert "passed" not in res.stdout and "collected" not in res.stdout
