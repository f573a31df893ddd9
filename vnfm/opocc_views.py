"""VnfLcmOpOcc representations of stored operation occurrences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vnfm.models import LcmOpOccRow
from vnfm.notifications import op_occ_href
from vnfm.opocc_states import OpState, allowed_tasks
from vnfm.views import instance_href

# Complex attributes a list leaves out unless asked for (SOL003 clause 5.4.12.3.2).
DEFAULT_EXCLUDED = (
    "operationParams",
    "error",
    "resourceChanges",
    "changedInfo",
    "changedExtConnectivity",
)
# Where the Grant resource of the NFVO lives relative to the base URL (SOL003 Granting).
_GRANT_ROOT = "/grant/v1/grants"


def _timestamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def op_occ_view(row: LcmOpOccRow, base_url: str) -> dict[str, Any]:
    """The VnfLcmOpOcc of a row, absent attributes left out."""
    href = op_occ_href(base_url, row.id)
    view: dict[str, Any] = {
        "id": row.id,
        "operationState": row.operation_state,
        "stateEnteredTime": _timestamp(row.state_entered_time),
        "startTime": _timestamp(row.start_time),
        "vnfInstanceId": row.vnf_instance_id,
        "operation": row.operation,
        "isAutomaticInvocation": row.is_automatic_invocation,
        "isCancelPending": row.is_cancel_pending,
    }
    if row.grant_id is not None:
        view["grantId"] = row.grant_id
    if row.operation_params:
        view["operationParams"] = row.operation_params
    if row.is_cancel_pending and row.cancel_mode is not None:
        view["cancelMode"] = row.cancel_mode
    if row.error is not None:
        view["error"] = row.error
    if row.resource_changes:
        view["resourceChanges"] = row.resource_changes
    if row.changed_info:
        view["changedInfo"] = row.changed_info
    if row.changed_ext_connectivity:
        view["changedExtConnectivity"] = row.changed_ext_connectivity
    links: dict[str, Any] = {
        "self": {"href": href},
        "vnfInstance": {"href": instance_href(base_url, row.vnf_instance_id)},
    }
    if row.grant_id is not None:
        links["grant"] = {"href": f"{base_url.rstrip('/')}{_GRANT_ROOT}/{row.grant_id}"}
    for task in sorted(allowed_tasks(OpState(row.operation_state), row.operation)):
        links[task] = {"href": f"{href}/{task}"}
    view["_links"] = links
    return view


def etag_source(row: LcmOpOccRow) -> dict[str, Any]:
    return {"id": row.id, "revision": row.revision}
