"""Modify VNF information (PATCH /vnf_instances/{id}, MODIFY_INFO) over real HTTP (root).

Occurrences are run by the worker's own code (`vnfm.worker.run_operation`, the function the
Celery task calls) on a thread of the test process, with a real executor on a local VIM for
the instantiations. `LcmRunner` is not used here: it always asks for a grant, and SOL003
grants no MODIFY_INFO.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from descriptors.build import build_csar
from nfvo.vnfm_link import InProcessNfvo
from tests.api.conftest import PKGS, SAMPLES, Nfvo
from tests.api.test_vnflcm_tasks import (
    INSTANCES,
    LCM_DEFS,
    LCM_NOTIFICATION_DEFS,
    OP_OCCS,
    TASK_LINKS,
    checked,
)
from tests.support.callback_server import running_consumer
from tests.support.etsi_schema import validate
from tests.support.lcm_runner import RunnableNfvo
from tests.support.local_vim import local_vim
from vim_adapters.local.adapter import LocalVim
from vnfm.executor import Executor
from vnfm.schemas import API_VERSION, VnfInstance
from vnfm.worker import WorkerServices, rollback_operation, run_operation

NAT_VNFD_ID = "6f1b8a52-3c1e-4d7a-9f0e-2b5c8d4a1e01"
MERGE_PATCH = "application/merge-patch+json"
FINAL = ("COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK")


class WorkerDispatch:
    """A ``Dispatch`` that runs each occurrence with `vnfm.worker` on its own thread."""

    def __init__(self, services: WorkerServices) -> None:
        self.services = services
        self.calls: list[tuple[str, str]] = []
        self._threads: list[threading.Thread] = []
        self._gate = threading.Event()
        self._gate.set()

    def __call__(self, op_id: str, kind: str) -> None:
        self.calls.append((op_id, kind))
        work = rollback_operation if kind == "rollback" else run_operation
        thread = threading.Thread(
            target=self._run, args=(work, op_id), name=f"worker-{op_id[:8]}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _run(self, work: Any, op_id: str) -> None:
        self._gate.wait()
        work(op_id, self.services)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Occurrences dispatched inside the block start only when it ends."""
        self._gate.clear()
        try:
            yield
        finally:
            self._gate.set()

    def join(self, timeout: float = 120.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
            assert not thread.is_alive(), f"{thread.name} is still running"


@dataclass
class ModifyLab:
    nfvo: Nfvo
    vim: LocalVim
    dispatch: WorkerDispatch
    lcm: httpx.Client
    admin: httpx.Client
    nat: dict[str, Any]
    """The NAT sample package (PackageInfo JSON)."""

    def create(self, **fields: Any) -> str:
        resp = self.lcm.post(INSTANCES, json={"vnfdId": self.nat["vnfdId"], **fields})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def read(self, instance_id: str) -> tuple[dict[str, Any], str]:
        """The instance (valid as the ETSI schema says) and its ETag."""
        resp = self.lcm.get(f"{INSTANCES}/{instance_id}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        VnfInstance.model_validate(body)
        validate(LCM_DEFS, "VnfInstance", body)
        return body, resp.headers["ETag"]

    def patch(
        self,
        instance_id: str,
        body: dict[str, Any],
        *,
        if_match: str | None = None,
        content_type: str = MERGE_PATCH,
    ) -> httpx.Response:
        headers = {"Content-Type": content_type}
        if if_match is not None:
            headers["If-Match"] = if_match
        return self.lcm.patch(
            f"{INSTANCES}/{instance_id}", content=json.dumps(body), headers=headers
        )

    def accepted(self, resp: httpx.Response) -> str:
        assert resp.status_code == 202, resp.text
        assert resp.content == b""
        return resp.headers["Location"].rsplit("/", 1)[1]

    def wait(self, op_id: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            occ = checked(self.lcm.get(f"{OP_OCCS}/{op_id}").json())
            if occ["operationState"] in FINAL:
                return occ
            assert time.monotonic() < deadline, f"{op_id} stuck in {occ['operationState']}"
            time.sleep(0.05)

    def modify(self, instance_id: str, body: dict[str, Any], **options: Any) -> dict[str, Any]:
        """A PATCH that must complete: its final occurrence."""
        occ = self.wait(self.accepted(self.patch(instance_id, body, **options)))
        assert occ["operationState"] == "COMPLETED", occ.get("error")
        return occ

    def task(self, instance_id: str, task: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.lcm.post(f"{INSTANCES}/{instance_id}/{task}", json=body)
        occ = self.wait(self.accepted(resp))
        assert occ["operationState"] == "COMPLETED", occ.get("error")
        return occ

    def onboard(self, csar: Path, *, enable: bool = True) -> dict[str, Any]:
        info = self.nfvo.onboard(self.admin, csar)
        if enable:
            self.admin.patch(f"{PKGS}/{info['id']}", json={"operationalState": "ENABLED"})
        return info

    def usage(self, package: dict[str, Any]) -> str:
        return str(self.admin.get(f"{PKGS}/{package['id']}").json()["usageState"])


def nat_copy(tmp: Path, *, rename: tuple[str, str] | None = None) -> tuple[Path, str]:
    """The NAT package under a new vnfdId (and with `rename` applied to its VNFD), as a CSAR."""
    vnfd_id = str(uuid.uuid4())
    tree = tmp / f"nat-{vnfd_id[:8]}"
    shutil.copytree(SAMPLES / "nat", tree)
    for path in (tree / "Definitions").glob("*.yaml"):
        text = path.read_text().replace(NAT_VNFD_ID, vnfd_id)
        if rename is not None:
            text = text.replace(*rename)
        path.write_text(text)
    return build_csar(tree, tmp / f"{tree.name}.csar"), vnfd_id


@contextlib.contextmanager
def modify_lab(
    nfvo: Nfvo, nat_csar: Path, vim_dir: Path, *, through_registry: bool = False
) -> Iterator[ModifyLab]:
    """The NAT package onboarded and enabled, and a worker on a local VIM; with
    `through_registry` the executor resolves each instance's VIM through the NFVO's VIM
    registry (the local VIM is its default)."""
    admin = nfvo.client()
    info = nfvo.onboard(admin, nat_csar)
    admin.patch(f"{PKGS}/{info['id']}", json={"operationalState": "ENABLED"})
    app = nfvo.app
    with local_vim(vim_dir) as vim:
        client = RunnableNfvo(InProcessNfvo(app.state.session_factory, app.state.grants, nfvo.url))
        vims = app.state.vims if through_registry else None
        services = WorkerServices(
            occurrences=app.state.occurrences,
            executor=Executor(vim, client, ready_timeout=60.0, api_root=nfvo.url, vims=vims),
            nfvo=client,
            worker_id=f"modify-test-{uuid.uuid4()}",
            lease_seconds=300.0,
            heartbeat_seconds=1.0,
        )
        dispatch = WorkerDispatch(services)
        app.state.dispatch = dispatch
        lcm = nfvo.client("lcm", version=API_VERSION)
        yield ModifyLab(nfvo, vim, dispatch, lcm, admin, info)
        dispatch.join()
        assert vim.leaks() == []


@pytest.fixture
def lab(nfvo: Nfvo, sample_csars: dict[str, Path], tmp_path: Path) -> Iterator[ModifyLab]:
    with modify_lab(nfvo, sample_csars["nat"], tmp_path / "vim") as made:
        yield made


def test_modify_a_not_instantiated_instance(lab: ModifyLab, sample_csars: dict[str, Path]) -> None:
    instance_id = lab.create(
        vnfInstanceName="edge", metadata={"site": "lab", "rack": {"row": 1, "slot": 2}}
    )
    before, etag = lab.read(instance_id)
    patch = {
        "vnfInstanceName": "edge-2",
        "vnfInstanceDescription": "NAT at the edge",
        "metadata": {"rack": {"slot": None, "unit": 7}, "owner": "ops"},
        "extensions": {"public_pool_cidr": "203.0.113.64/26"},
        "vnfConfigurableProperties": {
            "additional_configurable_properties": {"flow_idle_timeout": "60 s"}
        },
        "vimConnectionInfo": {"edge": {"vimId": "lab", "vimType": "NFVMANO.LOCAL.V_1"}},
    }
    with running_consumer() as consumer:
        sub = lab.lcm.post(
            "/vnflcm/v2/subscriptions",
            json={
                "callbackUri": f"{consumer.url}/lcm",
                "filter": {"operationTypes": ["MODIFY_INFO"]},
            },
        )
        assert sub.status_code == 201, sub.text
        occ = lab.modify(instance_id, patch, if_match=etag)
        posts = consumer.wait_posts(3)
    assert occ["operation"] == "MODIFY_INFO" and occ["vnfInstanceId"] == instance_id
    assert "grantId" not in occ, "SOL003 grants no MODIFY_INFO"
    assert occ["operationParams"] == patch, "the patch as sent, its nulls included"
    assert set(occ["_links"]) & TASK_LINKS == set()
    assert occ["changedInfo"] == patch
    states = set()
    for post in posts:
        validate(LCM_NOTIFICATION_DEFS, post.body["notificationType"], post.body)
        states.add((post.body["operationState"], post.body["notificationStatus"]))
        if post.body["operationState"] == "COMPLETED":
            assert post.body["changedInfo"] == patch
    assert states == {("STARTING", "START"), ("PROCESSING", "START"), ("COMPLETED", "RESULT")}

    after, new_etag = lab.read(instance_id)
    assert new_etag != etag
    assert after["vnfInstanceName"] == "edge-2"
    assert after["vnfInstanceDescription"] == "NAT at the edge"
    assert after["metadata"] == {"site": "lab", "rack": {"row": 1, "unit": 7}, "owner": "ops"}
    assert after["extensions"]["public_pool_cidr"] == "203.0.113.64/26"
    extra = after["vnfConfigurableProperties"]["additional_configurable_properties"]
    assert extra["flow_idle_timeout"] == "60 s"
    assert (
        extra["public_pool"]
        == (
            before["vnfConfigurableProperties"]["additional_configurable_properties"]["public_pool"]
        )
    )
    assert after["vimConnectionInfo"] == patch["vimConnectionInfo"]
    # The old ETag no longer matches.
    stale = lab.patch(instance_id, {"vnfInstanceName": "x"}, if_match=etag)
    assert stale.status_code == 412 and "ETag" in stale.json()["detail"]

    # Plain JSON is accepted too; null removes.
    occ = lab.modify(
        instance_id,
        {
            "vnfInstanceDescription": None,
            "metadata": {"owner": None},
            "vimConnectionInfo": {"edge": None},
        },
        content_type="application/json",
    )
    assert occ["changedInfo"] == {"metadata": {"owner": None}}
    after, _ = lab.read(instance_id)
    assert "vnfInstanceDescription" not in after and "vimConnectionInfo" not in after
    assert after["metadata"] == {"site": "lab", "rack": {"row": 1, "unit": 7}}

    # Another package (any ENABLED one while NOT_INSTANTIATED); usage states follow.
    slb = lab.onboard(sample_csars["slb"])
    occ = lab.modify(instance_id, {"vnfdId": slb["vnfdId"]})
    assert occ["changedInfo"]["vnfdId"] == slb["vnfdId"]
    assert occ["changedInfo"]["vnfProductName"] == slb["vnfProductName"]
    after, _ = lab.read(instance_id)
    assert after["vnfdId"] == slb["vnfdId"] and after["vnfProductName"] == slb["vnfProductName"]
    assert lab.usage(slb) == "IN_USE" and lab.usage(lab.nat) == "NOT_IN_USE"
    # Nothing to change is still an operation, with nothing in changedInfo.
    occ = lab.modify(instance_id, {"vnfdId": slb["vnfdId"]})
    assert "changedInfo" not in occ
    assert lab.lcm.delete(f"{INSTANCES}/{instance_id}").status_code == 204


def test_refused_modifications(lab: ModifyLab, sample_csars: dict[str, Path]) -> None:
    instance_id = lab.create()
    _, etag = lab.read(instance_id)
    unknown = lab.patch("no-such-instance", {"vnfInstanceName": "x"})
    assert unknown.status_code == 404
    wrong_type = lab.patch(instance_id, {"vnfInstanceName": "x"}, content_type="text/plain")
    assert wrong_type.status_code == 415
    for body, status, says in (
        ({"vnfInstanceNam": "x"}, 400, "vnfInstanceNam"),
        ({"vnfdId": None}, 400, "vnfdId"),
        ({"metadata": ["not", "an", "object"]}, 400, "metadata"),
        ({"vimConnectionInfo": {"x": {"vimId": "lab"}}}, 400, "vimType"),
        ({"vnfcInfoModifications": [{"id": "v", "vnfcConfigurableProperties": {}}]}, 422, "vnfc"),
        ({"vnfdId": "no-such-vnfd"}, 422, "no-such-vnfd"),
    ):
        refused = lab.patch(instance_id, body)
        assert refused.status_code == status, (body, refused.text)
        assert says in refused.json()["detail"], refused.json()
    disabled = lab.onboard(sample_csars["vpn"], enable=False)
    refused = lab.patch(instance_id, {"vnfdId": disabled["vnfdId"]})
    assert refused.status_code == 422 and "DISABLED" in refused.json()["detail"]
    mismatch = lab.patch(instance_id, {"vnfInstanceName": "x"}, if_match='"not-the-etag"')
    assert mismatch.status_code == 412
    reader = lab.nfvo.client("lcm-reader", version=API_VERSION)
    assert reader.patch(f"{INSTANCES}/{instance_id}", json={}).status_code == 403
    assert lab.dispatch.calls == []

    # One operation at a time: a second PATCH while the first is held back gets 409.
    with lab.dispatch.hold():
        op_id = lab.accepted(lab.patch(instance_id, {"vnfInstanceName": "first"}, if_match=etag))
        busy = lab.patch(instance_id, {"vnfInstanceName": "second"})
        assert busy.status_code == 409 and op_id in busy.json()["detail"]
    assert lab.wait(op_id)["operationState"] == "COMPLETED"
    assert lab.read(instance_id)[0]["vnfInstanceName"] == "first"
    ops = lab.lcm.get(OP_OCCS, params={"filter": f"(eq,vnfInstanceId,{instance_id})"}).json()
    assert [o["id"] for o in ops] == [op_id]


def test_modify_an_instantiated_instance(
    lab: ModifyLab, sample_csars: dict[str, Path], tmp_path: Path
) -> None:
    instance_id = lab.create()
    lab.task(instance_id, "instantiate", {"flavourId": "large"})
    info_before = lab.read(instance_id)[0]["instantiatedVnfInfo"]

    # The NAT VNFD's additional configurable properties are not writable once instantiated.
    locked = lab.patch(
        instance_id,
        {"vnfConfigurableProperties": {"additional_configurable_properties": {"x": 1}}},
    )
    assert locked.status_code == 409 and "is_writable_anytime" in locked.json()["detail"]
    occ = lab.modify(instance_id, {"vnfConfigurableProperties": {"is_autoscale_enabled": False}})
    assert occ["changedInfo"] == {"vnfConfigurableProperties": {"is_autoscale_enabled": False}}

    # vnfdId: only to a VNFD that has the instance's flavour, with the same VDUs and links.
    slb = lab.onboard(sample_csars["slb"])
    no_flavour = lab.patch(instance_id, {"vnfdId": slb["vnfdId"]})
    assert no_flavour.status_code == 409
    assert "'large'" in no_flavour.json()["detail"] and "vnfdId" in no_flavour.json()["detail"]
    renamed_csar, _ = nat_copy(tmp_path, rename=("nat_slowpath", "nat_control"))
    renamed = lab.onboard(renamed_csar)
    other_vdus = lab.patch(instance_id, {"vnfdId": renamed["vnfdId"]})
    assert other_vdus.status_code == 409
    assert "nat_control" in other_vdus.json()["detail"]
    copy_csar, copy_vnfd_id = nat_copy(tmp_path)
    copy = lab.onboard(copy_csar)
    occ = lab.modify(instance_id, {"vnfdId": copy_vnfd_id})
    assert occ["changedInfo"] == {"vnfdId": copy_vnfd_id}
    after, _ = lab.read(instance_id)
    assert after["vnfdId"] == copy_vnfd_id
    assert after["instantiatedVnfInfo"] == info_before, "nothing changed on the VIM"
    assert lab.usage(copy) == "IN_USE" and lab.usage(lab.nat) == "NOT_IN_USE"

    # Later operations read the instance through its new VNFD.
    lab.task(instance_id, "terminate", {"terminationType": "FORCEFUL"})
    assert lab.vim.list_owned(instance_id) == []
