"""SOL003 Granting (/grant/v1) served by the NFVO, over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from nfvo.grant.models import GrantRow
from nfvo.grant.schemas import GrantRequest
from nfvo.vnfm_link import InProcessNfvo
from sol013.oauth2 import create_client
from store.base import transaction
from tests.api.conftest import PKGS, Nfvo, NfvoFactory
from tests.support.etsi_schema import validate
from vnfm.nfvo_client import GrantRefused

GRANTS = "/grant/v1/grants"
GRANT_VERSION = "1.7.0"
GRANT_DEFS = (
    "nfv-sol002-sol003/SOL003/VNFLifecycleOperationGranting/definitions/"
    "SOL003VNFLifecycleOperationGranting_def.yaml"
)
SOL003_DEFS = "nfv-sol002-sol003/SOL003/General_Definitions/SOL003_def.yaml"
NAT_VNFD_ID = "6f1b8a52-3c1e-4d7a-9f0e-2b5c8d4a1e01"
FASTPATH_VCPU = 2  # nat_fastpath in the default flavour: 2 vCPU, 1 GiB


def granting(nfvo: Nfvo, client_id: str | None = "granter") -> httpx.Client:
    http = nfvo.client(client_id)
    http.headers["Version"] = GRANT_VERSION
    return http


def onboard_nat(nfvo: Nfvo, csar: Path, *, enable: bool = True) -> str:
    """Onboards the NAT sample (enabled unless told otherwise); returns its vnfdId."""
    admin = nfvo.client("admin")
    info = nfvo.onboard(admin, csar)
    if enable:
        resp = admin.patch(
            f"{PKGS}/{info['id']}",
            json={"operationalState": "ENABLED"},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert resp.status_code == 200, resp.text
    assert info["vnfdId"] == NAT_VNFD_ID
    return NAT_VNFD_ID


def compute(rid: str, vdu: str = "nat_fastpath") -> dict[str, Any]:
    return {"id": rid, "type": "COMPUTE", "vduId": vdu, "resourceTemplateId": vdu}


def instantiate_request(vnfd_id: str = NAT_VNFD_ID, **fields: Any) -> dict[str, Any]:
    """A GrantRequest as a VNFM sends it for InstantiateVnf of the NAT's default flavour."""
    instance, op = str(uuid.uuid4()), str(uuid.uuid4())
    body: dict[str, Any] = {
        "vnfInstanceId": instance,
        "vnfLcmOpOccId": op,
        "vnfdId": vnfd_id,
        "flavourId": "default",
        "operation": "INSTANTIATE",
        "isAutomaticInvocation": False,
        "instantiationLevelId": "small",
        "addResources": [
            compute("fp-0"),
            compute("sp-0", "nat_slowpath"),
            {"id": "vl-punt", "type": "VL", "resourceTemplateId": "nat_punt_vl"},
            {"id": "lp-inside", "type": "LINKPORT", "resourceTemplateId": "nat_inside"},
        ],
        "_links": {
            "vnfLcmOpOcc": {"href": f"http://vnfm.example/vnflcm/v2/vnf_lcm_op_occs/{op}"},
            "vnfInstance": {"href": f"http://vnfm.example/vnflcm/v2/vnf_instances/{instance}"},
        },
    }
    body.update(fields)
    body = {key: value for key, value in body.items() if value is not None}  # None: leave out
    validate(GRANT_DEFS, "GrantRequest", body)
    return body


def assert_rejected(resp: httpx.Response, *says: str) -> str:
    assert resp.status_code == 403, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert "WWW-Authenticate" not in resp.headers  # a rejection, not a missing scope
    problem = resp.json()
    validate(SOL003_DEFS, "ProblemDetails", problem)
    assert problem["status"] == 403
    assert problem["title"] == "Grant rejected"
    for text in says:
        assert text in problem["detail"], problem["detail"]
    return str(problem["detail"])


def stored(nfvo: Nfvo, grant_id: str) -> GrantRow:
    with nfvo.app.state.session_factory() as session:
        row: GrantRow | None = session.get(GrantRow, grant_id)
    assert row is not None
    return row


