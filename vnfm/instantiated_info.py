"""InstantiatedVnfInfo of a VNF instance, built from what the VIM reports now.

The VNFM does not keep its own copy of the VIM's resources: after every LCM
operation it reads them back (`VimAdapter.list_owned`, `get_unit`,
`get_network`) and describes them with the VNFD, so the stored
`instantiatedVnfInfo` can never disagree with the VIM as it was at the end of
the operation. Only what the VIM cannot tell is the VNFM's own: `vnfState`
(the last OPERATE) and `extVirtualLinkInfo` (the requests' external links,
`vnfm.ext_links`).

Identifiers, chosen to be stable across re-runs of an operation:

- `vnfcResourceInfo[].id` and `computeResource.resourceId`: the VIM replica id;
- `vnfcCpInfo[].id`: `<replica id>-<interface name>`;
- `vnfVirtualLinkResourceInfo[].id` and `networkResource.resourceId`: the VIM
  network name (`planner.network_name`);
- `extCpInfo[].id` and `cpConfigId`: the VnfExtCp id (one instance per
  VnfExtCpd; the VNF has no per-instance external CP configuration of its own);
- `vnfcInfo[].id`: `vnfc-<replica id>`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from descriptors.vnfd import DeploymentFlavour, VduCp, Vnfd
from vim_adapters.interface import Address, Network, ReplicaState, Unit, VimAdapter
from vnfm import planner
from vnfm.schemas import InstantiatedVnfInfo

__all__ = [
    "DEFAULT_VIM_CONNECTION_ID",
    "compute_handle",
    "internal_links",
    "network_handle",
    "snapshot",
]

_NOT_RUNNING = frozenset({ReplicaState.FAILED, ReplicaState.STOPPED})

DEFAULT_VIM_CONNECTION_ID = "local"
"""Key of the VIM in the instance's vimConnectionInfo that ResourceHandles point to."""


def resources_connection(instantiated_info: Mapping[str, Any] | None) -> str | None:
    """The vimConnectionId the instance's ResourceHandles name (the VNFM puts all of an
    instance's resources on one VIM connection); None before any resource exists."""
    info = instantiated_info or {}
    handles = [
        *(vnfc.get("computeResource") for vnfc in info.get("vnfcResourceInfo", [])),
        *(vl.get("networkResource") for vl in info.get("vnfVirtualLinkResourceInfo", [])),
    ]
    for handle in handles:
        if isinstance(handle, Mapping) and isinstance(handle.get("vimConnectionId"), str):
            return str(handle["vimConnectionId"])
    return None


def _compute_type(vim_type: str) -> str:
    return f"{vim_type.upper()}.REPLICA"


def _network_type(vim_type: str) -> str:
    # On the local VIM a virtual link is a Linux bridge; elsewhere a VIM network.
    return "LOCAL.BRIDGE" if vim_type == "local" else f"{vim_type.upper()}.NETWORK"


def compute_handle(vim: VimAdapter, replica_id: str, vim_connection_id: str) -> dict[str, str]:
    """SOL003 ResourceHandle of one replica (a VNFC's compute resource)."""
    return {
        "vimConnectionId": vim_connection_id,
        "resourceId": replica_id,
        "vimLevelResourceType": _compute_type(vim.vim_type),
    }


def network_handle(vim: VimAdapter, network: str, vim_connection_id: str) -> dict[str, str]:
    """SOL003 ResourceHandle of one internal virtual link's network."""
    return {
        "vimConnectionId": vim_connection_id,
        "resourceId": network,
        "vimLevelResourceType": _network_type(vim.vim_type),
    }


def internal_links(vnfd: Vnfd, vnf_instance_id: str) -> dict[str, str]:
    """VIM network name -> virtual link id, over every flavour of the VNFD."""
    return {
        planner.network_name(vnf_instance_id, vl.id): vl.id
        for flavour in vnfd.flavours
        for vl in flavour.virtual_links
    }


def _vdu_cps(flavour: DeploymentFlavour, vdu_id: str) -> list[VduCp]:
    return [cp for cp in flavour.vdu_cps if cp.vdu == vdu_id]


def _ifname_to_cp(flavour: DeploymentFlavour, vdu_id: str) -> dict[str, str]:
    cps = [cp.id for cp in _vdu_cps(flavour, vdu_id)]
    if not cps:
        return {}
    return {ifname: cp for cp, ifname in planner.interface_names(vdu_id, cps).items()}


