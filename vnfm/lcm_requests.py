"""What a VNF LCM request does, whoever makes it: the REST API or an in-process caller.

The `/vnflcm/v2` routes (`vnfm.api_instances`, `vnfm.api_tasks`, `vnfm.api_opoccs`) and the
NFVO's in-process SOL003 client (`nfvo.vnfm_client.in_process`) both call these functions, so
a request is checked, refused (`ApiError` with the SOL003 status) and handed to a worker the
same way on both paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from sol013.opocc import workers as opocc_workers
from sol013.problem import ApiError
from vim_adapters.registry import VimResolver
from vnfm import change_flavour, ext_links, modify_info, planner, targets
from vnfm.instances import InstanceService
from vnfm.models import LcmOpOccRow, VnfInstanceRow
from vnfm.notifications import notify_identifier_created, notify_identifier_deleted
from vnfm.occurrences import Dispatch, InstanceCheck, OccurrenceService
from vnfm.operation import ExecutionError
from vnfm.opocc_states import Event
from vnfm.schemas import (
    ChangeExtVnfConnectivityRequest,
    ChangeVnfFlavourRequest,
    CreateVnfRequest,
    InstantiateVnfRequest,
    LcmOperationType,
)

__all__ = [
    "check_ext_cps",
    "check_vim",
    "create_instance",
    "delete_instance",
    "hand_over",
    "read_instance",
    "request_params",
    "request_task",
    "start_change_ext_conn",
    "start_change_flavour",
    "start_operation",
    "unchanged_since",
]

log = logging.getLogger(__name__)
# Operations whose request is merged into the instance's vimConnectionInfo when they complete.
_MERGES_VIM_CONNECTIONS = (
    LcmOperationType.MODIFY_INFO,
    LcmOperationType.CHANGE_EXT_CONN,
    LcmOperationType.CHANGE_FLAVOUR,
)


def create_instance(
    instances: InstanceService,
    body: CreateVnfRequest,
    base_url: str,
    wake_notifications: Callable[[], None],
) -> VnfInstanceRow:
    """A new VNF instance resource, its VnfIdentifierCreationNotification queued and woken."""
    row = instances.create(
        vnfd_id=body.vnfdId,
        name=body.vnfInstanceName,
        description=body.vnfInstanceDescription,
        metadata=body.metadata,
        on_created=lambda session, created: notify_identifier_created(session, created, base_url),
    )
    wake_notifications()
    return row


def delete_instance(
    instances: InstanceService,
    instance_id: str,
    base_url: str,
    wake_notifications: Callable[[], None],
) -> None:
    """Delete a NOT_INSTANTIATED, idle instance (else 404/409); VnfIdentifierDeletion queued."""
    instances.delete(
        instance_id,
        on_deleted=lambda session, deleted: notify_identifier_deleted(session, deleted, base_url),
    )
    wake_notifications()


def read_instance(instances: InstanceService, instance_id: str) -> VnfInstanceRow:
    with instances.sessions() as session:
        return instances.get(session, instance_id)


def request_params(body: BaseModel) -> dict[str, object]:
    """A task request as stored in the occurrence's operationParams (absent attributes left out)."""
    return body.model_dump(mode="json", by_alias=True, exclude_none=True)


def hand_over(occurrences: OccurrenceService, dispatch: Dispatch, op_id: str, kind: str) -> None:
    """Hand an occurrence to a worker; if that is impossible, the occurrence ends now (503).

    It then goes STARTING -> ROLLED_BACK, or FAILED_TEMP after a retry or rollback task.
    """

    def worker_lost(lost_id: str, error: dict[str, Any]) -> None:
        occurrences.apply(lost_id, Event.WORKER_LOST, error=error)

    opocc_workers.hand_over(dispatch, op_id, kind, worker_lost=worker_lost, log=log)


def start_operation(
    occurrences: OccurrenceService,
    dispatch: Dispatch,
    instance_id: str,
    operation: LcmOperationType,
    params: dict[str, object],
    *,
    precondition: InstanceCheck | None = None,
    check: InstanceCheck | None = None,
) -> LcmOpOccRow:
    """Start an occurrence (404/409/412 as `OccurrenceService.start` says) and dispatch it.

    A request that merges into the instance's vimConnectionInfo (MODIFY_INFO,
    CHANGE_EXT_CONN, CHANGE_FLAVOUR) is also checked, on the locked instance, not to move it
    off the VIM its resources are on (409, `modify_info.check_vim_kept`), before ``check``.
    """
    if operation in _MERGES_VIM_CONNECTIONS:
        check = _all(_keeps_vim(params), check)
    row = occurrences.start(
        instance_id, operation.value, params, precondition=precondition, check=check
    )
    hand_over(occurrences, dispatch, row.id, "run")
    return row


def _keeps_vim(params: Mapping[str, object]) -> InstanceCheck:
    connections = params.get("vimConnectionInfo")

    def check(locked: VnfInstanceRow) -> None:
        if not isinstance(connections, Mapping):
            return
        try:
            modify_info.check_vim_kept(connections, locked)
        except modify_info.ModificationRefused as exc:
            raise ApiError(exc.status, exc.detail) from None

    return check


