"""A lab PKI for signing VNF packages: a self-signed CA and a signing certificate it issued.

For demos, labs and tests: `nfvctl package build --sign-cert/--sign-key` signs
with the signer, and the NFVO verifies against the CA (`NFVO_TRUST_ANCHOR`).
Production providers sign with their own PKI.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files of a lab PKI."""

    ca_cert: Path
    signer_cert: Path
    signer_key: Path

    @classmethod
    def at(cls, directory: Path, label: str = "lab") -> Pki:
        return cls(
            ca_cert=directory / f"{label}-ca.pem",
            signer_cert=directory / f"{label}-signer.pem",
            signer_key=directory / f"{label}-signer.key",
        )

    def exists(self) -> bool:
        return all(p.is_file() for p in (self.ca_cert, self.signer_cert, self.signer_key))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path, label: str = "lab", *, valid_days: int = 365) -> Pki:
    """A self-signed CA and a signing certificate it issued, as PEM files (key mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} CA"))
        .issuer_name(_name(f"{label} CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} VNF provider"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki.at(directory, label)
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.signer_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(pki.signer_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    return pki


def ensure_pki(directory: Path, label: str = "lab") -> Pki:
    """The PKI kept in `directory`, made on first use."""
    existing = Pki.at(directory, label)
    return existing if existing.exists() else make_pki(directory, label)
