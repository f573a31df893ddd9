"""`modify_info.check_vim_kept`: an INSTANTIATED instance keeps the VIM its resources are on."""

from __future__ import annotations

from typing import Any

import pytest

from vnfm.models import VnfInstanceRow
from vnfm.modify_info import ModificationRefused, check_vim_kept

LOCAL = "NFVMANO.LOCAL.V_1"
EDGE = {"vimId": "vim-a", "vimType": LOCAL, "extra": {"zone": "a"}}


def _instance(
    connections: dict[str, Any], *, on: str | None, state: str = "INSTANTIATED"
) -> VnfInstanceRow:
    """An instance whose resources' handles name connection `on` (None: no resources)."""
    handle = {"vimConnectionId": on, "resourceId": "r"} if on is not None else None
    info = None
    if state == "INSTANTIATED":
        info = {
            "flavourId": "default",
            "vnfState": "STARTED",
            "vnfcResourceInfo": [{"id": "c1", "computeResource": handle}] if handle else [],
            "vnfVirtualLinkResourceInfo": [{"id": "l1", "networkResource": handle}]
            if handle
            else [],
        }
    return VnfInstanceRow(
        id="i-1",
        instantiation_state=state,
        instantiated_info=info,
        vim_connection_info=connections,
    )


def _refused(connections: dict[str, Any], instance: VnfInstanceRow) -> str:
    with pytest.raises(ModificationRefused) as refused:
        check_vim_kept(connections, instance)
    assert refused.value.status == 409
    return refused.value.detail


def test_another_vim_for_the_resources_connection_is_refused() -> None:
    instance = _instance({"edge": EDGE}, on="edge")
    detail = _refused({"edge": {"vimId": "vim-b", "vimType": LOCAL}}, instance)
    assert detail.startswith("vimConnectionInfo.edge.vimId:")
    assert "VIM vim-a" in detail and "VIM vim-b" in detail
    assert "no VIM" in _refused({"edge": {"vimId": None, "vimType": LOCAL}}, instance)
    removed = _refused({"edge": None}, instance)
    assert removed.startswith("vimConnectionInfo.edge:") and "removed" in removed
    assert instance.vim_connection_info == {"edge": EDGE}, "the check changes nothing"


def test_the_connection_is_found_as_later_operations_find_it() -> None:
    # No resource handles: the only connection is the one operations use.
    alone = _instance({"edge": EDGE}, on=None)
    assert "edge.vimId" in _refused({"edge": {"vimId": "vim-b", "vimType": LOCAL}}, alone)
    # Resources on "edge" while "spare" names another VIM: only "edge" is held.
    two = _instance({"edge": EDGE, "spare": {"vimId": "vim-b", "vimType": LOCAL}}, on="edge")
    check_vim_kept({"spare": {"vimId": "vim-c", "vimType": LOCAL}}, two)
    check_vim_kept({"spare": None}, two)
    assert "edge" in _refused({"edge": None, "spare": None}, two)


def test_the_resources_connection_may_change_otherwise() -> None:
    instance = _instance({"edge": EDGE}, on="edge")
    check_vim_kept({"edge": {"vimType": LOCAL, "extra": {"zone": "b"}}}, instance)
    check_vim_kept(
        {"edge": {"vimId": "vim-a", "vimType": LOCAL, "accessInfo": {"k": "v"}}}, instance
    )
    check_vim_kept({"new": {"vimId": "vim-b", "vimType": LOCAL}}, instance)
    check_vim_kept({}, instance)
    check_vim_kept(None, instance)


def test_an_instance_on_the_default_vim() -> None:
    instance = _instance({}, on="local")
    detail = _refused({"local": {"vimId": "vim-b", "vimType": LOCAL}}, instance)
    assert detail.startswith("vimConnectionInfo.local:") and "default VIM" in detail
    check_vim_kept({"local": None}, instance)  # nothing to remove
    check_vim_kept({"edge": {"vimId": "vim-b", "vimType": LOCAL}}, instance)


def test_not_instantiated_instances_change_freely() -> None:
    instance = _instance({"edge": EDGE}, on=None, state="NOT_INSTANTIATED")
    check_vim_kept({"edge": {"vimId": "vim-b", "vimType": LOCAL}}, instance)
    check_vim_kept({"edge": None}, instance)