def poll(http: httpx.Client, url: str, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        resp = http.get(url)
        if resp.status_code != 202:
            return resp
        assert resp.content == b""
        assert time.monotonic() < deadline, "grant still pending"
        time.sleep(0.05)


def test_instantiate_is_granted_synchronously(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    vnfd_id = onboard_nat(nfvo, sample_csars["nat"])
    http = granting(nfvo)
    body = instantiate_request(vnfd_id)
    resp = http.post(GRANTS, json=body)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Version"] == GRANT_VERSION
    grant = resp.json()
    validate(GRANT_DEFS, "Grant", grant)
    assert resp.headers["Location"] == f"{nfvo.url}{GRANTS}/{grant['id']}"
    assert grant["vnfInstanceId"] == body["vnfInstanceId"]
    assert grant["vnfLcmOpOccId"] == body["vnfLcmOpOccId"]
    assert grant["vimConnectionInfo"] == {
        "local": {"vimId": "local", "vimType": "NFVMANO.LOCAL.V_1"}
    }
    assert [g["resourceDefinitionId"] for g in grant["addResources"]] == [
        r["id"] for r in body["addResources"]
    ]
    assert all(g["vimConnectionId"] == "local" for g in grant["addResources"])
    assert grant["_links"] == {
        "self": {"href": resp.headers["Location"]},
        **body["_links"],
    }

    again = http.get(resp.headers["Location"])
    assert again.status_code == 200
    assert again.json() == grant

    row = stored(nfvo, grant["id"])
    assert (row.state, row.operation, row.vnfd_id) == ("GRANTED", "INSTANTIATE", vnfd_id)
    assert row.vnf_lcm_op_occ_id == body["vnfLcmOpOccId"] and not row.is_automatic_invocation
    assert row.request == body and row.decision == grant


def test_asynchronous_mode_on_request(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    vnfd_id = onboard_nat(nfvo, sample_csars["nat"])
    http = granting(nfvo)
    resp = http.post(GRANTS, json=instantiate_request(vnfd_id), headers={"Prefer": "respond-async"})
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    assert resp.headers["Preference-Applied"] == "respond-async"
    location = resp.headers["Location"]
    assert location.startswith(f"{nfvo.url}{GRANTS}/")
    done = poll(http, location)
    assert done.status_code == 200, done.text
    validate(GRANT_DEFS, "Grant", done.json())
    assert done.json()["_links"]["self"]["href"] == location

    # While undecided the resource answers 202 with an empty body.
    pending = nfvo.app.state.grants.accept(
        GrantRequest.model_validate(instantiate_request(vnfd_id)), nfvo.url
    )
    waiting = http.get(f"{GRANTS}/{pending.id}")
    assert waiting.status_code == 202 and waiting.content == b""
    assert waiting.headers["Version"] == GRANT_VERSION


def test_asynchronous_mode_by_setting_and_rejection_on_poll(nfvo_factory: NfvoFactory) -> None:
    nfvo = nfvo_factory(grant_async=True)
    http = granting(nfvo)
    resp = http.post(GRANTS, json=instantiate_request("no-such-vnfd"))
    assert resp.status_code == 202, resp.text
    assert "Preference-Applied" not in resp.headers
    assert_rejected(poll(http, resp.headers["Location"]), "vnfdId no-such-vnfd is unknown")
    grant_id = resp.headers["Location"].rsplit("/", 1)[1]
    assert stored(nfvo, grant_id).state == "REJECTED"


def test_pending_grants_are_decided_at_start_up(nfvo_factory: NfvoFactory) -> None:
    first = nfvo_factory()
    pending = first.app.state.grants.accept(
        GrantRequest.model_validate(instantiate_request("gone")), first.url
    )
    second = nfvo_factory()  # same database: a restart after a crash
    assert_rejected(granting(second).get(f"{GRANTS}/{pending.id}"), "vnfdId gone is unknown")


def test_more_compute_than_the_host_has_is_rejected(
    nfvo: Nfvo, sample_csars: dict[str, Path]
) -> None:
    vnfd_id = onboard_nat(nfvo, sample_csars["nat"])
    settings = nfvo.settings
    cpu_room = (os.cpu_count() or 1) * settings.grant_cpu_allocation_ratio
    count = math.floor(cpu_room / FASTPATH_VCPU) + 1
    body = instantiate_request(
        vnfd_id,
        addResources=[compute(f"fp-{i}") for i in range(count)],
        instantiationLevelId=None,
    )
    resp = granting(nfvo).post(GRANTS, json=body)
    detail = assert_rejected(resp, "free on VIM local")
    cpu = f"not enough CPU: needs {count * FASTPATH_VCPU} vCPU, {cpu_room:g} free on VIM local"
    memory = f"not enough memory: needs {count * 1024} MiB"
    assert detail.startswith(cpu) or detail.startswith(memory), detail
    with nfvo.app.state.session_factory() as session:
        rows = session.query(GrantRow).all()
    assert [(r.state, r.decision["detail"]) for r in rows if r.decision] == [("REJECTED", detail)]


def test_unknown_vnfd_is_rejected(nfvo: Nfvo) -> None:
    resp = granting(nfvo).post(GRANTS, json=instantiate_request("a-vnfd-nobody-onboarded"))
    assert_rejected(resp, "vnfdId a-vnfd-nobody-onboarded is unknown")


def test_disabled_package_is_rejected(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    vnfd_id = onboard_nat(nfvo, sample_csars["nat"], enable=False)
    resp = granting(nfvo).post(GRANTS, json=instantiate_request(vnfd_id))
    assert_rejected(resp, f"of vnfdId {vnfd_id} is DISABLED, not ENABLED")


def test_resources_the_vnfd_lacks_are_rejected(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    vnfd_id = onboard_nat(nfvo, sample_csars["nat"])
    http = granting(nfvo)
    unknown_vdu = instantiate_request(vnfd_id, addResources=[compute("x", "nat_turbo")])
    assert_rejected(
        http.post(GRANTS, json=unknown_vdu),
        "vduId 'nat_turbo' is not a VDU of flavour 'default'",
        "nat_fastpath, nat_slowpath",
    )
    unknown_flavour = instantiate_request(vnfd_id, flavourId="huge")
    assert_rejected(http.post(GRANTS, json=unknown_flavour), "flavourId 'huge' is not a flavour")
    unknown_vl = instantiate_request(
        vnfd_id, addResources=[{"id": "v", "type": "VL", "resourceTemplateId": "nope_vl"}]
    )
    assert_rejected(http.post(GRANTS, json=unknown_vl), "'nope_vl' is not a virtual link")


def test_malformed_requests_are_400(nfvo: Nfvo) -> None:
    http = granting(nfvo)
    extra = {**instantiate_request(), "grantMePlease": True}
    resp = http.post(GRANTS, json=extra)
    assert resp.status_code == 400 and "grantMePlease" in resp.json()["detail"]
    no_links = instantiate_request()
    del no_links["_links"]
    assert http.post(GRANTS, json=no_links).status_code == 400
    nothing = instantiate_request()
    del nothing["addResources"], nothing["instantiationLevelId"]  # SOL003 note 2 wants one
    resp = http.post(GRANTS, json=nothing)
    assert resp.status_code == 400
    assert "needs addResources or instantiationLevelId" in resp.json()["detail"]


def test_scopes_versions_and_unknown_grant(nfvo: Nfvo) -> None:
    with transaction(nfvo.app.state.session_factory) as session:
        nfvo.secrets["grant-reader"] = create_client(session, "grant-reader", ["grant:v1:readonly"])
    body = instantiate_request("whatever")

    anonymous = granting(nfvo, None)
    missing = anonymous.post(GRANTS, json=body)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.get(f"{GRANTS}/x").status_code == 401

    for client_id in ("admin", "stranger"):  # package management, LCM: not granting
        other = granting(nfvo, client_id)
        refused = other.post(GRANTS, json=body)
        assert refused.status_code == 403
        assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
        assert other.get(f"{GRANTS}/x").status_code == 403

    reader = granting(nfvo, "grant-reader")
    assert reader.post(GRANTS, json=body).status_code == 403
    unknown = reader.get(f"{GRANTS}/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert unknown.headers["Content-Type"].startswith("application/problem+json")
    assert granting(nfvo).get(f"{GRANTS}/nope").status_code == 404

    versions = anonymous.get("/grant/v1/api_versions")
    assert versions.status_code == 200
    assert versions.json() == {"uriPrefix": "/grant/v1", "apiVersions": [{"version": "1.7.0"}]}
    assert anonymous.get("/grant/api_versions").json()["uriPrefix"] == "/grant/v1"
    wrong = granting(nfvo).get(f"{GRANTS}/x", headers={"Version": "2.4.0"})
    assert wrong.status_code == 406 and wrong.headers["Version"] == GRANT_VERSION


@pytest.mark.parametrize("operation", ["TERMINATE", "SCALE"])
def test_other_operations_on_a_disabled_package(
    nfvo: Nfvo, sample_csars: dict[str, Path], operation: str
) -> None:
    """A disabled package only stops new instances; existing ones can still be changed."""
    vnfd_id = onboard_nat(nfvo, sample_csars["nat"], enable=False)
    body = instantiate_request(
        vnfd_id, operation=operation, flavourId=None, instantiationLevelId=None
    )
    if operation == "TERMINATE":
        body["removeResources"] = body.pop("addResources")
    else:
        body["addResources"] = [compute("fp-1")]
    resp = granting(nfvo).post(GRANTS, json=body)
    assert resp.status_code == 201, resp.text
    grant = resp.json()
    validate(GRANT_DEFS, "Grant", grant)
    listed = "removeResources" if operation == "TERMINATE" else "addResources"
    assert len(grant[listed]) == len(body[listed])


def test_grants_use_the_local_vim_inventory_when_configured(
    nfvo_factory: NfvoFactory, sample_csars: dict[str, Path], tmp_path: Path
) -> None:
    # Needs root and the CNI plugins, as the whole suite does (make test installs them).
    nfvo = nfvo_factory(local_vim_state_dir=tmp_path / "vim", grant_cpu_allocation_ratio=1.0)
    vnfd_id = onboard_nat(nfvo, sample_csars["nat"])
    cores = os.cpu_count() or 1
    too_many = [compute(f"fp-{i}") for i in range(cores // FASTPATH_VCPU + 1)]
    resp = granting(nfvo).post(
        GRANTS,
        json=instantiate_request(vnfd_id, addResources=too_many, instantiationLevelId=None),
    )
    assert_rejected(resp, f"{cores} free on VIM local ({cores} vCPU, 0 allocated)")


def test_in_process_nfvo_grants_for_the_vnfm(nfvo: Nfvo, sample_csars: dict[str, Path]) -> None:
    """The VNFM's in-process NfvoClient gets the same decisions as the HTTP API gives."""
    vnfd_id = onboard_nat(nfvo, sample_csars["nat"])
    link = InProcessNfvo(nfvo.app.state.session_factory, nfvo.app.state.grants, nfvo.url)
    package = link.package_for_vnfd(vnfd_id)
    assert package is not None and package.operational_state == "ENABLED"
    assert link.vnfd(vnfd_id).vnf_product_name == "NAT"
    grant = link.request_grant(instantiate_request())
    validate(GRANT_DEFS, "Grant", grant)
    assert grant["_links"]["self"]["href"].startswith(nfvo.url)
    with pytest.raises(GrantRefused) as refused:
        link.request_grant(instantiate_request(flavourId="no-such-flavour"))
    assert "no-such-flavour" in refused.value.detail
    assert link.package_for_vnfd("unknown") is None
    with pytest.raises(KeyError):
        link.vnfd("unknown")
