"""Detached CMS signatures (SOL004 clause 5) through the `openssl cms` CLI.

`cryptography` can build PKCS#7/CMS signatures but (as of 46) cannot verify
one against a certificate chain, so both directions go through `openssl cms`
for symmetry. Content is always treated as binary (`-binary`): SOL004 signs
the bytes, and S/MIME canonicalisation would turn LF into CRLF before
hashing. Verification trusts only the given anchor: the system CA store is
switched off, and `-partial_chain` lets an operator pin an intermediate CA.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from descriptors.errors import DescriptorError

OPENSSL = "openssl"
TIMEOUT_SECONDS = 60


def _run(args: list[str], *, stdin: bytes | None, what: str, location: str | None) -> bytes:
    try:
        done = subprocess.run(
            [OPENSSL, *args],
            input=stdin,
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise DescriptorError(f"cannot {what}: the openssl CLI is not installed") from None
    except subprocess.TimeoutExpired:
        raise DescriptorError(
            f"cannot {what}: openssl took over {TIMEOUT_SECONDS}s", location=location
        ) from None
    if done.returncode != 0:
        # openssl's first error lines say why (bad signature, unknown CA, expired).
        reason = " ".join(
            line.strip()
            for line in done.stderr.decode("utf-8", "replace").splitlines()[:4]
            if line.strip()
        )
        raise DescriptorError(f"{what} failed: {reason[:500]}", location=location)
    return done.stdout


def sign_detached(content: bytes, cert_pem: Path, key_pem: Path) -> str:
    """A detached, PEM-armoured CMS signature of `content` with the signer cert embedded."""
    out = _run(
        [
            "cms",
            "-sign",
            "-binary",
            "-md",
            "sha256",
            "-signer",
            str(cert_pem),
            "-inkey",
            str(key_pem),
            "-outform",
            "PEM",
        ],
        stdin=content,
        what="CMS signing",
        location=None,
    )
    return out.decode("ascii")


def verify_detached(
    content: Path,
    signature_pem: str,
    trust_anchor: Path,
    *,
    extra_certs: Path | None = None,
    location: str | None = None,
) -> None:
    """Raise DescriptorError unless `signature_pem` signs `content` with a chain to `trust_anchor`.

    `extra_certs` supplies the signer or intermediate certificates when the
    CMS structure does not embed them (SOL004 allows the certificate as a
    separate package file).
    """
    with tempfile.TemporaryDirectory(prefix="cms-verify-") as tmp:
        sig_path = Path(tmp) / "signature.pem"
        sig_path.write_text(signature_pem, encoding="ascii")
        args = [
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "PEM",
            "-in",
            str(sig_path),
            "-content",
            str(content),
            "-CAfile",
            str(trust_anchor),
            "-no-CApath",
            "-no-CAstore",
            "-partial_chain",
            # Vendor signing certs carry codeSigning, not S/MIME, usage.
            "-purpose",
            "any",
            # The verified content is not needed again; copying a 1 GiB
            # CSAR to disk just to discard it would be waste.
            "-out",
            os.devnull,
        ]
        if extra_certs is not None:
            args += ["-certfile", str(extra_certs)]
        _run(args, stdin=None, what="CMS signature verification", location=location)


def verify_detached_bytes(
    content: bytes,
    signature_pem: str,
    trust_anchor: Path,
    *,
    extra_certs: Path | None = None,
    location: str | None = None,
) -> None:
    """`verify_detached` for content held in memory (e.g. a manifest body)."""
    with tempfile.TemporaryDirectory(prefix="cms-content-") as tmp:
        path = Path(tmp) / "content"
        path.write_bytes(content)
        verify_detached(
            path, signature_pem, trust_anchor, extra_certs=extra_certs, location=location
        )