def _ip_infos(addresses: Iterable[str], dynamic: bool) -> list[dict[str, Any]]:
    by_version: dict[int, list[str]] = {}
    for address in addresses:
        by_version.setdefault(ipaddress.ip_address(address).version, []).append(address)
    return [
        {
            "type": "IPV4" if version == 4 else "IPV6",
            "addresses": found,
            "isDynamic": dynamic,
        }
        for version, found in sorted(by_version.items())
    ]


def _protocol_info(
    addresses: list[Address], *, dynamic: bool, with_mac: bool
) -> list[dict[str, Any]]:
    ips = _ip_infos((a.ip for a in addresses), dynamic)
    macs = sorted({a.mac for a in addresses if a.mac})
    ethernet: dict[str, Any] = {}
    # One CpProtocolInfo carries one MAC; an external CP behind several VNFC CPs has several.
    if with_mac and len(macs) == 1:
        ethernet["macAddress"] = macs[0]
    if ips:
        ethernet["ipAddresses"] = ips
    if not ethernet:
        return []
    return [{"layerProtocol": "IP_OVER_ETHERNET", "ipOverEthernet": ethernet}]


class _VnfcCp:
    """One connection point of one replica, as the snapshot needs to refer back to it."""

    __slots__ = ("addresses", "cp_id", "external", "fixed", "id")

    def __init__(
        self, id: str, cp_id: str, addresses: list[Address], *, fixed: bool, external: bool
    ) -> None:
        self.id = id
        self.cp_id = cp_id
        self.addresses = addresses
        self.fixed = fixed
        self.external = external


def _ext_cp_for(flavour: DeploymentFlavour, cp: VduCp) -> str | None:
    """The external CP a VduCp realises when it is attached to an external network."""
    if cp.exposed_as is not None:
        return cp.id
    for ext in flavour.ext_cps:
        if cp.virtual_link is not None and ext.internal_virtual_link == cp.virtual_link:
            return ext.id
    return None


