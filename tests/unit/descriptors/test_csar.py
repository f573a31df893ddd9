"""Reading well-formed CSARs in both SOL004 layouts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from descriptors.csar import CsarLimits, open_csar, parse_tosca_meta, validate_csar
from descriptors.errors import DescriptorError
from tests.unit.descriptors.csar_factory import (
    TOSCA_META,
    VNFD,
    manifest_for,
    meta_members,
    nometa_members,
    write_zip,
)


def test_metadata_layout_opens(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "pkg.csar", meta_members())
    csar = open_csar(zip_path, tmp_path / "out")
    assert csar.root == tmp_path / "out"
    assert csar.entry_definitions == "Definitions/vnfd.yaml"
    assert (csar.root / csar.entry_definitions).read_text() == VNFD
    assert csar.tosca_meta["CSAR-Version"] == "1.1"
    assert csar.manifest_path == "vnfd.mf"
    assert csar.change_log_path == "Files/ChangeLog.txt"
    assert csar.certificate_path is None
    assert csar.manifest is not None
    assert csar.manifest.package_kind == "VNF"
    assert csar.manifest.metadata["vnf_product_name"] == "tiny"
    assert {e.source for e in csar.manifest.entries} == {
        "TOSCA-Metadata/TOSCA.meta",
        "Definitions/vnfd.yaml",
        "Files/ChangeLog.txt",
    }
    assert not csar.signed
    assert csar.security_option is None
    assert csar.checksum == ("SHA-256", hashlib.sha256(zip_path.read_bytes()).hexdigest())
    by_path = {f.path: f for f in csar.files}
    assert by_path["Definitions/vnfd.yaml"].sha256 == hashlib.sha256(VNFD.encode()).hexdigest()
    assert by_path["Definitions/vnfd.yaml"].size == len(VNFD)


def test_no_metadata_layout_opens(tmp_path: Path) -> None:
    csar = open_csar(write_zip(tmp_path / "pkg.csar", nometa_members()), tmp_path / "out")
    assert csar.entry_definitions == "tiny.yaml"
    assert csar.tosca_meta == {}
    assert csar.manifest_path == "tiny.mf"
    assert csar.manifest is not None


def test_no_metadata_layout_needs_template_metadata(tmp_path: Path) -> None:
    members = {"tiny.yaml": b"tosca_definitions_version: tosca_simple_yaml_1_3\n"}
    members["tiny.mf"] = manifest_for(members)
    with pytest.raises(DescriptorError, match="metadata"):
        open_csar(write_zip(tmp_path / "p.csar", members), tmp_path / "out")


def test_no_metadata_layout_needs_exactly_one_root_yaml(tmp_path: Path) -> None:
    members = nometa_members()
    members["other.yaml"] = VNFD.encode()
    with pytest.raises(DescriptorError, match="exactly one YAML"):
        open_csar(write_zip(tmp_path / "p.csar", members), tmp_path / "out")


def test_no_metadata_manifest_must_match_entry_name(tmp_path: Path) -> None:
    members = nometa_members()
    members["other.mf"] = members.pop("tiny.mf")
    with pytest.raises(DescriptorError, match=r"must be named 'tiny\.mf'"):
        open_csar(write_zip(tmp_path / "p.csar", members), tmp_path / "out")


def test_old_entry_manifest_spelling_accepted(tmp_path: Path) -> None:
    members = meta_members()
    members["TOSCA-Metadata/TOSCA.meta"] = (
        TOSCA_META.replace("ETSI-Entry-Manifest", "Entry-Manifest")
        .replace("ETSI-Entry-Change-Log", "Entry-Change-Log")
        .encode()
    )
    members["vnfd.mf"] = manifest_for(members, exclude=["vnfd.mf"])
    csar = open_csar(write_zip(tmp_path / "p.csar", members), tmp_path / "out")
    assert csar.manifest_path == "vnfd.mf"
    assert csar.change_log_path == "Files/ChangeLog.txt"


def test_manifest_required_by_default_but_can_be_relaxed(tmp_path: Path) -> None:
    members = meta_members()
    del members["vnfd.mf"]
    members["TOSCA-Metadata/TOSCA.meta"] = TOSCA_META.replace(
        "ETSI-Entry-Manifest: vnfd.mf\n", ""
    ).encode()
    zip_path = write_zip(tmp_path / "p.csar", members)
    with pytest.raises(DescriptorError, match="no manifest"):
        open_csar(zip_path, tmp_path / "out")
    csar = open_csar(zip_path, tmp_path / "out2", limits=CsarLimits(require_manifest=False))
    assert csar.manifest is None and csar.manifest_path is None


def test_unlisted_file_refused(tmp_path: Path) -> None:
    members = meta_members()
    members["Files/sneaky.sh"] = b"#!/bin/sh\n"
    zip_path = write_zip(tmp_path / "p.csar", members)
    with pytest.raises(DescriptorError, match="not listed in the manifest") as err:
        open_csar(zip_path, tmp_path / "out")
    assert err.value.location == "Files/sneaky.sh"
    relaxed = CsarLimits(require_complete_manifest=False)
    assert open_csar(zip_path, tmp_path / "out2", limits=relaxed).files


def test_non_mano_sets_and_external_sources(tmp_path: Path) -> None:
    members = meta_members({"Files/ves/events.yaml": b"events: []\n"})
    members["vnfd.mf"] = manifest_for(
        members,
        exclude=["vnfd.mf"],
        extra_text=(
            "\nSource: https://example.com/images/big.qcow2\n"
            "\nnon_mano_artifact_sets:\n"
            "  onap_ves_events:\n"
            "    Source: Files/ves/events.yaml\n"
        ),
    )
    csar = open_csar(write_zip(tmp_path / "p.csar", members), tmp_path / "out")
    assert csar.non_mano_artifact_sets == {"onap_ves_events": ["Files/ves/events.yaml"]}
    assert csar.manifest is not None
    ves = csar.manifest.entry("Files/ves/events.yaml")
    assert ves is not None and ves.non_mano_artifact_set == "onap_ves_events"
    external = csar.manifest.entry("https://example.com/images/big.qcow2")
    assert external is not None and external.external and external.hash is None


def test_destination_must_be_empty(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "precious").write_text("keep me")
    with pytest.raises(DescriptorError, match="not empty"):
        open_csar(write_zip(tmp_path / "p.csar", meta_members()), dest)
    assert (dest / "precious").read_text() == "keep me"


def test_existing_empty_destination_kept_on_error(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    members = meta_members()
    members["Definitions/vnfd.yaml"] = b"changed"
    with pytest.raises(DescriptorError, match="digest mismatch"):
        open_csar(write_zip(tmp_path / "p.csar", members), dest)
    assert dest.is_dir() and not any(dest.iterdir())


def test_validate_csar_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    zip_path = write_zip(tmp_path / "p.csar", meta_members())
    csar = validate_csar(zip_path)
    assert csar.root == zip_path
    assert csar.entry_definitions == "Definitions/vnfd.yaml"
    assert list(scratch.iterdir()) == []


def test_tosca_meta_continuation_and_later_blocks() -> None:
    meta = parse_tosca_meta(
        b"TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\nCreated-By: a very long\n"
        b"  name\nEntry-Definitions: Definitions/vnfd.yaml\n\nName: Definitions/vnfd.yaml\n"
        b"Content-Type: application/vnd.oasis.tosca.definitions\n"
    )
    assert meta["Created-By"] == "a very long name"
    assert "Name" not in meta


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (b"TOSCA-Meta-File-Version: 1.0\nCSAR-Version 1.1\n", "malformed"),
        (b"TOSCA-Meta-File-Version: 1.0\nTOSCA-Meta-File-Version: 1.0\n", "repeated"),
        (b"TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\n", "Created-By, Entry-Definitions"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_tosca_meta_malformed(text: bytes, match: str) -> None:
    with pytest.raises(DescriptorError, match=match):
        parse_tosca_meta(text)
