"""Test PKI for a loopback kube-apiserver, made with the ``openssl`` command line tool.

Files written into ``directory`` (all PEM):
  ``ca.crt``/``ca.key``          a throwaway CA (valid 2 days)
  ``server.crt``/``server.key``  serving certificate for 127.0.0.1 / localhost, signed by the CA
  ``sa.key``/``sa.pub``          RSA key pair that signs and verifies service-account tokens
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    """Paths of the generated PEM files (see module docstring)."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    sa_key: Path
    sa_pub: Path


def _openssl(openssl: Path, *args: str, cwd: Path) -> None:
    proc = subprocess.run(
        [str(openssl), *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")


def make_pki(directory: Path, openssl: Path, hosts: tuple[str, ...] = ("127.0.0.1",)) -> Pki:
    """Create the CA, serving cert (SANs: ``hosts`` IPs + ``localhost``) and SA key pair.

    Raises ``RuntimeError`` with openssl's stderr when a command fails.
    """
    directory.mkdir(parents=True, exist_ok=True)
    days = "2"
    _openssl(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", days, "-subj", "/CN=cohabit-test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=kube-apiserver", cwd=directory)
    sans = ",".join([*(f"IP:{h}" for h in hosts), "DNS:localhost", "DNS:kubernetes.default"])
    (directory / "server.ext").write_text(
        f"subjectAltName={sans}\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(openssl, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", days, "-extfile", "server.ext",
             cwd=directory)
    _openssl(openssl, "genrsa", "-out", "sa.key", "2048", cwd=directory)
    _openssl(openssl, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    return Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
    )