def _all(*checks: InstanceCheck | None) -> InstanceCheck:
    def check(locked: VnfInstanceRow) -> None:
        for one in checks:
            if one is not None:
                one(locked)

    return check


def unchanged_since(seen: VnfInstanceRow) -> InstanceCheck:
    """Refuses to start if the instance changed after the request was checked against it."""
    revision = seen.revision

    def check(locked: VnfInstanceRow) -> None:
        if locked.revision != revision:
            raise ApiError(
                409,
                f"VNF instance {locked.id} changed while the request was being checked; "
                "read it again and retry",
            )

    return check


def check_ext_cps(
    instances: InstanceService, row: VnfInstanceRow, body: ChangeExtVnfConnectivityRequest
) -> None:
    """422 naming the field for an external CP the instance's flavour does not have."""
    if row.instantiation_state != "INSTANTIATED" or row.flavour_id is None:
        return  # starting refuses it with 409
    try:
        flavour = instances.nfvo.vnfd(row.vnfd_id).flavour(row.flavour_id)
    except KeyError:
        return  # the worker reports the missing VNFD or flavour
    known = planner.external_cp_ids(flavour)
    seen: dict[str, str] = {}
    for i, link in enumerate(body.extVirtualLinks):
        for j, cp in enumerate(link.extCps):
            field = f"extVirtualLinks[{i}].extCps[{j}].cpdId"
            if cp.cpdId not in known:
                raise ApiError(
                    422,
                    f"{field}: flavour {row.flavour_id} of VNFD {row.vnfd_id} has no external "
                    f"CP {cp.cpdId!r} (it has: {', '.join(known) or 'none'})",
                )
            earlier = seen.setdefault(cp.cpdId, link.id)
            if earlier != link.id:
                raise ApiError(
                    422,
                    f"{field}: external CP {cp.cpdId} is also given in link {earlier}; "
                    "a CP attaches to one external link",
                )


def check_vim(
    instances: InstanceService,
    vims: VimResolver | None,
    instance_id: str,
    body: InstantiateVnfRequest,
) -> None:
    """422 naming the field for a VIM the registry does not have (the worker checks again).

    ``vims`` None: the service has no VIM registry, nothing to check.
    """
    row = read_instance(instances, instance_id)
    if vims is None or row.instantiation_state != "NOT_INSTANTIATED":
        return  # no registry in this service; or starting refuses it with 409
    try:
        selection = targets.select_vim(body.vimConnectionInfo, row.vim_connection_info or {}, None)
        targets.check_vim(selection, vims)
    except ExecutionError as exc:
        raise ApiError(exc.status, exc.detail) from None


def start_change_ext_conn(
    instances: InstanceService,
    occurrences: OccurrenceService,
    dispatch: Dispatch,
    instance_id: str,
    body: ChangeExtVnfConnectivityRequest,
) -> LcmOpOccRow:
    """CHANGE_EXT_CONN: the external CPs checked against the instance as read (422), then started
    only if the instance has not changed since (else 409)."""
    row = read_instance(instances, instance_id)
    check_ext_cps(instances, row, body)
    return start_operation(
        occurrences,
        dispatch,
        instance_id,
        LcmOperationType.CHANGE_EXT_CONN,
        request_params(body),
        check=unchanged_since(row),
    )


def start_change_flavour(
    instances: InstanceService,
    occurrences: OccurrenceService,
    dispatch: Dispatch,
    instance_id: str,
    body: ChangeVnfFlavourRequest,
) -> LcmOpOccRow:
    """CHANGE_FLAVOUR: the request checked against the instance as read and its VNFD (422
    naming the field, `vnfm.change_flavour`), then started only if the instance has not
    changed since (else 409)."""
    row = read_instance(instances, instance_id)
    if row.instantiation_state == "INSTANTIATED" and row.flavour_id is not None:
        try:
            vnfd = instances.nfvo.vnfd(row.vnfd_id)
        except KeyError:
            vnfd = None  # the worker reports the missing VNFD
        try:
            if vnfd is not None:
                links = (row.instantiated_info or {}).get("extVirtualLinkInfo") or []
                change_flavour.check(vnfd, row.flavour_id, body, ext_links.load(links))
            change_flavour.modifications(
                body,
                vnfd_id=row.vnfd_id,
                flavour_id=row.flavour_id,
                scale_levels=dict(row.scale_levels or {}),
                nfvo=instances.nfvo,
            )
        except ExecutionError as exc:
            raise ApiError(exc.status, exc.detail) from None
    return start_operation(
        occurrences,
        dispatch,
        instance_id,
        LcmOperationType.CHANGE_FLAVOUR,
        request_params(body),
        check=unchanged_since(row),
    )


def request_task(
    occurrences: OccurrenceService,
    dispatch: Dispatch,
    op_id: str,
    task: str,
    *,
    cancel_mode: str | None = None,
) -> LcmOpOccRow:
    """The retry, rollback, fail or cancel task of an occurrence, and the work it hands over."""
    row, kind = occurrences.request_task(op_id, task, cancel_mode=cancel_mode)
    if kind is not None:
        hand_over(occurrences, dispatch, op_id, kind)
    return row
