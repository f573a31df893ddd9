"""The grant of a CHANGE_FLAVOUR: what it adds is sized by the new flavour, what it removes by
the flavour the VNFM says the instance leaves (``additionalParams.currentFlavourId``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from descriptors.tosca import parse_vnfd
from descriptors.vnfd import Vnfd
from nfvo.grant.placement import (
    CURRENT_FLAVOUR_PARAM,
    GrantRejected,
    VimChoice,
    current_resources,
    decide,
    vnfd_resources,
)
from nfvo.grant.schemas import GrantRequest
from vim_adapters.interface import Inventory

NAT = Path(__file__).resolve().parents[3] / "descriptors" / "packages" / "nat"
VIM = VimChoice(
    connection_id="local", vim_id="local", vim_type="NFVMANO.LOCAL.V_1", single_host=True
)


@pytest.fixture(scope="module")
def nat() -> Vnfd:
    return parse_vnfd(NAT, "Definitions/nat_vnfd_top.yaml")


def _compute(rid: str, vdu: str, *, existing: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"id": rid, "type": "COMPUTE", "vduId": vdu, "resourceTemplateId": vdu}
    if existing:
        body["resource"] = {"vimConnectionId": "local", "resourceId": rid}
    return body


def _to_large(nat: Vnfd, **params: Any) -> GrantRequest:
    """default/small (1 fast path of 2 vCPU, 1 slow path) -> large/medium (2 of 4 vCPU)."""
    return GrantRequest.model_validate(
        {
            "vnfInstanceId": "inst-1",
            "vnfLcmOpOccId": "op-1",
            "vnfdId": nat.vnfd_id,
            "flavourId": "large",
            "operation": "CHANGE_FLAVOUR",
            "isAutomaticInvocation": False,
            "addResources": [
                _compute("new-fast-0", "nat_fastpath"),
                _compute("new-fast-1", "nat_fastpath"),
                _compute("new-slow-0", "nat_slowpath"),
            ],
            "removeResources": [
                _compute("fast-0", "nat_fastpath", existing=True),
                _compute("slow-0", "nat_slowpath", existing=True),
            ],
            "_links": {
                "vnfLcmOpOcc": {"href": "http://vnfm.example/op-1"},
                "vnfInstance": {"href": "http://vnfm.example/inst-1"},
            },
            **({"additionalParams": params} if params else {}),
        }
    )


def _inventory(cpu_free: float) -> Inventory:
    return Inventory(
        vim_type="local",
        cpu_total=cpu_free,
        cpu_allocated=0.0,
        memory_mib_total=65536,
        memory_mib_allocated=0,
        networks=0,
        replicas=0,
    )


def _decide(nat: Vnfd, request: GrantRequest, cpu_free: float) -> None:
    decide(
        request,
        grant_id="g1",
        self_href="http://nfvo.example/grant/v1/grants/g1",
        target=vnfd_resources(nat, request.flavourId),
        current=current_resources(nat, request),
        inventory=_inventory(cpu_free),
        vim=VIM,
    )


def test_the_new_demand_is_net_of_the_old_flavour(nat: Vnfd) -> None:
    request = _to_large(nat, **{CURRENT_FLAVOUR_PARAM: "default"})
    # Adds 2 x 4 + 1 vCPU, removes 2 + 1: needs 6.
    _decide(nat, request, cpu_free=6.0)
    with pytest.raises(GrantRejected) as rejected:
        _decide(nat, request, cpu_free=5.5)
    assert "needs 6 vCPU" in rejected.value.detail


def test_without_the_current_flavour_removals_count_at_their_largest(nat: Vnfd) -> None:
    # Each VDU at its largest over both flavours: the fast path removed counts 4 vCPU.
    _decide(nat, _to_large(nat), cpu_free=4.0)
    unknown = _to_large(nat, **{CURRENT_FLAVOUR_PARAM: "tiny"})
    assert current_resources(nat, unknown).flavour_id is None
