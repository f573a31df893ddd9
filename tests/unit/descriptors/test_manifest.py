"""SOL004 manifest parsing and digest verification."""

from __future__ import annotations

from pathlib import Path

import pytest

from descriptors.errors import DescriptorError
from descriptors.manifest import (
    parse_manifest,
    render_manifest,
    split_signature,
    verify_digests,
)
from tests.unit.descriptors.csar_factory import metadata_block

HASH = "a" * 64


def parse(text: str):
    return parse_manifest(text.encode(), source="m.mf")


def test_entries_and_metadata() -> None:
    manifest = parse(
        metadata_block()
        + f"\nSource: Definitions/vnfd.yaml\nAlgorithm: SHA-256\nHash: {HASH.upper()}\n"
        + "\nSource: ./Files/a.txt\nAlgorithm: SHA-512\nHash: "
        + "b" * 128
        + "\n"
    )
    assert manifest.package_kind == "VNF"
    assert manifest.metadata["vnf_release_date_time"] == "2024-01-01T10:00:00+00:00"
    first, second = manifest.entries
    assert (first.source, first.algorithm, first.hash) == ("Definitions/vnfd.yaml", "SHA-256", HASH)
    assert second.source == "Files/a.txt"
    assert manifest.cms_signature is None


def test_unindented_metadata_as_in_sol004_examples() -> None:
    manifest = parse(
        "metadata:\nvnf_provider_id: Acme\nvnf_product_name: vX\n"
        "vnf_release_date_time: 2024-01-01T10:00:00+00:00\nvnf_package_version: 1.0\n"
        f"Source: Definitions/vnfd.yaml\nAlgorithm: SHA-256\nHash: {HASH}\n"
    )
    assert manifest.metadata["vnf_provider_id"] == "Acme"
    assert [e.source for e in manifest.entries] == ["Definitions/vnfd.yaml"]


def test_ns_package_metadata() -> None:
    manifest = parse(
        "metadata:\n  nsd_designer: x\n  nsd_invariant_id: y\n  nsd_name: n\n"
        "  nsd_release_date_time: 2024-01-01T00:00:00Z\n  nsd_file_structure_version: 1.0\n"
    )
    assert manifest.package_kind == "NS"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Source: a\n", "must start with a 'metadata:'"),
        ("metadata:\n  vnf_provider_id: x\n", "vnf_product_name"),
        ("metadata:\n  foo: bar\n", "none of the VNF/NS/PNF"),
        (metadata_block() + "\nSource: a\nAlgorithm: MD5\nHash: " + "0" * 32 + "\n", "MD5"),
        (metadata_block() + "\nSource: a\nAlgorithm: SHA-256\nHash: abc\n", "64 hex"),
        (metadata_block() + "\nSource: a\nAlgorithm: SHA-256\n", "both 'Algorithm' and 'Hash'"),
        (metadata_block() + f"\nSource: ../x\nAlgorithm: SHA-256\nHash: {HASH}\n", "outside"),
        (metadata_block() + f"\nSource: /etc/x\nAlgorithm: SHA-256\nHash: {HASH}\n", "absolute"),
        (
            metadata_block()
            + f"\nSource: a\nAlgorithm: SHA-256\nHash: {HASH}\n"
            + f"\nSource: a\nAlgorithm: SHA-256\nHash: {HASH}\n",
            "listed twice",
        ),
        (metadata_block() + "\nColour: blue\n", "unknown manifest key"),
        (metadata_block() + f"\nAlgorithm: SHA-256\nHash: {HASH}\n", "outside a Source block"),
        (metadata_block() + "\n-----BEGIN CMS-----\nAAAA\n", "END CMS"),
    ],
)
def test_malformed(text: str, match: str) -> None:
    with pytest.raises(DescriptorError, match=match):
        parse(text)


def test_signature_split_and_round_trip() -> None:
    body = render_manifest(
        {
            "vnf_provider_id": "a",
            "vnf_product_name": "b",
            "vnf_release_date_time": "c",
            "vnf_package_version": "d",
        },
        [],
        {"set1": ["Files/x"]},
    )
    signed = body + b"-----BEGIN CMS-----\nAAAA\n-----END CMS-----\n"
    assert split_signature(signed) == (body, b"-----BEGIN CMS-----\nAAAA\n-----END CMS-----\n")
    manifest = parse_manifest(signed, source="m.mf")
    assert manifest.signed_length == len(body)
    assert manifest.cms_signature is not None
    assert manifest.non_mano_artifact_sets == {"set1": ["Files/x"]}


def test_external_source_with_and_without_digest() -> None:
    manifest = parse(
        metadata_block()
        + "\nSource: https://example.com/a.img\n"
        + f"\nSource: http://example.com/b.img\nAlgorithm: SHA-256\nHash: {HASH}\n"
    )
    assert all(e.external for e in manifest.entries)


def test_verify_digests(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"hello")
    good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    manifest = parse(metadata_block() + f"\nSource: a\nAlgorithm: SHA-256\nHash: {good}\n")
    verify_digests(manifest, tmp_path, ["a"], source="m.mf")
    bad = parse(metadata_block() + f"\nSource: a\nAlgorithm: SHA-256\nHash: {HASH}\n")
    with pytest.raises(DescriptorError) as err:
        verify_digests(bad, tmp_path, ["a"], source="m.mf")
    assert good in err.value.detail and HASH in err.value.detail and err.value.location == "a"
    with pytest.raises(DescriptorError, match="no such file"):
        verify_digests(manifest, tmp_path, [], source="m.mf")
