"""Turn stored NS instance rows into the API's NsInstance representation."""

from __future__ import annotations

from typing import Any

from nfvo.nslcm.models import NsInstanceRow, NsLcmOpOccRow
from nfvo.nslcm.opocc_states import allowed_tasks
from nfvo.nslcm.schemas import API_MAJOR, API_NAME
from sol013.opocc.views import add_cancel_and_outcome, occurrence_links, timestamp


def api_root(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/{API_NAME}/{API_MAJOR}"


def ns_instance_href(base_url: str, ns_instance_id: str) -> str:
    return f"{api_root(base_url)}/ns_instances/{ns_instance_id}"


def op_occ_href(base_url: str, op_id: str) -> str:
    return f"{api_root(base_url)}/ns_lcm_op_occs/{op_id}"


def ns_instance(row: NsInstanceRow, base_url: str) -> dict[str, Any]:
    """The NsInstance of a row, as a JSON-ready dict with absent attributes left out."""
    href = ns_instance_href(base_url, row.id)
    info: dict[str, Any] = {
        "id": row.id,
        "nsInstanceName": row.name,
        "nsInstanceDescription": row.description,
        "nsdId": row.nsd_id,
        "nsdInfoId": row.nsd_info_id,
    }
    instantiated = row.ns_state == "INSTANTIATED"
    if instantiated:
        info["flavourId"] = row.flavour_id
        if row.instantiation_level_id is not None:
            info["nsInstantiationLevelId"] = row.instantiation_level_id
        if row.vnf_instances:
            info["vnfInstance"] = list(row.vnf_instances)
        if row.virtual_links:
            info["virtualLinkInfo"] = list(row.virtual_links)
        if row.scale_status:
            info["nsScaleStatus"] = list(row.scale_status)
    info["nsState"] = row.ns_state
    links: dict[str, Any] = {"self": {"href": href}}
    # SOL005 6.5.2.10: each task link only "if the related operation is possible
    # based on the current status of this NS instance resource".
    tasks = ("terminate", "update", "scale", "heal") if instantiated else ("instantiate",)
    for task in tasks:
        links[task] = {"href": f"{href}/{task}"}
    info["_links"] = links
    return info


def etag_source(row: NsInstanceRow) -> dict[str, Any]:
    """What the ETag covers: the resource's identity and its revision counter."""
    return {"id": row.id, "revision": row.revision}


def op_occ(row: NsLcmOpOccRow, base_url: str) -> dict[str, Any]:
    """The NsLcmOpOcc of a row (SOL005 6.5.2.3), absent attributes left out."""
    href = op_occ_href(base_url, row.id)
    view: dict[str, Any] = {
        "id": row.id,
        "operationState": row.operation_state,
        "stateEnteredTime": timestamp(row.state_entered_time),
        "nsInstanceId": row.ns_instance_id,
        "lcmOperationType": row.operation,
        "startTime": timestamp(row.start_time),
        "isAutomaticInvocation": row.is_automatic_invocation,
        "operationParams": row.operation_params or {},
        "isCancelPending": row.is_cancel_pending,
    }
    add_cancel_and_outcome(view, row)
    view["_links"] = occurrence_links(
        href,
        ("nsInstance", ns_instance_href(base_url, row.ns_instance_id)),
        allowed_tasks(row.operation_state, row.operation),
    )
    return view
