"""What the /nslcm/v2 LCM tests share: the sample NS, the task calls, a test worker.

`TestWorker` plays the orchestration worker's part through the real occurrence service
(`NsOccurrenceService`: claim, record, apply), so the API's state machine, leases and
notifications are exercised as a worker drives them; the orchestration engine itself is
tested in tests/integration/nslcm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from nfvo.nslcm.models import NsInstanceRow
from nfvo.nslcm.occurrences import NsOccurrenceService, problem
from nfvo.nslcm.opocc_states import Event
from store.base import transaction
from tests.support.etsi_schema import NSLCM_DEFS, SOL005_DEFS, validate

if TYPE_CHECKING:
    from fastapi import FastAPI

INSTANCES = "/nslcm/v2/ns_instances"
OP_OCCS = "/nslcm/v2/ns_lcm_op_occs"
SUBS = "/nslcm/v2/subscriptions"
NSDS = "/nsd/v2/ns_descriptors"
NSLCM_VERSION = "2.3.0"
MERGE = {"Content-Type": "application/merge-patch+json"}


def problem_of(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    validate(SOL005_DEFS, "ProblemDetails", body)
    return body


def checked_occ(body: dict[str, Any]) -> dict[str, Any]:
    validate(NSLCM_DEFS, "NsLcmOpOcc", body)
    return body


class Onboarder(Protocol):
    """tests.api.conftest.NsdApi, as far as it is needed here."""

    http: httpx.Client

    def onboard(self, content: bytes, media: str = ...) -> dict[str, Any]: ...


class Service(Protocol):
    """tests.api.conftest.Nfvo, as far as it is needed here."""

    url: str
    app: FastAPI


def onboard_edge_nsd(nsd_api: Onboarder, archive: Path) -> dict[str, Any]:
    info = nsd_api.onboard(archive.read_bytes())
    resp = nsd_api.http.patch(
        f"{NSDS}/{info['id']}", json={"nsdOperationalState": "ENABLED"}, headers=MERGE
    )
    assert resp.status_code == 200, resp.text
    return info


@dataclass
class Dispatched:
    """The hand-overs the API made: (op_id, kind); stands in for the broker."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    broken: bool = False

    def __call__(self, op_id: str, kind: str) -> None:
        if self.broken:
            raise ConnectionError("broker unreachable")
        self.calls.append((op_id, kind))


@dataclass
class NsLab:
    """A running NFVO with the sample NSD enabled, and helpers for its NS LCM API."""

    nfvo: Service
    lcm: httpx.Client
    nsd_id: str
    dispatched: Dispatched

    @property
    def occurrences(self) -> NsOccurrenceService:
        svc: NsOccurrenceService = self.nfvo.app.state.ns_occurrences
        return svc

    def create(self, name: str = "hn-edge") -> str:
        resp = self.lcm.post(
            INSTANCES, json={"nsdId": self.nsd_id, "nsName": name, "nsDescription": name}
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def task(self, ns_id: str, task: str, body: dict[str, Any]) -> str:
        resp = self.lcm.post(f"{INSTANCES}/{ns_id}/{task}", json=body)
        assert resp.status_code == 202, resp.text
        location = resp.headers["Location"]
        assert location.startswith(f"{self.nfvo.url}{OP_OCCS}/")
        return location.rsplit("/", 1)[1]

    def occ(self, op_id: str) -> dict[str, Any]:
        resp = self.lcm.get(f"{OP_OCCS}/{op_id}")
        assert resp.status_code == 200, resp.text
        return checked_occ(resp.json())

    def ns(self, ns_id: str) -> dict[str, Any]:
        resp = self.lcm.get(f"{INSTANCES}/{ns_id}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        validate(NSLCM_DEFS, "NsInstance", body)
        return body

    def instantiated(self, vnfs: list[dict[str, Any]] | None = None) -> str:
        """An NS instance set INSTANTIATED directly (with the given VNF instance records).

        For the tests of the other tasks' checks; instantiation itself is the engine's.
        """
        ns_id = self.create()
        with transaction(self.nfvo.app.state.session_factory) as session:
            row = session.get(NsInstanceRow, ns_id)
            assert row is not None
            row.ns_state = "INSTANTIATED"
            row.flavour_id = "default"
            row.instantiation_level_id = "small"
            row.vnf_instances = vnfs if vnfs is not None else [nat_record("hn-vnf-1")]
            row.scale_status = [{"nsScalingAspectId": "nat_capacity", "nsScaleLevelId": "0"}]
            row.revision += 1
        return ns_id


def nat_record(vnf_id: str) -> dict[str, Any]:
    """A VnfInstance entry of the NAT profile as the NsInstance holds it."""
    return {
        "id": vnf_id,
        "vnfdId": "nat-vnfd",
        "vnfProfileId": "nat",
        "vnfProvider": "nfv-mano",
        "vnfProductName": "nat",
        "vnfSoftwareVersion": "1.0",
        "vnfdVersion": "1.0",
        "vnfPkgId": "hn-pkg",
        "instantiationState": "INSTANTIATED",
    }


@dataclass
class TestWorker:
    """Drives occurrences as a worker does, through the real occurrence service."""

    __test__ = False  # not a test class, whatever its name

    svc: NsOccurrenceService
    name: str = "hn-test-worker"

    def claim(self, op_id: str, lease: float = 30.0) -> None:
        assert self.svc.claim(op_id, self.name, lease) is not None

    def fail(self, op_id: str, detail: str = "hn: VNF nat failed to instantiate") -> None:
        self.claim(op_id)
        self.svc.apply(op_id, Event.FAILED_STEP, error=problem(500, detail, "INSTANTIATE failed"))

    def finish(self, op_id: str, event: Event = Event.SUCCEEDED) -> None:
        self.claim(op_id)
        self.svc.apply(op_id, event)
