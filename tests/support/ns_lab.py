"""NS orchestration labs: NSDs built from the sample edge-gateway NSD, onboarded with their
VNF packages into an `LcmLab` (an NFVO on a real socket with real Celery LCM workers).

`two_nat_nsd` makes the 2-VNF NS the orchestration tests need: the sample's NAT profile
(``nat``) plus a second profile ``nat_b`` that depends on it, of a NAT package copy under
another vnfdId (so the two VNFs can be told apart, and one of them broken on its own).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from descriptors.nsd_build import build_nsd_archive
from tests.support.celery_worker import NAT_VNFD_ID, LcmLab, lcm_lab, runnable_nat_csar
from tests.support.etsi_schema import NSLCM_DEFS, validate
from tests.support.local_vim import leftovers

REPO = Path(__file__).resolve().parents[2]
EDGE_GATEWAY = REPO / "descriptors" / "nsds" / "edge-gateway"
EDGE_GATEWAY_NSD_ID = "01ac4c04-8ab4-411c-9f2d-9c5ff9e5cd5f"
NSDS = "/nsd/v2/ns_descriptors"
NS_INSTANCES = "/nslcm/v2/ns_instances"
NS_OP_OCCS = "/nslcm/v2/ns_lcm_op_occs"
NSD_VERSION = "2.3.0"
NSLCM_VERSION = "2.3.0"
PKGS = "/vnfpkgm/v2/vnf_packages"

_NAT_B_TYPE = """
  mano.nodes.nfv.natb.VNF:
    derived_from: mano.nodes.nfv.nat.VNF
    description: the NAT under another vnfdId (a second, independently managed package)
    properties:
      descriptor_id:
        type: string
        default: {vnfd_id}
"""

_NAT_B_NODE = """    nat_b:
      type: mano.nodes.nfv.natb.VNF
      properties:
        flavour_id: default
        vnf_profile:
          instantiation_level: small
          min_number_of_instances: 1
          max_number_of_instances: 1
      requirements:
      - virtual_link_inside: inside_vl
      - virtual_link_outside: outside_vl
      - virtual_link_mgmt: mgmt_vl
      - dependency: nat
