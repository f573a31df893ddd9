"""Granting: records every GrantRequest, decides it (now or later) and serves the result."""

from __future__ import annotations

import logging
import os
import threading
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from descriptors.vnfd import Vnfd
from nfvo.grant.models import GrantRow, GrantState
from nfvo.grant.placement import (
    CapacityPolicy,
    GrantRejected,
    VimDirectory,
    choose_vim,
    current_resources,
    decide,
    needs_enabled_package,
    vnfd_resources,
)
from nfvo.grant.schemas import API_MAJOR, API_NAME, Grant, GrantRequest
from nfvo.settings import Settings
from nfvo.vnfpkgm.models import VnfPackageRow
from sol013.problem import ApiError, ProblemDetails
from store.base import transaction, utcnow
from vim_adapters.interface import Inventory

log = logging.getLogger(__name__)

REJECTED_TITLE = "Grant rejected"


def grant_href(api_root: str, grant_id: str) -> str:
    return f"{api_root}/{API_NAME}/{API_MAJOR}/grants/{grant_id}"


def host_inventory() -> Inventory:
    """This host's capacity with nothing allocated, for when no local VIM state is configured."""
    return Inventory(
        vim_type="local",
        cpu_total=float(os.cpu_count() or 1),
        cpu_allocated=0.0,
        memory_mib_total=_host_memory_mib(),
        memory_mib_allocated=0,
        networks=0,
        replicas=0,
    )


def _host_memory_mib() -> int:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0


class GrantService:
    """The NFVO side of SOL003 Granting, shared by the REST routes and the in-process VNFM."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        vims: VimDirectory,
        *,
        policy: CapacityPolicy | None = None,
        asynchronous: bool = False,
    ) -> None:
        self.sessions = sessions
        # The registered VIMs whose capacity grants are checked against (nfvo.vims).
        self.vims = vims
        self.policy = policy or CapacityPolicy()
        # Default mode of POST /grants; a request may still ask for asynchronous mode.
        self.asynchronous = asynchronous
        # Decisions in one process are serialised, so two grants do not both take the last
        # free vCPU of an inventory read at the same time.
        self._deciding = threading.Lock()

    @classmethod
    def from_settings(
        cls, sessions: sessionmaker[Session], settings: Settings, vims: VimDirectory
    ) -> GrantService:
        return cls(
            sessions,
            vims,
            policy=CapacityPolicy(
                cpu_allocation_ratio=settings.grant_cpu_allocation_ratio,
                memory_allocation_ratio=settings.grant_memory_allocation_ratio,
            ),
            asynchronous=settings.grant_async,
        )

    # -- requests ------------------------------------------------------------------------------

    def accept(self, request: GrantRequest, api_root: str) -> GrantRow:
        """Records a request as PENDING (asynchronous mode); ``decide`` settles it."""
        row = GrantRow(
            id=str(uuid.uuid4()),
            vnf_instance_id=request.vnfInstanceId,
            vnf_lcm_op_occ_id=request.vnfLcmOpOccId,
            vnfd_id=request.vnfdId,
            operation=request.operation.value,
            is_automatic_invocation=request.isAutomaticInvocation,
            state=GrantState.PENDING.value,
            request=request.model_dump(mode="json", by_alias=True, exclude_none=True),
            decision=None,
            api_root=api_root,
            created_at=utcnow(),
        )
        with transaction(self.sessions) as session:
            session.add(row)
        return row

    def grant_now(self, request: GrantRequest, api_root: str) -> Grant:
        """Synchronous mode: the Grant, or ApiError 403 naming why the grant is rejected."""
        row = self.accept(request, api_root)
        settled = self.decide(row.id)
        return self.result(settled)

    def decide(self, grant_id: str) -> GrantRow:
        """Decides a PENDING grant and stores the decision; a decided one is returned as is."""
        with self._deciding:
            with self.sessions() as session:
                row = self._row(session, grant_id)
            if row.state != GrantState.PENDING.value:
                return row
            request = GrantRequest.model_validate(row.request)
            state: GrantState
            try:
                grant = self._decide(row, request)
            except GrantRejected as exc:
                state = GrantState.REJECTED
                decision = ProblemDetails(
                    title=REJECTED_TITLE, status=403, detail=exc.detail
                ).model_dump(mode="json", exclude_none=True)
                log.info("grant %s rejected: %s", grant_id, exc.detail)
            else:
                state = GrantState.GRANTED
                decision = grant.to_json()
            with transaction(self.sessions) as session:
                # Conditional, so a replica recovering the same pending grant cannot overwrite it.
                session.execute(
                    update(GrantRow)
                    .where(GrantRow.id == grant_id, GrantRow.state == GrantState.PENDING.value)
                    .values(state=state.value, decision=decision, decided_at=utcnow())
                )
            with self.sessions() as session:
                return self._row(session, grant_id)

    def _decide(self, row: GrantRow, request: GrantRequest) -> Grant:
        with self.sessions() as session:
            current_vnfd = self._vnfd(
                session, request.vnfdId, require_enabled=needs_enabled_package(request.operation)
            )
            target_vnfd = current_vnfd
            if request.dstVnfdId is not None:
                target_vnfd = self._vnfd(session, request.dstVnfdId, require_enabled=True)
        vim, inventory, policy = choose_vim(request, self.vims, self.policy)
        return decide(
            request,
            grant_id=row.id,
            self_href=grant_href(row.api_root, row.id),
            target=vnfd_resources(target_vnfd, request.flavourId),
            current=current_resources(current_vnfd, request),
            inventory=inventory,
            vim=vim,
            policy=policy,
        )

    def _vnfd(self, session: Session, vnfd_id: str, *, require_enabled: bool) -> Vnfd:
        package = session.scalar(select(VnfPackageRow).where(VnfPackageRow.vnfd_id == vnfd_id))
        if package is None or package.vnfd is None:
            raise GrantRejected(f"vnfdId {vnfd_id} is unknown: no onboarded VNF package has it")
        if package.onboarding_state != "ONBOARDED":
            raise GrantRejected(
                f"VNF package {package.id} of vnfdId {vnfd_id} is {package.onboarding_state}, "
                "not ONBOARDED"
            )
        if require_enabled and package.operational_state != "ENABLED":
            raise GrantRejected(
                f"VNF package {package.id} of vnfdId {vnfd_id} is "
                f"{package.operational_state}, not ENABLED"
            )
        return Vnfd.model_validate(package.vnfd)

    # -- results -------------------------------------------------------------------------------

    def get(self, grant_id: str) -> GrantRow:
        with self.sessions() as session:
            return self._row(session, grant_id)

    @staticmethod
    def _row(session: Session, grant_id: str) -> GrantRow:
        row = session.get(GrantRow, grant_id)
        if row is None:
            raise ApiError(404, f"no grant with id {grant_id}")
        return row

    @staticmethod
    def result(row: GrantRow) -> Grant:
        """The Grant of a decided row; ApiError 403 for a rejected one."""
        if row.state == GrantState.GRANTED.value and row.decision is not None:
            return Grant.model_validate(row.decision)
        if row.state == GrantState.REJECTED.value and row.decision is not None:
            raise ApiError(403, str(row.decision.get("detail")), title=REJECTED_TITLE)
        raise ValueError(f"grant {row.id} is not decided yet")

    def recover(self) -> int:
        """Decides grants left PENDING by a previous process (e.g. a crash after the 202)."""
        with self.sessions() as session:
            pending = list(
                session.scalars(
                    select(GrantRow.id).where(GrantRow.state == GrantState.PENDING.value)
                )
            )
        for grant_id in pending:
            self.decide(grant_id)
        return len(pending)
