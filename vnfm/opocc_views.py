"""VnfLcmOpOcc representations of stored operation occurrences."""

from __future__ import annotations

from typing import Any

from sol013.opocc.views import add_cancel_and_outcome, occurrence_links, timestamp
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


def op_occ_view(row: LcmOpOccRow, base_url: str) -> dict[str, Any]:
    """The VnfLcmOpOcc of a row, absent attributes left out."""
    href = op_occ_href(base_url, row.id)
    view: dict[str, Any] = {
        "id": row.id,
        "operationState": row.operation_state,
        "stateEnteredTime": timestamp(row.state_entered_time),
        "startTime": timestamp(row.start_time),
        "vnfInstanceId": row.vnf_instance_id,
        "operation": row.operation,
        "isAutomaticInvocation": row.is_automatic_invocation,
        "isCancelPending": row.is_cancel_pending,
    }
    if row.grant_id is not None:
        view["grantId"] = row.grant_id
    if row.operation_params:
        view["operationParams"] = row.operation_params
    add_cancel_and_outcome(view, row)
    if row.changed_info:
        view["changedInfo"] = row.changed_info
    if row.changed_ext_connectivity:
        view["changedExtConnectivity"] = row.changed_ext_connectivity
    grant = (
        {"grant": f"{base_url.rstrip('/')}{_GRANT_ROOT}/{row.grant_id}"}
        if row.grant_id is not None
        else None
    )
    view["_links"] = occurrence_links(
        href,
        ("vnfInstance", instance_href(base_url, row.vnf_instance_id)),
        allowed_tasks(OpState(row.operation_state), row.operation),
        grant,
    )
    return view


def etag_source(row: LcmOpOccRow) -> dict[str, Any]:
    return {"id": row.id, "revision": row.revision}
