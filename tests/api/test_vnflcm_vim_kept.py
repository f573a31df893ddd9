"""An INSTANTIATED instance keeps the VIM its resources are on (PATCH and CHANGE_EXT_CONN).

Over real HTTP with a real worker run (`vnfm.worker.run_operation` on a thread, as in
test_vnflcm_modify.py) and an executor that resolves VIMs through the NFVO's registry, so the
instance's resources are on the VIM connection its InstantiateVnfRequest named. Needs root
(the local VIM).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Nfvo
from tests.api.test_vnflcm_modify import ModifyLab, modify_lab
from tests.api.test_vnflcm_tasks import INSTANCES, OP_OCCS

LOCAL = "NFVMANO.LOCAL.V_1"
# The registry's default VIM: the executor's own local VIM (`Executor`, vims=...).
ON_DEFAULT = {"vimId": "local", "vimType": LOCAL}
ELSEWHERE = {"vimId": "vim-elsewhere", "vimType": LOCAL}


@pytest.fixture
def lab(nfvo: Nfvo, sample_csars: dict[str, Path], tmp_path: Path) -> Iterator[ModifyLab]:
    with modify_lab(nfvo, sample_csars["nat"], tmp_path / "vim", through_registry=True) as made:
        yield made


def _operations(lab: ModifyLab, instance_id: str) -> list[str]:
    ops = lab.lcm.get(OP_OCCS, params={"filter": f"(eq,vnfInstanceId,{instance_id})"}).json()
    return [str(op["operation"]) for op in ops]


def _handles(instance: dict[str, Any]) -> set[str]:
    info = instance["instantiatedVnfInfo"]
    return {vnfc["computeResource"]["vimConnectionId"] for vnfc in info["vnfcResourceInfo"]}


def test_the_vim_of_an_instantiated_instance_is_kept(lab: ModifyLab) -> None:
    instance_id = lab.create()
    lab.task(
        instance_id,
        "instantiate",
        {"flavourId": "default", "vimConnectionInfo": {"edge": ON_DEFAULT}},
    )
    before, etag = lab.read(instance_id)
    assert before["vimConnectionInfo"] == {"edge": ON_DEFAULT}
    assert _handles(before) == {"edge"}

    refusals: list[tuple[dict[str, Any], str]] = [
        ({"edge": ELSEWHERE}, "vimConnectionInfo.edge.vimId"),
        ({"edge": {"vimId": None, "vimType": LOCAL}}, "vimConnectionInfo.edge.vimId"),
        ({"edge": None}, "vimConnectionInfo.edge:"),
        ({"spare": ELSEWHERE, "edge": None}, "vimConnectionInfo.edge:"),
    ]
    for connections, field in refusals:
        refused = lab.patch(instance_id, {"vimConnectionInfo": connections}, if_match=etag)
        assert refused.status_code == 409, (connections, refused.text)
        problem = refused.json()
        assert problem["status"] == 409 and field in problem["detail"], problem
        assert "VIM local" in problem["detail"]
    # CHANGE_EXT_CONN merges its vimConnectionInfo the same way: refused before it starts.
    moved = lab.lcm.post(
        f"{INSTANCES}/{instance_id}/change_ext_conn",
        json={
            "extVirtualLinks": [
                {"id": "m", "resourceId": "no-such-net", "extCps": [{"cpdId": "nat_mgmt"}]}
            ],
            "vimConnectionInfo": {"edge": ELSEWHERE},
        },
    )
    assert moved.status_code == 409 and "vimConnectionInfo.edge.vimId" in moved.json()["detail"]
    # Nothing changed and nothing started.
    assert lab.read(instance_id) == (before, etag)
    assert _operations(lab, instance_id) == ["INSTANTIATE"]

    # The connection's other attributes, and other connections, may change.
    refreshed = {**ON_DEFAULT, "extra": {"rack": "r1"}}
    occ = lab.modify(instance_id, {"vimConnectionInfo": {"edge": refreshed, "spare": ELSEWHERE}})
    assert occ["changedInfo"] == {"vimConnectionInfo": {"edge": refreshed, "spare": ELSEWHERE}}
    lab.modify(instance_id, {"vimConnectionInfo": {"spare": None}})
    after, _ = lab.read(instance_id)
    assert after["vimConnectionInfo"] == {"edge": refreshed}

    # Later operations still find the resources (on the VIM they are on), and once the
    # instance is NOT_INSTANTIATED its connection may name another VIM.
    lab.task(instance_id, "terminate", {"terminationType": "FORCEFUL"})
    assert lab.vim.list_owned(instance_id) == []
    lab.modify(instance_id, {"vimConnectionInfo": {"edge": ELSEWHERE}})
    assert lab.read(instance_id)[0]["vimConnectionInfo"] == {"edge": {**refreshed, **ELSEWHERE}}
    # MODIFY_INFO needs no VIM: a connection naming an unregistered VIM can still go.
    lab.modify(instance_id, {"vimConnectionInfo": {"edge": None}})
    assert (
        "vimConnectionInfo" not in lab.read(instance_id)[0]
        or not lab.read(instance_id)[0]["vimConnectionInfo"]
    )