def snapshot(
    vim: VimAdapter,
    vnf_instance_id: str,
    flavour_id: str,
    scale_levels: Mapping[str, int],
    vnfd: Vnfd,
    *,
    vim_connection_id: str = DEFAULT_VIM_CONNECTION_ID,
    vnf_state: str = "STARTED",
    ext_virtual_links: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """InstantiatedVnfInfo JSON (ETSI names, no nulls) of one instance as the VIM has it now.

    `vnf_state` is the VNF's operational state as the last OPERATE left it (a VNF has no
    state of its own on the VIM; its VNFCs' states are the replicas'), `ext_virtual_links`
    its ExtVirtualLinkInfo entries (`vnfm.ext_links`), which the VNFM keeps.

    Raises KeyError if the VNFD has no such flavour, and pydantic's ValidationError if
    the result is not a valid InstantiatedVnfInfo (a flavour without external CPs: SOL003
    requires at least one extCpInfo).
    """
    flavour = vnfd.flavour(flavour_id)
    owned = vim.list_owned(vnf_instance_id)
    units = [
        unit
        for unit in (vim.get_unit(r.name) for r in owned if r.kind == "unit")
        if unit is not None
    ]
    networks = [
        network
        for network in (vim.get_network(r.name) for r in owned if r.kind == "network")
        if network is not None
    ]
    link_of = internal_links(vnfd, vnf_instance_id)
    internal = {n.name for n in networks if n.name in link_of}

    vnfc_resources: list[dict[str, Any]] = []
    vnfc_infos: list[dict[str, Any]] = []
    by_cpd: dict[str, list[_VnfcCp]] = {}
    for unit in units:
        vnfc_resources_of, vnfc_infos_of = _describe_unit(
            vim, unit, flavour, internal, by_cpd, vim_connection_id
        )
        vnfc_resources += vnfc_resources_of
        vnfc_infos += vnfc_infos_of

    info: dict[str, Any] = {
        "flavourId": flavour_id,
        "vnfState": vnf_state,
        "scaleStatus": [
            {"aspectId": a.id, "scaleLevel": scale_levels.get(a.id, 0)}
            for a in flavour.scaling_aspects
        ],
        "maxScaleLevels": [
            {"aspectId": a.id, "scaleLevel": a.max_scale_level} for a in flavour.scaling_aspects
        ],
        "extCpInfo": _ext_cp_infos(flavour, vnf_instance_id, internal, by_cpd),
        "extVirtualLinkInfo": [dict(link) for link in ext_virtual_links],
        "vnfcResourceInfo": vnfc_resources,
        "vnfVirtualLinkResourceInfo": [
            _link_info(vim, network, link_of[network.name], vim_connection_id)
            for network in networks
            if network.name in internal
        ],
        "vnfcInfo": vnfc_infos,
    }
    for key in (
        "scaleStatus",
        "maxScaleLevels",
        "extVirtualLinkInfo",
        "vnfcResourceInfo",
        "vnfcInfo",
    ):
        if not info[key]:
            del info[key]
    if not info["vnfVirtualLinkResourceInfo"]:
        del info["vnfVirtualLinkResourceInfo"]
    model = InstantiatedVnfInfo.model_validate(info)
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _describe_unit(
    vim: VimAdapter,
    unit: Unit,
    flavour: DeploymentFlavour,
    internal: set[str],
    by_cpd: dict[str, list[_VnfcCp]],
    vim_connection_id: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    vdu_id = unit.owner.vdu_id or unit.name
    cp_of_ifname = _ifname_to_cp(flavour, vdu_id)
    cps_by_id = {cp.id: cp for cp in flavour.vdu_cps}
    resources: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    for replica in unit.replicas:
        vnfc_cps: list[dict[str, Any]] = []
        for point in unit.spec.connection_points:
            cp_id = cp_of_ifname.get(point.name, point.name)
            on_point = [a for a in replica.addresses if a.connection_point == point.name]
            external = point.network not in internal
            cp = _VnfcCp(
                f"{replica.id}-{point.name}",
                cp_id,
                on_point,
                fixed=bool(point.fixed_addresses),
                external=external,
            )
            entry: dict[str, Any] = {"id": cp.id, "cpdId": cp_id}
            protocol = _protocol_info(on_point, dynamic=not cp.fixed, with_mac=True)
            if protocol:
                entry["cpProtocolInfo"] = protocol
            vdu_cp = cps_by_id.get(cp_id)
            ext_cp = _ext_cp_for(flavour, vdu_cp) if vdu_cp is not None else None
            if external and ext_cp is not None:
                entry["vnfExtCpId"] = ext_cp
            by_cpd.setdefault(cp_id, []).append(cp)
            vnfc_cps.append(entry)
        resource: dict[str, Any] = {
            "id": replica.id,
            "vduId": vdu_id,
            "computeResource": compute_handle(vim, replica.id, vim_connection_id),
        }
        if vnfc_cps:
            resource["vnfcCpInfo"] = vnfc_cps
        resources.append(resource)
        infos.append(
            {
                "id": f"vnfc-{replica.id}",
                "vduId": vdu_id,
                "vnfcResourceInfoId": replica.id,
                # Failed and stopped replicas run nothing; pending and running ones start.
                "vnfcState": "STOPPED" if replica.state in _NOT_RUNNING else "STARTED",
            }
        )
    return resources, infos


def _ext_cp_infos(
    flavour: DeploymentFlavour,
    vnf_instance_id: str,
    internal: set[str],
    by_cpd: Mapping[str, list[_VnfcCp]],
) -> list[dict[str, Any]]:
    infos: list[dict[str, Any]] = []
    exposed = [
        (cp.id, None, [cp]) for cp in flavour.vdu_cps if cp.exposed_as is not None and cp.vdu
    ]
    re_exposing = [
        (
            ext.id,
            ext.internal_virtual_link,
            [cp for cp in flavour.vdu_cps if cp.virtual_link == ext.internal_virtual_link],
        )
        for ext in flavour.ext_cps
    ]
    for cpd_id, vl_id, behind in [*re_exposing, *exposed]:
        vnfc_cps = [vnfc_cp for cp in behind for vnfc_cp in by_cpd.get(cp.id, [])]
        network = planner.network_name(vnf_instance_id, vl_id) if vl_id else None
        entry: dict[str, Any] = {"id": cpd_id, "cpdId": cpd_id, "cpConfigId": cpd_id}
        attached = [c for c in vnfc_cps if c.external]
        if network is not None and network in internal and not attached:
            entry["associatedVnfVirtualLinkId"] = network
        elif vnfc_cps:
            entry["associatedVnfcCpId"] = (attached or vnfc_cps)[0].id
        else:
            # Neither a link nor a VNFC CP realises it (no replica of its VDU exists).
            continue
        addresses = [a for c in vnfc_cps for a in c.addresses]
        dynamic = not vnfc_cps or not all(c.fixed for c in vnfc_cps)
        entry["cpProtocolInfo"] = _protocol_info(addresses, dynamic=dynamic, with_mac=False)
        infos.append(entry)
    return infos


def _link_info(
    vim: VimAdapter, network: Network, vl_id: str, vim_connection_id: str
) -> dict[str, Any]:
    return {
        "id": network.name,
        "vnfVirtualLinkDescId": vl_id,
        "networkResource": network_handle(vim, network.name, vim_connection_id),
    }
