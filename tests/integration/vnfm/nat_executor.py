"""The NAT sample VNF as the executor tests drive it: its VNFD, an NFVO stand-in, checks.

The VNFD is the NAT sample package's, parsed from descriptors/packages/nat.
"""

from __future__ import annotations

import functools
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from descriptors.tosca import parse_vnfd
from descriptors.vnfd import Vnfd
from nfvo.grant.placement import VimChoice, decide, vnfd_resources
from nfvo.grant.schemas import GrantRequest
from tests.support.etsi_schema import validate
from vim_adapters.interface import Inventory, ReplicaState
from vim_adapters.local.adapter import LocalVim
from vnfm import planner
from vnfm.executor import OperationContext, OperationResult
from vnfm.nfvo_client import PackageInfo
from vnfm.schemas import InstantiatedVnfInfo, VnfInstance

REPO = Path(__file__).resolve().parents[3]
NAT_PACKAGE = REPO / "descriptors" / "packages" / "nat"
NAT_VNFD_ID = "6f1b8a52-3c1e-4d7a-9f0e-2b5c8d4a1e01"
SOL003 = "nfv-sol002-sol003/SOL003"
LCM_DEFS = f"{SOL003}/VNFLifecycleManagement/definitions/SOL003VNFLifecycleManagement_def.yaml"
GRANT_DEFS = (
    f"{SOL003}/VNFLifecycleOperationGranting/definitions/"
    "SOL003VNFLifecycleOperationGranting_def.yaml"
)
API_ROOT = "http://vnfm.example"
SERVER_PORT = 8080
NAT_LINKS = ("nat_inside_vl", "nat_outside_vl", "nat_punt_vl", "nat_mgmt_vl")


@functools.cache
def nat_vnfd() -> Vnfd:
    """The NAT VNFD with runnable VDU commands.

    Its VDUs run `python -m vnfs.nat.fastpath` / `slowpath`, which do not exist yet, so
    this copy runs an HTTP server instead; everything else is the package's own VNFD.
    """
    parsed = parse_vnfd(NAT_PACKAGE, "Definitions/nat_vnfd_top.yaml")
    assert parsed.vnfd_id == NAT_VNFD_ID
    command = [sys.executable, "-m", "http.server", "--bind", "0.0.0.0", str(SERVER_PORT)]
    flavours = [
        flavour.model_copy(
            update={"vdus": [vdu.model_copy(update={"command": command}) for vdu in flavour.vdus]}
        )
        for flavour in parsed.flavours
    ]
    return parsed.model_copy(update={"flavours": flavours})


