"""VnfInstance representations of stored instances."""

from __future__ import annotations

from typing import Any

from vnfm.models import VnfInstanceRow

API_ROOT = "/vnflcm/v2"
# Task resources offered in each instantiation state (SOL003 VnfInstance._links). Only
# tasks this VNFM has a route for (vnfm/api_tasks.py): changeCurrentVnfPkg and the snapshot
# tasks are not implemented, so they are not advertised.
_TASKS = {
    "NOT_INSTANTIATED": ("instantiate",),
    "INSTANTIATED": (
        "terminate",
        "scale",
        "scaleToLevel",
        "heal",
        "operate",
        "changeExtConn",
        "changeFlavour",
    ),
}
_TASK_PATHS = {
    "instantiate": "instantiate",
    "terminate": "terminate",
    "scale": "scale",
    "scaleToLevel": "scale_to_level",
    "heal": "heal",
    "operate": "operate",
    "changeExtConn": "change_ext_conn",
    "changeFlavour": "change_flavour",
}
# Complex attributes a list leaves out unless asked for (SOL003 clause 5.4.2.3.2).
DEFAULT_EXCLUDED = (
    "vnfConfigurableProperties",
    "vimConnectionInfo",
    "instantiatedVnfInfo",
    "metadata",
    "extensions",
)


def instance_href(base_url: str, instance_id: str) -> str:
    return f"{base_url.rstrip('/')}{API_ROOT}/vnf_instances/{instance_id}"


def instance_view(row: VnfInstanceRow, base_url: str) -> dict[str, Any]:
    """The VnfInstance of a row, absent attributes left out."""
    href = instance_href(base_url, row.id)
    view: dict[str, Any] = {
        "id": row.id,
        "vnfdId": row.vnfd_id,
        "vnfProvider": row.vnf_provider,
        "vnfProductName": row.vnf_product_name,
        "vnfSoftwareVersion": row.vnf_software_version,
        "vnfdVersion": row.vnfd_version,
        "instantiationState": row.instantiation_state,
    }
    if row.vnf_instance_name is not None:
        view["vnfInstanceName"] = row.vnf_instance_name
    if row.vnf_instance_description is not None:
        view["vnfInstanceDescription"] = row.vnf_instance_description
    if row.vnf_configurable_properties:
        view["vnfConfigurableProperties"] = row.vnf_configurable_properties
    if row.vim_connection_info:
        view["vimConnectionInfo"] = row.vim_connection_info
    if row.instantiation_state == "INSTANTIATED" and row.instantiated_info is not None:
        view["instantiatedVnfInfo"] = row.instantiated_info
    if row.metadata_:
        view["metadata"] = row.metadata_
    if row.extensions:
        view["extensions"] = row.extensions
    links: dict[str, Any] = {"self": {"href": href}}
    for task in _TASKS[row.instantiation_state]:
        links[task] = {"href": f"{href}/{_TASK_PATHS[task]}"}
    view["_links"] = links
    return view


def etag_source(row: VnfInstanceRow) -> dict[str, Any]:
    return {"id": row.id, "revision": row.revision}
