"""A throw-away TLS certificate for 127.0.0.1, made with the ``openssl`` command.

Used by the SMTP and IMAP tests so STARTTLS and implicit TLS are exercised with real
certificate verification (the client trusts exactly this certificate, nothing else).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class SelfSignedCertificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies the server's certificate and host name against this certificate only."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_certificate(directory: Path, common_name: str = "127.0.0.1") -> SelfSignedCertificate:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make a test certificate")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "test-cert.pem", directory / "test-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={common_name}",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return SelfSignedCertificate(cert=cert, key=key)