class PackagesOnDisk:
    """An NfvoClient serving the sample packages' VNFDs from the source tree (no NFVO needed)."""

    def package_for_vnfd(self, vnfd_id: str) -> PackageInfo | None:
        if vnfd_id != NAT_VNFD_ID:
            return None
        vnfd = nat_vnfd()
        return PackageInfo(
            vnf_pkg_id="nat-on-disk",
            vnfd_id=vnfd.vnfd_id,
            vnf_provider=vnfd.vnf_provider,
            vnf_product_name=vnfd.vnf_product_name,
            vnf_software_version=vnfd.vnf_software_version,
            vnfd_version=vnfd.vnfd_version,
            onboarding_state="ONBOARDED",
            operational_state="ENABLED",
        )

    def vnfd(self, vnfd_id: str) -> Vnfd:
        if vnfd_id != NAT_VNFD_ID:
            raise KeyError(vnfd_id)
        return nat_vnfd()

    def request_grant(self, grant_request: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("the executor must not send grant requests; its caller does")

    def instances_changed(self, vnfd_id: str, count: int) -> None:
        pass


class Instance:
    """One VNF instance's current values, as the caller of the executor would store them."""

    def __init__(self) -> None:
        self.id = str(uuid.uuid4())
        self.flavour_id: str | None = None
        self.scale_levels: dict[str, int] = {}
        self.level_id: str | None = None
        self.vnf_state: str | None = None
        self.ext_links: list[dict[str, Any]] = []

    def ctx(self, operation: str, params: dict[str, Any], **fields: Any) -> OperationContext:
        return OperationContext(
            op_id=fields.pop("op_id", str(uuid.uuid4())),
            operation=operation,
            vnf_instance_id=self.id,
            vnfd_id=NAT_VNFD_ID,
            params=params,
            flavour_id=self.flavour_id,
            scale_levels=dict(self.scale_levels),
            instantiation_level_id=self.level_id,
            vnf_state=self.vnf_state,
            ext_virtual_links=[dict(link) for link in self.ext_links],
            **fields,
        )

    def apply(self, result: OperationResult) -> None:
        self.flavour_id = result.flavour_id
        self.scale_levels = dict(result.scale_levels)
        if result.instantiation_level_id is not None:
            self.level_id = result.instantiation_level_id
        self.vnf_state = result.vnf_state
        info = result.instantiated_info or {}
        self.ext_links = list(info.get("extVirtualLinkInfo", []))


def unit_of(instance: Instance, vdu_id: str) -> str:
    return planner.unit_name(instance.id, vdu_id)


def replica_count(vim: LocalVim, instance: Instance, vdu_id: str) -> int:
    unit = vim.get_unit(unit_of(instance, vdu_id))
    assert unit is not None
    assert unit.ready, unit.replicas
    return len(unit.replicas)


def check_info(instance: Instance, info: dict[str, Any] | None) -> dict[str, Any]:
    """Valid as the project's model and as the ETSI VnfInstance schema says."""
    assert info is not None
    InstantiatedVnfInfo.model_validate(info)
    vnfd = nat_vnfd()
    document = {
        "id": instance.id,
        "vnfdId": vnfd.vnfd_id,
        "vnfProvider": vnfd.vnf_provider,
        "vnfProductName": vnfd.vnf_product_name,
        "vnfSoftwareVersion": vnfd.vnf_software_version,
        "vnfdVersion": vnfd.vnfd_version,
        "vimConnectionInfo": {"local": {"vimId": "lab", "vimType": "NFVMANO.LOCAL.V_1"}},
        "instantiationState": "INSTANTIATED",
        "instantiatedVnfInfo": info,
        "_links": {"self": {"href": f"{API_ROOT}/vnflcm/v2/vnf_instances/{instance.id}"}},
    }
    VnfInstance.model_validate(document)
    validate(LCM_DEFS, "VnfInstance", document)
    return info


def check_changes(changes: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(replica id -> changeType, network -> changeType), each entry ETSI-valid."""
    for vnfc in changes.get("affectedVnfcs", []):
        validate(LCM_DEFS, "AffectedVnfc", vnfc)
    for link in changes.get("affectedVirtualLinks", []):
        validate(LCM_DEFS, "AffectedVirtualLink", link)
    return (
        {v["id"]: v["changeType"] for v in changes.get("affectedVnfcs", [])},
        {v["id"]: v["changeType"] for v in changes.get("affectedVirtualLinks", [])},
    )


def instantiate_params(**fields: Any) -> dict[str, Any]:
    return {"flavourId": "default", "instantiationLevelId": "small", **fields}


def server_pid(vim: LocalVim, unit: str, index: int) -> int:
    record = vim.store.load().units[unit].replica(index)
    assert record is not None
    return record.processes[0].pid


def wait_failed(vim: LocalVim, unit: str, replica_id: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = vim.get_unit(unit)
        assert found is not None
        state = next(r.state for r in found.replicas if r.id == replica_id)
        if state is ReplicaState.FAILED:
            return
        assert time.monotonic() < deadline, f"{replica_id} still {state}"
        time.sleep(0.1)


def check_grantable(body: dict[str, Any]) -> None:
    """ETSI-valid, and granted by the NFVO's own decision (given room enough on the VIM)."""
    validate(GRANT_DEFS, "GrantRequest", body)
    request = GrantRequest.model_validate(body)
    vnfd = nat_vnfd()
    roomy = Inventory(
        vim_type="local",
        cpu_total=64.0,
        cpu_allocated=0.0,
        memory_mib_total=65536,
        memory_mib_allocated=0,
        networks=0,
        replicas=0,
    )
    decide(
        request,
        grant_id="g1",
        self_href="http://nfvo.example/grant/v1/grants/g1",
        target=vnfd_resources(vnfd, request.flavourId),
        current=vnfd_resources(vnfd, None),
        inventory=roomy,
        vim=VimChoice(
            connection_id="local", vim_id="lab", vim_type="NFVMANO.LOCAL.V_1", single_host=True
        ),
    )