"""


def two_nat_nsd(tmp: Path, nat_b_vnfd_id: str) -> Path:
    """The edge-gateway NSD with a second NAT profile ``nat_b`` after ``nat``, as an archive."""
    tree = tmp / "two-nat-nsd"
    shutil.copytree(EDGE_GATEWAY, tree)
    types = tree / "Definitions" / "vnfs" / "nat_types.yaml"
    text = types.read_text()
    assert "node_types:" in text
    types.write_text(text.rstrip("\n") + "\n" + _NAT_B_TYPE.format(vnfd_id=nat_b_vnfd_id))
    nsd = tree / "Definitions" / "edge_gateway_nsd.yaml"
    text = nsd.read_text()
    anchor = "    inside_vl:\n"
    assert anchor in text
    text = text.replace(anchor, _NAT_B_NODE + anchor, 1)
    text = text.replace("targets: [nat]", "targets: [nat, nat_b]")
    nsd.write_text(text)
    # The manifest lists no digests of these files (unsigned archive): rebuilt as is.
    return build_nsd_archive(tree, tmp / "two-nat-nsd.zip")


def edge_gateway_variant(
    tmp: Path, name: str, old: str, new: str, *, nsd_id: str | None = None
) -> Path:
    """The sample edge-gateway NSD with ``old`` (found exactly once) replaced, as an archive.

    With ``nsd_id`` the variant has that nsdId, so it can be onboarded next to the sample.
    """
    tree = tmp / name
    shutil.copytree(EDGE_GATEWAY, tree)
    nsd = tree / "Definitions" / "edge_gateway_nsd.yaml"
    text = nsd.read_text()
    assert text.count(old) == 1, f"{old!r} is not in the sample NSD exactly once"
    nsd.write_text(text.replace(old, new))
    if nsd_id is not None:
        types = tree / "Definitions" / "edge_gateway_types.yaml"
        text = types.read_text()
        assert text.count(EDGE_GATEWAY_NSD_ID) == 2
        types.write_text(text.replace(EDGE_GATEWAY_NSD_ID, nsd_id))
    return build_nsd_archive(tree, tmp / f"{name}.zip")


@contextmanager
def single_nat_lab(tmp: Path, prefix: str) -> Iterator[LcmLab]:
    """An LCM lab with two workers and the runnable NAT package onboarded; no leaks after."""
    with lcm_lab(tmp, broker_url=None, vim_prefix=prefix) as made:
        made.start_worker("w1")
        made.start_worker("w2")
        made.onboard(runnable_nat_csar(tmp / "nat", vnfd_id=NAT_VNFD_ID))
        yield made
        assert made.vim.leaks() == []
    assert leftovers(prefix) == []


def _wait(http: httpx.Client, url: str, field: str, done: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        body: dict[str, Any] = http.get(url).json()
        if body[field] in done:
            return body
        assert time.monotonic() < deadline, f"{url} stuck in {body[field]}"
        time.sleep(0.05)


def onboard_nsd(lab: LcmLab, archive: Path) -> str:
    """Onboard and enable an NSD in the lab; its nsdId."""
    http = httpx.Client(base_url=lab.url, headers={"Version": NSD_VERSION}, timeout=60)
    with http:
        nsd_info_id = http.post(NSDS, json={}).json()["id"]
        resp = http.put(
            f"{NSDS}/{nsd_info_id}/nsd_content",
            content=archive.read_bytes(),
            headers={"Content-Type": "application/zip"},
        )
        assert resp.status_code == 202, resp.text
        info = _wait(http, f"{NSDS}/{nsd_info_id}", "nsdOnboardingState", ("ONBOARDED", "ERROR"))
        assert info["nsdOnboardingState"] == "ONBOARDED", info
        resp = http.patch(
            f"{NSDS}/{nsd_info_id}",
            json={"nsdOperationalState": "ENABLED"},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert resp.status_code == 200, resp.text
        return str(info["nsdId"])


def set_package_state(lab: LcmLab, vnfd_id: str, state: str) -> None:
    """ENABLE or DISABLE the onboarded package of a VNFD."""
    headers = {"Version": "2.4.0"}
    packages = lab.http.get(PKGS, headers=headers, params={"filter": f"(eq,vnfdId,{vnfd_id})"})
    assert packages.status_code == 200, packages.text
    (package,) = packages.json()
    resp = lab.http.patch(
        f"{PKGS}/{package['id']}",
        json={"operationalState": state},
        headers={**headers, "Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200, resp.text


class NsApi:
    """/nslcm/v2 as the tests use it against a lab."""

    def __init__(self, lab: LcmLab, nsd_id: str) -> None:
        self.lab = lab
        self.nsd_id = nsd_id
        self.http = httpx.Client(base_url=lab.url, headers={"Version": NSLCM_VERSION}, timeout=60)

    def close(self) -> None:
        self.http.close()

    def create(self, name: str) -> str:
        resp = self.http.post(
            NS_INSTANCES, json={"nsdId": self.nsd_id, "nsName": name, "nsDescription": name}
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def task(self, ns_id: str, task: str, body: dict[str, Any]) -> str:
        resp = self.http.post(f"{NS_INSTANCES}/{ns_id}/{task}", json=body)
        assert resp.status_code == 202, resp.text
        return str(resp.headers["Location"].rsplit("/", 1)[1])

    def op_task(self, op_id: str, task: str) -> None:
        resp = self.http.post(f"{NS_OP_OCCS}/{op_id}/{task}")
        assert resp.status_code == 202, resp.text

    def occ(self, op_id: str) -> dict[str, Any]:
        resp = self.http.get(f"{NS_OP_OCCS}/{op_id}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        validate(NSLCM_DEFS, "NsLcmOpOcc", body)
        return body

    def ns(self, ns_id: str) -> dict[str, Any]:
        resp = self.http.get(f"{NS_INSTANCES}/{ns_id}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        validate(NSLCM_DEFS, "NsInstance", body)
        return body

    def wait(self, op_id: str, *states: str, timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            occ = self.occ(op_id)
            if occ["operationState"] in states:
                return occ
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {w.name}\n{w.output()[-4000:]}" for w in self.lab.workers)
                raise AssertionError(
                    f"NS op {op_id} still {occ['operationState']} (wanted {states}): {occ}\n{tails}"
                )
            time.sleep(0.2)


__all__ = [
    "NAT_VNFD_ID",
    "NsApi",
    "edge_gateway_variant",
    "onboard_nsd",
    "set_package_state",
    "single_nat_lab",
    "two_nat_nsd",
]
