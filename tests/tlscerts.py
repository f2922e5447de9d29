"""Test certificates made with the `openssl` CLI (the `cryptography` module is not installed).

`make_pki(dir)` writes a CA, a server certificate for 127.0.0.1/localhost signed by it, and a
client certificate signed by it (SAN `DNS:scraper.test`), all EC P-256 (fast to make).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import bcrypt

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path


def _signed(d: Path, name: str, subject: str, san: str, ca: Path, ca_key: Path) -> Path:
    csr, cert = d / f"{name}.csr", d / f"{name}.crt"
    _openssl("req", "-new", *_EC, "-keyout", str(d / f"{name}.key"), "-out", str(csr),
             "-subj", subject)  # fmt: skip
    ext = d / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext))  # fmt: skip
    return cert


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    ca, ca_key = d / "ca.crt", d / "ca.key"
    _openssl("req", "-x509", *_EC, "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
             "-subj", "/CN=rblwatch test CA")  # fmt: skip
    cert = _signed(d, "server", "/CN=127.0.0.1", "IP:127.0.0.1,DNS:localhost", ca, ca_key)
    client = _signed(d, "client", "/CN=scraper", "DNS:scraper.test", ca, ca_key)
    return Pki(ca, cert, d / "server.key", client, d / "client.key")


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash at the lowest cost (4): tests stay fast."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
