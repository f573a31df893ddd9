"""NSD upload and onboarding (zip archive and single YAML file), and the content routes."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import update

from descriptors.nsd import Nsd
from descriptors.nsd_build import build_nsd_archive, single_file_nsd
from nfvo.nsd.models import NsdRow
from store.base import transaction
from tests.api.conftest import NSD_ENTRY, NSD_VERSION, NSDS, Nfvo, NsdApi

NSD_ID = "01ac4c04-8ab4-411c-9f2d-9c5ff9e5cd5f"
NAT_VNFD_ID = "6f1b8a52-3c1e-4d7a-9f0e-2b5c8d4a1e01"
TEXT = {"Accept": "text/plain"}
ZIP = {"Accept": "application/zip"}


def _edit_nsd(tree: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = tree / NSD_ENTRY
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def _nodes(document: dict[str, Any]) -> dict[str, Any]:
    nodes: dict[str, Any] = document["topology_template"]["node_templates"]
    return nodes


def test_archive_onboards_with_nsd_attributes(
    nfvo: Nfvo, nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> None:
    info = nsd_api.onboard(nsd_archives["edge-gateway"].read_bytes())
    assert info["nsdId"] == NSD_ID
    assert info["nsdName"] == "edge-gateway"
    assert info["nsdVersion"] == "0.1.0"
    assert info["nsdDesigner"] == "nfv-mano project"
    assert info["nsdInvariantId"] == "862c982e-5908-48fc-b864-36ef31dd174a"
    assert info["vnfPkgIds"] == [nat_package["id"]]
    assert info["pnfdInfoIds"] == [] and info["nestedNsdInfoIds"] == []
    assert info["nsdOperationalState"] == "DISABLED"
    assert info["nsdUsageState"] == "NOT_IN_USE"
    # Signed by the designer with the CA the NFVO trusts (SOL007 option 1).
    assert info["archiveSecurityOption"] == "OPTION_1"
    assert info["signingCertificate"] == "Files/Certificates/edge_gateway.cert"
    assert [a["artifactPath"] for a in info["artifacts"]] == ["ChangeLog.txt"]
    assert info["artifacts"][0]["checksum"]["algorithm"] == "SHA-256"
    # The typed NSD is stored for NS lifecycle management.
    with nfvo.app.state.session_factory() as session:
        row = session.get(NsdRow, info["id"])
        assert row is not None and row.nsd is not None
        nsd = Nsd.model_validate(row.nsd)
    assert nsd.flavour("default").vnf_profile("nat").vnfd_id == NAT_VNFD_ID


def test_single_yaml_file_onboards(
    nsd_api: NsdApi, nat_package: dict[str, Any], nsd_tree: Callable[[str], Path]
) -> None:
    text = single_file_nsd(nsd_tree("edge-gateway"), NSD_ENTRY).encode()
    for media in ("text/plain", "application/x-yaml"):
        info = nsd_api.onboard(text, media)
        assert info["nsdId"] == NSD_ID and info["vnfPkgIds"] == [nat_package["id"]]
        assert "archiveSecurityOption" not in info and "artifacts" not in info
        base = f"{NSDS}/{info['id']}"
        assert nsd_api.http.get(f"{base}/nsd", headers=TEXT).content == text
        content = nsd_api.http.get(f"{base}/nsd_content", headers=TEXT)
        assert content.status_code == 200 and content.content == text
        assert content.headers["content-type"].startswith("text/plain")
        zipped = nsd_api.http.get(f"{base}/nsd_content", headers=ZIP)
        assert zipped.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
            assert archive.read("nsd.yaml") == text
        assert nsd_api.http.get(f"{base}/manifest").status_code == 404
        # Done with it: the next upload carries the same nsdId.
        disable = nsd_api.http.delete(base)
        assert disable.status_code == 204, disable.text


def test_content_routes(
    nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> None:
    archive = nsd_archives["edge-gateway"].read_bytes()
    base = f"{NSDS}/{nsd_api.onboard(archive)['id']}"
    http = nsd_api.http

    whole = http.get(f"{base}/nsd_content", headers=ZIP)
    assert whole.status_code == 200 and whole.content == archive
    assert whole.headers["content-type"] == "application/zip"
    part = http.get(f"{base}/nsd_content", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == archive[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(archive)}"
    beyond = http.get(f"{base}/nsd_content", headers={"Range": f"bytes={len(archive)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(archive)}"
    assert http.get(f"{base}/nsd_content", headers=TEXT).status_code == 406

    # The NSD is several files (the entry and the type files it imports): a zip only.
    assert http.get(f"{base}/nsd", headers=TEXT).status_code == 406
    nsd_zip = http.get(f"{base}/nsd", headers={"Accept": "text/plain, application/zip"})
    assert nsd_zip.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(nsd_zip.content)) as files:
        assert sorted(files.namelist()) == [
            "Definitions/edge_gateway_nsd.yaml",
            "Definitions/edge_gateway_types.yaml",
            "Definitions/nfv_mano_nsd_types.yaml",
            "Definitions/vnfs/nat_types.yaml",
            "TOSCA-Metadata/TOSCA.meta",
        ]
    signed = http.get(f"{base}/nsd", params={"include_signatures": ""}, headers=ZIP)
    with zipfile.ZipFile(io.BytesIO(signed.content)) as files:
        assert "Files/Certificates/edge_gateway.cert" in files.namelist()

    manifest = http.get(f"{base}/manifest", headers=TEXT)
    assert manifest.status_code == 200
    assert b"nsd_designer: nfv-mano project" in manifest.content
    assert b"BEGIN CMS" not in manifest.content
    with_signature = http.get(f"{base}/manifest", params={"include_signatures": ""}, headers=ZIP)
    with zipfile.ZipFile(io.BytesIO(with_signature.content)) as files:
        assert b"BEGIN CMS" in files.read("edge_gateway.mf")
    assert (
        http.get(f"{base}/manifest", params={"include_signatures": ""}, headers=TEXT).status_code
        == 406
    )

    log = http.get(f"{base}/artifacts/ChangeLog.txt")
    assert log.status_code == 200 and log.content.startswith(b"edge-gateway NSD archive")
    assert http.get(f"{base}/artifacts/ChangeLog.txt", headers={"Range": "bytes=0-3"}).content == (
        b"edge"
    )
    # Only recorded artifacts are served: not the NSD files, nothing outside the archive.
    for path in (NSD_ENTRY, "../../etc/passwd", "edge_gateway.mf", "nope.txt"):
        assert http.get(f"{base}/artifacts/{path}").status_code == 404, path


def test_content_needs_an_onboarded_nsd(nsd_api: NsdApi) -> None:
    created = nsd_api.http.post(NSDS, json={}).json()["id"]
    for route in ("nsd_content", "nsd", "manifest", "artifacts/ChangeLog.txt"):
        resp = nsd_api.http.get(f"{NSDS}/{created}/{route}")
        assert resp.status_code == 409, route
        assert "CREATED" in resp.json()["detail"]
    assert nsd_api.http.get(f"{NSDS}/no-such-nsd/nsd_content").status_code == 404


def test_upload_refusals(
    nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> None:
    http = nsd_api.http
    archive = nsd_archives["edge-gateway"].read_bytes()
    created = http.post(NSDS, json={}).json()["id"]
    wrong_media = http.put(
        f"{NSDS}/{created}/nsd_content",
        content=archive,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert wrong_media.status_code == 415
    assert http.get(f"{NSDS}/{created}").json()["nsdOnboardingState"] == "CREATED"
    # A YAML file larger than a service template may be is refused before it is read.
    too_big = http.put(
        f"{NSDS}/{created}/nsd_content",
        content=b"#" * (4 * 1024 * 1024 + 1),
        headers={"Content-Type": "text/plain"},
    )
    assert too_big.status_code == 413
    assert (
        http.put(
            f"{NSDS}/no-such-nsd/nsd_content",
            content=archive,
            headers={"Content-Type": "application/zip"},
        ).status_code
        == 404
    )

    onboarded = nsd_api.onboard(archive)["id"]
    again = http.put(
        f"{NSDS}/{onboarded}/nsd_content",
        content=archive,
        headers={"Content-Type": "application/zip"},
    )
    assert again.status_code == 409
    assert "ONBOARDED" in again.json()["detail"]


def test_streamed_upload_over_the_limit_ends_in_error(
    nfvo_factory: Callable[..., Nfvo], nsd_archives: dict[str, Path]
) -> None:
    nfvo = nfvo_factory(max_upload_bytes=1024)
    http = nfvo.client("nsd", version=NSD_VERSION)
    nsd_info_id = http.post(NSDS, json={}).json()["id"]

    def chunks() -> Any:
        data = nsd_archives["edge-gateway"].read_bytes()
        for start in range(0, len(data), 512):
            yield data[start : start + 512]

    # No Content-Length: the limit is only found while the body streams in.
    resp = http.put(
        f"{NSDS}/{nsd_info_id}/nsd_content",
        content=chunks(),
        headers={"Content-Type": "application/zip"},
    )
    assert resp.status_code == 413
    info = http.get(f"{NSDS}/{nsd_info_id}").json()
    assert info["nsdOnboardingState"] == "ERROR"
    assert info["onboardingFailureDetails"]["status"] == 413
    assert not any((nfvo.settings.nsd_content_dir / ".staging").iterdir())


def test_vnfd_must_be_onboarded_first(
    nfvo: Nfvo, nsd_api: NsdApi, nsd_archives: dict[str, Path], sample_csars: dict[str, Path]
) -> None:
    """SOL001 strict_nsd_constituent_onboarding (default true): VNFDs before the NSD."""
    archive = nsd_archives["edge-gateway"].read_bytes()
    failed = nsd_api.refused(archive)
    failure = failed["onboardingFailureDetails"]
    assert failure["status"] == 409
    assert f"VNF profile 'nat' references VNFD {NAT_VNFD_ID}" in failure["detail"]
    assert "not onboarded" in failure["detail"]
    assert "nsdId" not in failed and "vnfPkgIds" not in failed
    assert not (nfvo.settings.nsd_content_dir / failed["id"]).exists()

    # Fixed by onboarding the NAT package; the same resource takes the upload again from ERROR.
    nat = nfvo.onboard(nfvo.client(), sample_csars["nat"])
    nsd_api.upload(archive, nsd_info_id=failed["id"])
    info = nsd_api.wait(failed["id"])
    assert info["nsdOnboardingState"] == "ONBOARDED", info
    assert info["vnfPkgIds"] == [nat["id"]]
    assert "onboardingFailureDetails" not in info


def test_non_strict_nsd_onboards_without_its_vnfds(
    nsd_api: NsdApi, nsd_tree: Callable[[str], Path], tmp_path: Path
) -> None:
    tree = nsd_tree("edge-gateway")
    _edit_nsd(
        tree,
        lambda d: _nodes(d)["edge_gateway"]["properties"].update(
            strict_nsd_constituent_onboarding=False
        ),
    )
    info = nsd_api.onboard(build_nsd_archive(tree, tmp_path / "loose.zip").read_bytes())
    assert info["vnfPkgIds"] == []


def test_profile_must_fit_its_vnfd(
    nsd_api: NsdApi,
    nat_package: dict[str, Any],
    nsd_tree: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    tree = nsd_tree("edge-gateway")

    def change(document: dict[str, Any]) -> None:
        _nodes(document)["nat"]["properties"]["vnf_profile"]["instantiation_level"] = "huge"
        for policy in document["topology_template"]["policies"]:
            if "nat_fastpath_by_instantiation_level" in policy:
                policy["nat_fastpath_by_instantiation_level"]["properties"]["scale_levels"] = {
                    "small": 0,
                    "large": 12,
                }

    _edit_nsd(tree, change)
    failure = nsd_api.refused(build_nsd_archive(tree, tmp_path / "misfit.zip").read_bytes())[
        "onboardingFailureDetails"
    ]
    assert failure["status"] == 422
    assert (
        "instantiation_level 'huge' is not a level of VNFD flavour 'default'" in (failure["detail"])
    )
    assert "at scale level 12 of 'fastpath', above its max_scale_level 7" in failure["detail"]


def test_one_nsd_per_nsd_id(
    nsd_api: NsdApi, nat_package: dict[str, Any], nsd_archives: dict[str, Path]
) -> None:
    archive = nsd_archives["edge-gateway"].read_bytes()
    first = nsd_api.onboard(archive)
    failure = nsd_api.refused(archive)["onboardingFailureDetails"]
    assert failure["status"] == 409
    assert (
        f"nsdId {NSD_ID} is already onboarded as NS descriptor {first['id']}" in (failure["detail"])
    )


def test_interrupted_onboarding_is_recovered_to_error(
    nfvo_factory: Callable[..., Nfvo], tmp_path: Path
) -> None:
    first = nfvo_factory()
    http = first.client("nsd", version=NSD_VERSION)
    nsd_info_id = http.post(NSDS, json={}).json()["id"]
    with transaction(first.app.state.session_factory) as session:
        session.execute(
            update(NsdRow).where(NsdRow.id == nsd_info_id).values(onboarding_state="PROCESSING")
        )
    stray = first.settings.nsd_content_dir / nsd_info_id
    stray.mkdir(parents=True)
    # A second service on the same database and data directory starts and recovers.
    second = nfvo_factory()
    info = second.client("nsd", version=NSD_VERSION).get(f"{NSDS}/{nsd_info_id}").json()
    assert info["nsdOnboardingState"] == "ERROR"
    assert info["onboardingFailureDetails"]["title"] == "Onboarding interrupted"
    assert not stray.exists()
