"""Building CSARs, reproducibility, and CMS signatures (SOL004 options 1 and 2)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from descriptors.build import build_csar
from descriptors.csar import CsarLimits, open_csar
from descriptors.errors import DescriptorError
from descriptors.lab_pki import make_pki
from descriptors.signature import sign_detached
from tests.unit.descriptors.csar_factory import (
    listing,
    nometa_members,
    source_tree,
    write_tree,
    write_zip,
)


def test_build_then_open(tmp_path: Path) -> None:
    src = source_tree(tmp_path / "src")
    out = build_csar(src, tmp_path / "pkg.csar")
    csar = open_csar(out, tmp_path / "out")
    assert csar.manifest is not None
    sources = [e.source for e in csar.manifest.entries]
    assert "Gone/old.bin" not in sources  # stale block dropped
    assert sources == sorted(sources)
    assert set(sources) == {f.path for f in csar.files} - {"vnfd.mf"}
    assert (csar.root / "Files/images/blob.bin").read_bytes() == (
        src / "Files/images/blob.bin"
    ).read_bytes()
    with zipfile.ZipFile(out) as zf:
        infos = zf.infolist()
    assert infos[0].filename == "TOSCA-Metadata/TOSCA.meta"
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    assert all(i.external_attr >> 16 == 0o100644 for i in infos)
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)


def test_build_is_deterministic(tmp_path: Path) -> None:
    src = source_tree(tmp_path / "src")
    first = build_csar(src, tmp_path / "a.csar").read_bytes()
    os.utime(src / "Definitions/vnfd.yaml", (1_000_000_000, 1_000_000_000))
    second = build_csar(src, tmp_path / "b.csar").read_bytes()
    assert first == second


def test_build_sha512_and_no_metadata_layout(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", nometa_members())
    csar = open_csar(build_csar(src, tmp_path / "p.csar", algorithm="SHA-512"), tmp_path / "o")
    assert csar.manifest is not None
    assert {e.algorithm for e in csar.manifest.entries} == {"SHA-512"}


def test_build_refuses_symlink(tmp_path: Path) -> None:
    src = source_tree(tmp_path / "src")
    (src / "Files/link").symlink_to("/etc/passwd")
    with pytest.raises(DescriptorError, match="symbolic link"):
        build_csar(src, tmp_path / "p.csar")
    assert not (tmp_path / "p.csar").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"]  # no temp file left


def test_build_refuses_unknown_algorithm_and_output_in_tree(tmp_path: Path) -> None:
    src = source_tree(tmp_path / "src")
    with pytest.raises(DescriptorError, match="MD5"):
        build_csar(src, tmp_path / "p.csar", algorithm="MD5")
    with pytest.raises(DescriptorError, match="inside the package source"):
        build_csar(src, src / "Files" / "p.csar")


def test_signed_manifest_option_1(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    src = source_tree(tmp_path / "src")
    out = build_csar(src, tmp_path / "p.csar", sign_with=(pki.signer_cert, pki.signer_key))
    csar = open_csar(out, tmp_path / "good", trust_anchor=pki.ca_cert)
    assert csar.signed and csar.security_option == "OPTION_1"
    assert csar.certificate_path == "Files/Certificates/vnfd.cert"
    assert csar.tosca_meta["ETSI-Entry-Certificate"] == "Files/Certificates/vnfd.cert"
    # Without a trust anchor the signature is seen but not vouched for.
    unverified = open_csar(out, tmp_path / "noanchor")
    assert unverified.security_option == "OPTION_1" and not unverified.signed


def test_signed_manifest_wrong_ca_refused(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other", label="other")
    out = build_csar(
        source_tree(tmp_path / "src"),
        tmp_path / "p.csar",
        sign_with=(pki.signer_cert, pki.signer_key),
    )
    with pytest.raises(DescriptorError, match="signature verification failed"):
        open_csar(out, tmp_path / "o", trust_anchor=other.ca_cert)
    assert listing(tmp_path / "o") == []


def test_tampered_signed_manifest_refused(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    out = build_csar(
        source_tree(tmp_path / "src"),
        tmp_path / "p.csar",
        sign_with=(pki.signer_cert, pki.signer_key),
    )
    with zipfile.ZipFile(out) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    # Changing metadata keeps every digest right, so only the signature can notice.
    members["vnfd.mf"] = members["vnfd.mf"].replace(
        b"vnf_package_version: 1.0", b"vnf_package_version: 9.9"
    )
    tampered = write_zip(tmp_path / "t.csar", members)
    with pytest.raises(DescriptorError, match="signature verification failed") as err:
        open_csar(tampered, tmp_path / "o", trust_anchor=pki.ca_cert)
    assert err.value.location == "vnfd.mf"
    assert listing(tmp_path / "o") == []


def test_require_signature(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    out = build_csar(source_tree(tmp_path / "src"), tmp_path / "p.csar")
    strict = CsarLimits(require_signature=True)
    with pytest.raises(DescriptorError, match="not signed"):
        open_csar(out, tmp_path / "o1", limits=strict, trust_anchor=pki.ca_cert)
    with pytest.raises(DescriptorError, match="no trust anchor"):
        open_csar(out, tmp_path / "o2", limits=strict)


def _wrap(tmp_path: Path, inner: Path, signature: str, cert: Path | None) -> Path:
    members = {"vnf.csar": inner.read_bytes(), "vnf.cms": signature.encode()}
    if cert is not None:
        members["vnf.cert"] = cert.read_bytes()
    return write_zip(tmp_path / "wrapped.zip", members, compression=zipfile.ZIP_STORED)


def test_option_2_wrapper(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    inner = build_csar(source_tree(tmp_path / "src"), tmp_path / "inner.csar")
    signature = sign_detached(inner.read_bytes(), pki.signer_cert, pki.signer_key)
    wrapped = _wrap(tmp_path, inner, signature, pki.signer_cert)
    csar = open_csar(wrapped, tmp_path / "o", trust_anchor=pki.ca_cert)
    assert csar.signed and csar.security_option == "OPTION_2"
    assert csar.entry_definitions == "Definitions/vnfd.yaml"
    assert not any(f.path.endswith(".cms") for f in csar.files)


def test_option_2_wrapper_bad_signature(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other", label="other")
    inner = build_csar(source_tree(tmp_path / "src"), tmp_path / "inner.csar")
    signature = sign_detached(inner.read_bytes() + b"x", pki.signer_cert, pki.signer_key)
    wrapped = _wrap(tmp_path, inner, signature, None)
    with pytest.raises(DescriptorError, match="signature verification failed"):
        open_csar(wrapped, tmp_path / "o", trust_anchor=pki.ca_cert)
    good = sign_detached(inner.read_bytes(), pki.signer_cert, pki.signer_key)
    wrapped = _wrap(tmp_path, inner, good, None)
    with pytest.raises(DescriptorError, match="signature verification failed"):
        open_csar(wrapped, tmp_path / "o2", trust_anchor=other.ca_cert)
    assert listing(tmp_path / "o") == [] and listing(tmp_path / "o2") == []


def test_signed_no_metadata_layout(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    src = write_tree(tmp_path / "src", nometa_members())
    out = build_csar(src, tmp_path / "p.csar", sign_with=(pki.signer_cert, pki.signer_key))
    csar = open_csar(out, tmp_path / "o", trust_anchor=pki.ca_cert)
    assert csar.signed and csar.certificate_path == "tiny.cert"


def test_per_artifact_signature(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    src = source_tree(tmp_path / "src", stale_manifest=False)
    blob = (src / "Files/images/blob.bin").read_bytes()
    signature = sign_detached(blob, pki.signer_cert, pki.signer_key)
    (src / "Files/images/blob.bin.sig.cms").write_text(signature)
    (src / "Files/signer.cert").write_bytes(pki.signer_cert.read_bytes())
    with (src / "vnfd.mf").open("a") as mf:
        mf.write(
            "\nSource: Files/images/blob.bin\nAlgorithm: SHA-256\nHash: " + "0" * 64 + "\n"
            "Signature: Files/images/blob.bin.sig.cms\nCertificate: Files/signer.cert\n"
        )
    csar = open_csar(build_csar(src, tmp_path / "p.csar"), tmp_path / "o", trust_anchor=pki.ca_cert)
    assert csar.security_option == "OPTION_1"
    assert not csar.signed  # artifact signatures alone do not sign the package
    assert csar.manifest is not None
    entry = csar.manifest.entry("Files/images/blob.bin")
    assert entry is not None and entry.signature == "Files/images/blob.bin.sig.cms"

    other = sign_detached(b"something else", pki.signer_cert, pki.signer_key)
    (src / "Files/images/blob.bin.sig.cms").write_text(other)
    with pytest.raises(DescriptorError, match="signature verification failed") as err:
        open_csar(build_csar(src, tmp_path / "q.csar"), tmp_path / "o2", trust_anchor=pki.ca_cert)
    assert err.value.location == "Files/images/blob.bin"
