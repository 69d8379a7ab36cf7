"""Command-line tools (helm, kubectl) pointed at the test cluster."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Tool:
    """A binary plus the environment that points it at the test cluster.

    Attributes:
        path: the executable (e.g. ``~/.cache/cohabit/bin/helm``).
        env: full environment for it: ``os.environ`` plus ``KUBECONFIG`` and, for helm,
            private ``HELM_CACHE_HOME``/``HELM_CONFIG_HOME``/``HELM_DATA_HOME``.
    """

    path: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str | os.PathLike, check: bool = True, timeout: float = 120.0,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the tool with ``args``; return the completed process (text stdout/stderr).

        Raises ``AssertionError`` carrying the command, exit code, stdout and stderr when
        ``check`` and the exit code is not 0.
        """
        argv = [str(self.path), *map(str, args)]
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=timeout, input=input, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                f"stderr:\n{proc.stderr}"
            )
        return proc


def helm_tool(path: Path, kubeconfig: Path, home: Path) -> Tool:
    """helm with ``KUBECONFIG`` and its cache/config/data homes under ``home``."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig),
           "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_DATA_HOME": str(home / "data")}
    return Tool(path=path, env=env)


def kubectl_tool(path: Path, kubeconfig: Path, home: Path) -> Tool:
    """kubectl with ``KUBECONFIG`` and a private ``HOME`` for its discovery cache."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}
    return Tool(path=path, env=env)
