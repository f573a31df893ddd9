"""The NS orchestration engine: what an NS LCM operation occurrence does, step by step.

INSTANTIATE: plan (flavour, VNF profiles -> onboarded packages, min/max instances, one VIM
per profile by placement), create the NS virtual links on every VIM a VNF connected to
them is placed on (networks owned by the NS instance, so leak checks are exact), then the
VNFs through the VNFM (`VnfmClient`), group by group in the NSD's dependency order, the
VNFs of a group in parallel; each VNF gets extVirtualLinks that attach its external CPs to
the NS virtual links, and its profile's additionalParams.

Every step is recorded in the occurrence's ``progress`` before and after it is done
(`NsOccurrenceService.record`): the plan once, a VNF instance id as soon as the VNFM
created it, the VNFM operation id as soon as it was started. A retry (or a new worker
after a crash) replays the same steps against the record: an existing network is ensured
again, a recorded VNF instance is never created twice (one created but not yet recorded
is found again by its name), a VNFM operation in progress is waited for, one in
FAILED_TEMP is retried.

Rollback (INSTANTIATE only) undoes in reverse: each VNF this occurrence created is
terminated (or its failed VNFM operation rolled back) and deleted, last group first, then
the NS virtual links are deleted. TERMINATE goes through the VNFs in reverse dependency
order, then deletes the NS virtual links.

SCALE (SCALE_VNF and SCALE_NS by steps or to a level), HEAL (healVnfData) and UPDATE
(REMOVE_VNF: terminate and delete; CHANGE_VNF_DF: the VNFM's ChangeVnfFlavour; ADD_VNF:
the NS record only) map to VNF operations; see `_scale`, `_heal`, `_update`.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from descriptors.nsd import Nsd, NsDeploymentFlavour, VnfProfile
from descriptors.vnfd import Vnfd
from nfvo.nsd.models import NsdRow
from nfvo.nslcm.checks import VIM_IDS
from nfvo.nslcm.models import NsInstanceRow, NsLcmOpOccRow
from nfvo.nslcm.occurrences import NsOccurrenceService
from nfvo.nslcm.vnf_levels import vnf_start
from nfvo.vims.placement import PlacementRefused, PlacementRequest, Placer, demand_of
from nfvo.vnfm_client import VnfmClient
from nfvo.vnfm_client.errors import NotFound, VnfmError
from nfvo.vnfpkgm.models import VnfPackageRow
from vim_adapters.interface import NetworkSpec, Ownership, VimAdapter
from vnfm.operation import Cancelled, ExecutionError
from vnfm.schemas import (
    ChangeVnfFlavourRequest,
    HealVnfRequest,
    InstantiateVnfRequest,
    LcmOperationStateType,
    ScaleVnfRequest,
    ScaleVnfToLevelRequest,
    TerminateVnfRequest,
    VnfInstance,
    VnfLcmOpOcc,
)

__all__ = ["Engine", "EngineDeps", "StepContext", "network_name"]

log = logging.getLogger(__name__)

Json = dict[str, Any]


@dataclass
class EngineDeps:
    """What the engine works with; built once per worker process."""

    sessions: sessionmaker[Session]
    occurrences: NsOccurrenceService
    vnfm: VnfmClient
    adapter_for: Callable[[str], VimAdapter]
    """The VIM adapter of a registered VIM id."""
    placer: Callable[[], Placer]
    """A placer over the registered VIMs as they are now."""
    vim_type_of: Callable[[str], str]
    default_vim_id: str
    """The VIM a VNF goes to when its InstantiateVnfRequest names none."""
    vnf_op_timeout: float = 600.0


@dataclass
class StepContext:
    """One claimed occurrence as the engine drives it."""

    op_id: str
    worker: str
    cancel_requested: Callable[[], bool]


def network_name(ns_instance_id: str, vl_index: int) -> str:
    """The VIM network of the NS virtual link at ``vl_index`` of the flavour."""
    return f"ns-{ns_instance_id[:8]}-vl{vl_index}"


def _vnf_name(ns_instance_id: str, key: str) -> str:
    # Unique per NS instance and VNF: how a VNF created before its id was recorded is found.
    return f"ns-{ns_instance_id}-{key}"


def _settled_ok(op: VnfLcmOpOcc) -> bool:
    return op.operationState is LcmOperationStateType.COMPLETED


def _detail(op: VnfLcmOpOcc) -> str:
    error = str(op.error.get("detail", op.error)) if op.error else "no error given"
    return f"VNF LCM operation {op.id} ({op.operation.value}) is {op.operationState.value}: {error}"


class _Run:
    """One execution of an occurrence: its record, kept in memory and written through."""

    def __init__(self, deps: EngineDeps, ctx: StepContext) -> None:
        self.deps = deps
        self.ctx = ctx
        self.lock = threading.Lock()
        with deps.sessions() as session:
            row = session.get(NsLcmOpOccRow, ctx.op_id)
            if row is None:
                raise ExecutionError(f"NS LCM operation occurrence {ctx.op_id} is gone", status=404)
            self.operation = row.operation
            self.params: Json = dict(row.operation_params or {})
            self.progress: Json = dict(row.progress or {})
            self.changes: Json = dict(row.resource_changes or {})
            ns = session.get(NsInstanceRow, row.ns_instance_id)
            if ns is None:
                raise ExecutionError(f"NS instance {row.ns_instance_id} is gone", status=404)
            self.ns_id = ns.id
            self.ns_vnfs: list[Json] = [dict(v) for v in ns.vnf_instances or ()]
            self.ns_vls: list[Json] = [dict(v) for v in ns.virtual_links or ()]
            self.ns_flavour_id = ns.flavour_id
            nsd_row = session.get(NsdRow, ns.nsd_info_id)
            if nsd_row is None or nsd_row.nsd is None:
                raise ExecutionError(f"the NSD of NS instance {ns.id} is gone", status=409)
            self.nsd = Nsd.model_validate(nsd_row.nsd)

    # -- the record ------------------------------------------------------------------------

    def save(self, ns_update: Callable[[NsInstanceRow], None] | None = None) -> None:
        """Write the record (thread-safe; the VNFs of a group run in parallel)."""
        with self.lock:
            # Deep copies: the VNFs of a group update their entries from their own threads.
            progress = copy.deepcopy(self.progress)
            changes = copy.deepcopy(self.changes)
        self.deps.occurrences.record(
            self.ctx.op_id,
            self.ctx.worker,
            progress=progress,
            resource_changes=changes,
            ns_update=ns_update,
        )

    def skips(self, key: str) -> bool:
        """True if a "continue" asked to leave out this step (the one that failed)."""
        if not self.progress.get("continue") or self.progress.get("failed") != key:
            return False
        with self.lock:
            skipped: list[str] = self.progress.setdefault("skipped", [])
            if key not in skipped:
                skipped.append(key)
        self.save()
        return True

    def failed_at(self, key: str) -> None:
        with self.lock:
            self.progress["failed"] = key
        self.save()

    def check_cancel(self, where: str) -> None:
        if self.ctx.cancel_requested():
            raise Cancelled(f"{self.operation} cancelled {where}")

    def vnf_state(self, key: str) -> Json:
        with self.lock:
            vnfs: Json = self.progress.setdefault("vnfs", {})
            entry: Json = vnfs.setdefault(key, {})
            return entry

    def set_vnf(self, key: str, **values: Any) -> None:
        with self.lock:
            self.progress.setdefault("vnfs", {}).setdefault(key, {}).update(values)
        self.save()

    def add_change(self, kind: str, entry: Json) -> None:
        """Add an AffectedVnf / AffectedVirtualLink; one per resource and changeType."""
        ident = "vnfInstanceId" if kind == "affectedVnfs" else "nsVirtualLinkInstanceId"

        def same(other: Json) -> bool:
            return bool(
                other.get(ident) == entry.get(ident)
                and other.get("changeType") == entry.get("changeType")
            )

        with self.lock:
            listed: list[Json] = self.changes.setdefault(kind, [])
            listed[:] = [e for e in listed if not same(e)] + [entry]

    # -- VNFM calls ------------------------------------------------------------------------

    def wait(self, op_id: str) -> VnfLcmOpOcc:
        try:
            return self.deps.vnfm.wait_for_op(op_id, self.deps.vnf_op_timeout)
        except VnfmError as exc:
            raise ExecutionError(
                f"waiting for VNF LCM operation {op_id}: {exc}", retryable=True
            ) from None

    def settle(self, op_id: str, *, retry_failed: bool = True) -> VnfLcmOpOcc:
        """The recorded VNFM operation once settled; a FAILED_TEMP one is retried first."""
        op = self.wait(op_id)
        if op.operationState is LcmOperationStateType.FAILED_TEMP and retry_failed:
            try:
                self.deps.vnfm.retry(op_id)
            except VnfmError as exc:
                raise ExecutionError(f"retrying VNF LCM operation {op_id}: {exc}") from None
            op = self.wait(op_id)
        return op


def _flavour(nsd: Nsd, flavour_id: str | None) -> NsDeploymentFlavour:
    try:
        return nsd.flavour(flavour_id or "")
    except KeyError:
        raise ExecutionError(
            f"NSD {nsd.nsd_id} has no flavour {flavour_id!r}", status=422
        ) from None


def _package(session: Session, vnfd_id: str) -> VnfPackageRow:
    row = session.scalar(
        select(VnfPackageRow).where(
            VnfPackageRow.vnfd_id == vnfd_id, VnfPackageRow.onboarding_state == "ONBOARDED"
        )
    )
    if row is None or row.vnfd is None:
        raise ExecutionError(f"no onboarded VNF package has VNFD {vnfd_id}", status=422)
    return row


class Engine:
    """Runs and rolls back NS LCM operation occurrences."""

    def __init__(self, deps: EngineDeps) -> None:
        self.deps = deps

    def run(self, ctx: StepContext) -> Callable[[NsInstanceRow], None]:
        """Do (or resume) the operation; what to make of the NS instance once it completed.

        Raises ExecutionError (or Cancelled) when a step fails; the record says how far it got.
        """
        run = _Run(self.deps, ctx)
        if run.operation == "INSTANTIATE":
            return self._instantiate(run)
        if run.operation == "TERMINATE":
            return self._terminate(run)
        if run.operation == "SCALE":
            return self._scale(run)
        if run.operation == "HEAL":
            return self._heal(run)
        return self._update(run)

    def rollback(self, ctx: StepContext) -> None:
        run = _Run(self.deps, ctx)
        if run.operation != "INSTANTIATE":  # the state machine offers rollback for it only
            raise ExecutionError(f"{run.operation} cannot be rolled back", status=409)
        self._undo_instantiate(run)

    # -- INSTANTIATE -----------------------------------------------------------------------

    def _plan(self, run: _Run) -> Json:
        """Which VNFs go where and which networks they need; computed once, then recorded."""
        planned: Json | None = run.progress.get("plan")
        if planned is not None:
            return planned
        flavour = _flavour(run.nsd, str(run.params.get("nsFlavourId")))
        level = flavour.instantiation_level(run.params.get("nsInstantiationLevelId"))
        vim_ids: Json = dict((run.params.get("additionalParamsForNs") or {}).get(VIM_IDS) or {})
        placer = self.deps.placer()
        vnfs: list[Json] = []
        order = flavour.instantiation_order()
        with self.deps.sessions() as session:
            for group, profile_ids in enumerate(order):
                for profile_id in profile_ids:
                    profile = flavour.vnf_profile(profile_id)
                    count = level.vnf_instances.get(profile.id, profile.min_number_of_instances)
                    if (
                        not profile.min_number_of_instances
                        <= count
                        <= profile.max_number_of_instances
                    ):
                        raise ExecutionError(
                            f"VNF profile {profile.id}: level {level.id} asks for {count} "
                            f"instance(s), outside {profile.min_number_of_instances}.."
                            f"{profile.max_number_of_instances}",
                            status=422,
                        )
                    package = _package(session, profile.vnfd_id)
                    vnfd = Vnfd.model_validate(package.vnfd)
                    try:
                        start = vnf_start(vnfd, profile, level.vnf_scale_levels.get(profile.id, {}))
                    except KeyError as exc:
                        raise ExecutionError(
                            f"VNF profile {profile.id}: VNFD {vnfd.vnfd_id} has no flavour or "
                            f"instantiation level {exc}",
                            status=422,
                        ) from None
                    demand = demand_of(
                        vnfd, profile.flavour_id, start.instantiation_level_id, instances=count
                    )
                    wanted = vim_ids.get(profile.id)
                    try:
                        placed = placer.place(
                            PlacementRequest(
                                profile.id,
                                demand,
                                vim_ids=frozenset({wanted}) if wanted else frozenset(),
                            )
                        )
                    except PlacementRefused as exc:
                        raise ExecutionError(exc.detail, status=409, retryable=True) from None
                    for n in range(count):
                        vnfs.append(
                            {
                                "key": f"{profile.id}-{n}",
                                "profileId": profile.id,
                                "vnfdId": profile.vnfd_id,
                                "group": group,
                                "vimId": placed.vim.vim_id,
                                "levelId": start.instantiation_level_id,
                                "scaleAfter": start.scale_after,
                            }
                        )
        vls: list[Json] = []
        for index, vl in enumerate(flavour.virtual_links):
            on = sorted(
                {
                    str(v["vimId"])
                    for v in vnfs
                    if vl.id in flavour.vnf_profile(str(v["profileId"])).virtual_links.values()
                }
            )
            cidrs = vl.cidrs
            for vim_id in on:
                if not cidrs:
                    raise ExecutionError(
                        f"NS virtual link {vl.id} has no IPv4/IPv6 cidr", status=422
                    )
                vls.append(
                    {
                        "key": f"{vl.id}@{vim_id}",
                        "vlId": vl.id,
                        "vimId": vim_id,
                        "network": network_name(run.ns_id, index),
                        "cidr": cidrs[0],
                    }
                )
        plan: Json = {
            "flavourId": flavour.flavour_id,
            "levelId": level.id,
            "vnfs": vnfs,
            "vls": vls,
        }
        run.progress["plan"] = plan
        run.save()
        return plan

    def _instantiate(self, run: _Run) -> Callable[[NsInstanceRow], None]:
        plan = self._plan(run)
        flavour = _flavour(run.nsd, plan["flavourId"])
        for vl in plan["vls"]:
            run.check_cancel("before creating the NS virtual links")
            self._ensure_vl(run, vl)
        groups = sorted({int(v["group"]) for v in plan["vnfs"]})
        for group in groups:
            run.check_cancel("between VNF groups")
            # "continue": the VNF that failed is left out; the NS completes partially.
            members = [
                v for v in plan["vnfs"] if v["group"] == group and not run.skips(str(v["key"]))
            ]
            failures: list[tuple[str, ExecutionError]] = []
            failure: ExecutionError
            with ThreadPoolExecutor(max_workers=max(1, len(members))) as pool:
                futures = {
                    v["key"]: pool.submit(self._vnf_up, run, flavour, plan, v) for v in members
                }
                for key, future in futures.items():
                    try:
                        future.result()
                    except ExecutionError as exc:
                        failures.append((key, exc))
            for key, failure in failures:
                # A VNF that is up but failed to reach its levels stays in the NS on
                # "continue": only its scaling step is left out (`_reach_levels`).
                if run.progress.get("failed") != _levels_step(key):
                    run.failed_at(key)
                raise failure
        vnf_records = self._vnf_records(run, plan)
        vl_records = self._vl_records(plan)
        at_level = flavour.scale_levels_at(flavour.instantiation_level(plan["levelId"]))
        scale_status = [
            {"nsScalingAspectId": aspect_id, "nsScaleLevelId": str(n)}
            for aspect_id, n in at_level.items()
        ]

        def complete(ns: NsInstanceRow) -> None:
            ns.flavour_id = plan["flavourId"]
            ns.instantiation_level_id = plan["levelId"]
            ns.vnf_instances = vnf_records
            ns.virtual_links = vl_records
            ns.scale_status = scale_status

        return complete

    def _ensure_vl(self, run: _Run, vl: Json) -> None:
        created: Json = run.progress.setdefault("vls", {})
        adapter = self.deps.adapter_for(str(vl["vimId"]))
        owner = Ownership(vnf_instance_id=run.ns_id, lcm_op_id=run.ctx.op_id)
        try:
            adapter.ensure_network(NetworkSpec(name=vl["network"], cidr=vl["cidr"]), owner)
        except Exception as exc:
            raise ExecutionError(
                f"creating NS virtual link {vl['vlId']} on VIM {vl['vimId']}: {exc}",
                retryable=True,
            ) from None
        if created.get(vl["key"]) != "CREATED":
            created[vl["key"]] = "CREATED"
            run.add_change(
                "affectedVls",
                {
                    "nsVirtualLinkInstanceId": vl["key"],
                    "nsVirtualLinkDescId": vl["vlId"],
                    "vlProfileId": vl["vlId"],
                    "changeType": "ADD",
                    "changeResult": "COMPLETED",
                },
            )
            run.save()

    def _ext_links(
        self, flavour: NsDeploymentFlavour, plan: Json, profile: VnfProfile, vnfd: Vnfd, vim_id: str
    ) -> list[Json]:
        networks = {(vl["vlId"], vl["vimId"]): vl["network"] for vl in plan["vls"]}
        vnf_flavour = vnfd.flavour(profile.flavour_id)
        links: list[Json] = []
        for requirement, vl_id in sorted(profile.virtual_links.items()):
            cps = [cp.id for cp in vnf_flavour.ext_cps if cp.external_requirement == requirement]
            if not cps:
                raise ExecutionError(
                    f"VNF profile {profile.id}: VNFD {vnfd.vnfd_id} flavour {profile.flavour_id} "
                    f"exposes no external CP for requirement {requirement}",
                    status=422,
                )
            links.append(
                {
                    "id": f"{vl_id}",
                    "resourceId": networks[(vl_id, vim_id)],
                    "extCps": [{"cpdId": cp} for cp in cps],
                }
            )
        return links

    def _vnf_up(self, run: _Run, flavour: NsDeploymentFlavour, plan: Json, vnf: Json) -> None:
        key = str(vnf["key"])
        vnfm = self.deps.vnfm
        profile = flavour.vnf_profile(str(vnf["profileId"]))
        state = run.vnf_state(key)
        if state.get("state") == "INSTANTIATED":
            self._reach_levels(run, vnf)
            return
        params: Json = next(
            (
                p
                for p in run.params.get("additionalParamsForVnf") or ()
                if p.get("vnfProfileId") == profile.id
            ),
            {},
        )
        name = _vnf_name(run.ns_id, key)
        try:
            instance_id = state.get("vnfInstanceId")
            if instance_id is None:
                # Created by an attempt that died before recording it? Then adopt it.
                found = vnfm.list_vnf_instances(f"(eq,vnfInstanceName,{name})")
                instance = (
                    found[0]
                    if found
                    else vnfm.create_vnf_instance(
                        profile.vnfd_id,
                        name,
                        params.get("vnfInstanceDescription") or f"VNF {key} of NS {run.ns_id}",
                        {**(params.get("metadata") or {}), "nsInstanceId": run.ns_id},
                    )
                )
                instance_id = instance.id
                run.set_vnf(key, vnfInstanceId=instance_id, state="CREATED")
            instance = vnfm.get_vnf_instance(instance_id)
            op_id = state.get("opId")
            if instance.instantiationState.value != "INSTANTIATED":
                op: VnfLcmOpOcc | None = run.settle(op_id) if op_id else None
                if op is None or op.operationState in (
                    LcmOperationStateType.ROLLED_BACK,
                    LcmOperationStateType.FAILED,
                ):
                    run.check_cancel(f"before instantiating VNF {key}")
                    request = self._instantiate_request(run, flavour, plan, profile, vnf, params)
                    op_id = vnfm.instantiate(instance_id, request)
                    run.set_vnf(key, opId=op_id)
                    op = run.settle(op_id, retry_failed=False)
                if not _settled_ok(op):
                    raise ExecutionError(f"VNF {key}: {_detail(op)}", status=500, retryable=True)
        except VnfmError as exc:
            raise ExecutionError(f"VNF {key}: {exc}", retryable=True) from None
        run.set_vnf(key, state="INSTANTIATED")
        try:
            connectivity = _ext_connectivity(vnfm.get_vnf_instance(instance_id))
        except VnfmError as exc:
            raise ExecutionError(f"VNF {key}: {exc}", retryable=True) from None
        run.add_change(
            "affectedVnfs",
            {
                "vnfInstanceId": instance_id,
                "vnfdId": profile.vnfd_id,
                "vnfProfileId": profile.id,
                "vnfName": name,
                "changeType": "INSTANTIATE",
                "changeResult": "COMPLETED",
                "changedExtConnectivity": connectivity,
            },
        )
        run.save()
        self._reach_levels(run, vnf)

    def _reach_levels(self, run: _Run, vnf: Json) -> None:
        """Scale a VNF to the levels its NS level asks for that no VNF level gave it."""
        scale_after: Json = vnf.get("scaleAfter") or {}
        if not scale_after:
            return
        key = str(vnf["key"])
        instance_id = str(run.vnf_state(key)["vnfInstanceId"])
        request = _to_levels(scale_after)
        self._vnf_op(
            run, _levels_step(key), partial(self.deps.vnfm.scale_to_level, instance_id, request)
        )

    def _instantiate_request(
        self,
        run: _Run,
        flavour: NsDeploymentFlavour,
        plan: Json,
        profile: VnfProfile,
        vnf: Json,
        params: Json,
    ) -> InstantiateVnfRequest:
        with self.deps.sessions() as session:
            vnfd = Vnfd.model_validate(_package(session, profile.vnfd_id).vnfd)
        vim_id = str(vnf["vimId"])
        body: Json = {
            "flavourId": profile.flavour_id,
            "extVirtualLinks": self._ext_links(flavour, plan, profile, vnfd, vim_id),
        }
        if vim_id != self.deps.default_vim_id:
            body["vimConnectionInfo"] = {
                vim_id: {"vimId": vim_id, "vimType": self.deps.vim_type_of(vim_id)}
            }
        # Plans recorded before VNF start levels existed have no "levelId".
        level_id = vnf.get("levelId", profile.instantiation_level)
        if level_id is not None:
            body["instantiationLevelId"] = level_id
        for name in ("additionalParams", "extensions", "vnfConfigurableProperties"):
            if params.get(name):
                body[name] = params[name]
        return InstantiateVnfRequest.model_validate(body)

    def _vnf_records(self, run: _Run, plan: Json) -> list[Json]:
        records: list[Json] = []
        skipped = set(run.progress.get("skipped", []))
        for vnf in plan["vnfs"]:
            if vnf["key"] in skipped:
                continue
            instance_id = run.vnf_state(str(vnf["key"]))["vnfInstanceId"]
            instance = self.deps.vnfm.get_vnf_instance(instance_id)
            records.append(_vnf_record(instance, vnf, self._package_id(instance.vnfdId)))
        return records

    def _package_id(self, vnfd_id: str) -> str | None:
        with self.deps.sessions() as session:
            row = session.scalar(
                select(VnfPackageRow.id).where(
                    VnfPackageRow.vnfd_id == vnfd_id,
                    VnfPackageRow.onboarding_state == "ONBOARDED",
                )
            )
        return str(row) if row is not None else None

    @staticmethod
    def _vl_records(plan: Json) -> list[Json]:
        by_vl: dict[str, Json] = {}
        for vl in plan["vls"]:
            record = by_vl.setdefault(
                vl["vlId"],
                {
                    "id": vl["vlId"],
                    "nsVirtualLinkDescId": vl["vlId"],
                    "nsVirtualLinkProfileId": vl["vlId"],
                    "resourceHandle": [],
                },
            )
            record["resourceHandle"].append(
                {
                    "vimId": vl["vimId"],
                    "resourceId": vl["network"],
                    "vimLevelResourceType": "network",
                }
            )
        return list(by_vl.values())

    def _undo_instantiate(self, run: _Run) -> None:
        plan: Json | None = run.progress.get("plan")
        if plan is None:
            return  # nothing was planned, so nothing was created
        for vnf in sorted(plan["vnfs"], key=lambda v: (-int(v["group"]), str(v["key"]))):
            self._vnf_down(run, str(vnf["key"]))
        for vl in reversed(plan["vls"]):
            self._delete_vl(run, vl["vimId"], vl["network"], vl["vlId"], vl["key"])

    def _vnf_down(self, run: _Run, key: str, instance_id: str | None = None) -> None:
        """Terminate (or roll back) and delete one VNF instance; idempotent."""
        vnfm = self.deps.vnfm
        state = run.vnf_state(key)
        instance_id = instance_id or state.get("vnfInstanceId")
        if instance_id is None or state.get("state") == "DELETED":
            return
        run.check_cancel(f"before removing VNF {key}")
        try:
            try:
                instance = vnfm.get_vnf_instance(instance_id)
            except NotFound:
                run.set_vnf(key, state="DELETED")
                return
            connectivity = _ext_connectivity(instance)
            op_id = state.get("opId")
            if op_id:
                op = run.settle(op_id, retry_failed=False)
                if op.operationState is LcmOperationStateType.FAILED_TEMP:
                    vnfm.rollback(op_id)
                    op = run.wait(op_id)
                    if op.operationState is not LcmOperationStateType.ROLLED_BACK:
                        raise ExecutionError(f"VNF {key}: rollback: {_detail(op)}", retryable=True)
                instance = vnfm.get_vnf_instance(instance_id)
            if instance.instantiationState.value == "INSTANTIATED":
                down_id = state.get("downOpId")
                if down_id is None:
                    down_id = vnfm.terminate(
                        instance_id,
                        TerminateVnfRequest.model_validate({"terminationType": "FORCEFUL"}),
                    )
                    run.set_vnf(key, downOpId=down_id)
                op = run.settle(down_id)
                if not _settled_ok(op):
                    raise ExecutionError(f"VNF {key}: {_detail(op)}", retryable=True)
            vnfm.delete_vnf_instance(instance_id)
        except VnfmError as exc:
            raise ExecutionError(f"VNF {key}: {exc}", retryable=True) from None
        run.set_vnf(key, state="DELETED")
        run.add_change(
            "affectedVnfs",
            {
                "vnfInstanceId": instance_id,
                "vnfdId": str(state.get("vnfdId") or instance.vnfdId),
                "vnfProfileId": key.rsplit("-", 1)[0],
                "vnfName": _vnf_name(run.ns_id, key),
                "changeType": "REMOVE",
                "changeResult": "COMPLETED",
                "changedExtConnectivity": connectivity,
            },
        )
        run.save()

    def _delete_vl(self, run: _Run, vim_id: str, network: str, vl_id: str, key: str) -> None:
        created: Json = run.progress.setdefault("vls", {})
        if created.get(key) == "DELETED":
            return
        try:
            self.deps.adapter_for(vim_id).delete_network(network)
        except Exception as exc:
            raise ExecutionError(
                f"deleting NS virtual link {vl_id} on VIM {vim_id}: {exc}", retryable=True
            ) from None
        created[key] = "DELETED"
        run.add_change(
            "affectedVls",
            {
                "nsVirtualLinkInstanceId": key,
                "nsVirtualLinkDescId": vl_id,
                "vlProfileId": vl_id,
                "changeType": "DELETE",
                "changeResult": "COMPLETED",
            },
        )
        run.save()

    # -- TERMINATE -------------------------------------------------------------------------

    def _order(self, run: _Run) -> dict[str, int]:
        flavour = _flavour(run.nsd, run.ns_flavour_id)
        return {p: g for g, group in enumerate(flavour.instantiation_order()) for p in group}

    def _terminate(self, run: _Run) -> Callable[[NsInstanceRow], None]:
        order = self._order(run)
        vnfs = sorted(
            run.ns_vnfs, key=lambda v: (-order.get(str(v.get("vnfProfileId")), 0), str(v["id"]))
        )
        for vnf in vnfs:
            key = str(vnf.get("nsVnfKey") or vnf["id"])
            if run.skips(key):
                continue
            run.vnf_state(key).setdefault("vnfdId", vnf.get("vnfdId"))
            try:
                self._vnf_down(run, key, str(vnf["id"]))
            except ExecutionError:
                run.failed_at(key)
                raise
        for vl in run.ns_vls:
            for handle in vl.get("resourceHandle", []):
                key = f"{vl['nsVirtualLinkDescId']}@{handle['vimId']}"
                self._delete_vl(run, handle["vimId"], handle["resourceId"], vl["id"], key)

        def complete(ns: NsInstanceRow) -> None:
            ns.vnf_instances = []
            ns.virtual_links = []
            ns.scale_status = []

        return complete

    # -- SCALE, HEAL, UPDATE ---------------------------------------------------------------

    def _vnf_op(self, run: _Run, key: str, start: Callable[[], str]) -> None:
        """One VNF operation, recorded so a retry waits for it rather than starting another."""
        state = run.vnf_state(key)
        if state.get("state") == "DONE" or run.skips(key):
            return
        run.check_cancel(f"before VNF step {key}")
        try:
            op_id = state.get("opId")
            if op_id is None:
                op_id = start()
                run.set_vnf(key, opId=op_id)
            op = run.settle(op_id)
        except VnfmError as exc:
            run.failed_at(key)
            raise ExecutionError(f"VNF step {key}: {exc}", retryable=True) from None
        if not _settled_ok(op):
            run.failed_at(key)
            raise ExecutionError(f"VNF step {key}: {_detail(op)}", retryable=True)
        run.set_vnf(key, state="DONE")

    def _refresh(self, run: _Run) -> Callable[[NsInstanceRow], None]:
        """The NS instance's VNF records re-read from the VNFM (after scale, heal)."""
        fresh: list[Json] = []
        for vnf in run.ns_vnfs:
            try:
                instance = self.deps.vnfm.get_vnf_instance(str(vnf["id"]))
            except VnfmError:
                fresh.append(vnf)
                continue
            fresh.append(
                {**vnf, **instance.model_dump(mode="json", by_alias=True, exclude_none=True)}
            )

        def complete(ns: NsInstanceRow) -> None:
            ns.vnf_instances = fresh

        return complete

    def _scale(self, run: _Run) -> Callable[[NsInstanceRow], None]:
        vnfm = self.deps.vnfm
        if run.params["scaleType"] == "SCALE_VNF":
            for i, data in enumerate(run.params.get("scaleVnfData") or ()):
                vnf_id = str(data["vnfInstanceId"])
                kind = data["scaleVnfType"]
                if kind in ("SCALE_OUT", "SCALE_IN"):
                    by_step = data["scaleByStepData"]
                    request: Any = ScaleVnfRequest.model_validate(
                        {
                            "type": kind,
                            "aspectId": by_step["aspectId"],
                            "numberOfSteps": by_step.get("numberOfSteps", 1),
                            **(
                                {"additionalParams": by_step["additionalParams"]}
                                if by_step.get("additionalParams")
                                else {}
                            ),
                        }
                    )
                    self._vnf_op(run, f"scale-{i}", partial(vnfm.scale, vnf_id, request))
                else:
                    to_level = data["scaleToLevelData"]
                    body: Json = {}
                    if to_level.get("vnfInstantiationLevelId"):
                        body["instantiationLevelId"] = to_level["vnfInstantiationLevelId"]
                    if to_level.get("vnfScaleInfo"):
                        body["scaleInfo"] = to_level["vnfScaleInfo"]
                    level_request = ScaleVnfToLevelRequest.model_validate(body)
                    self._vnf_op(
                        run,
                        f"scale-{i}",
                        partial(vnfm.scale_to_level, vnf_id, level_request),
                    )
            return self._refresh(run)
        flavour = _flavour(run.nsd, run.ns_flavour_id)
        data = run.params["scaleNsData"]
        targets: dict[str, int] = {}
        by_steps = data.get("scaleNsByStepsData")
        with self.deps.sessions() as session:
            ns = session.get(NsInstanceRow, run.ns_id)
            current = {
                s["nsScalingAspectId"]: int(s["nsScaleLevelId"])
                for s in (ns.scale_status if ns else [])
            }
        if by_steps is not None:
            sign = 1 if by_steps["scalingDirection"] == "SCALE_OUT" else -1
            aspect_id = by_steps["aspectId"]
            targets[aspect_id] = current.get(aspect_id, 0) + sign * int(
                by_steps.get("numberOfSteps", 1)
            )
        else:
            for info in data["scaleNsToLevelData"].get("nsScaleInfo") or ():
                targets[info["nsScalingAspectId"]] = int(info["nsScaleLevelId"])
        # What each step asks of the VNFs: (step name, VNF profile -> VNF aspect -> level).
        wanted: list[tuple[str, dict[str, dict[str, int]]]] = [
            (aspect_id, flavour.scaling_aspect(aspect_id).level(target).vnf_scale_levels)
            for aspect_id, target in sorted(targets.items())
        ]
        level_id = (data.get("scaleNsToLevelData") or {}).get("nsInstantiationLevel")
        if level_id is not None:
            wanted.append((str(level_id), flavour.instantiation_level(level_id).vnf_scale_levels))
        for step, vnf_scale_levels in wanted:
            for profile_id, scale_levels in sorted(vnf_scale_levels.items()):
                for vnf in run.ns_vnfs:
                    if vnf.get("vnfProfileId") != profile_id:
                        continue
                    request_level = _to_levels(scale_levels)
                    vnf_id = str(vnf["id"])
                    self._vnf_op(
                        run,
                        f"{step}-{vnf_id}",
                        partial(vnfm.scale_to_level, vnf_id, request_level),
                    )
        refresh = self._refresh(run)
        status = {**current, **targets}
        if level_id is not None:
            status.update(flavour.scale_levels_at(flavour.instantiation_level(level_id)))

        def complete(ns: NsInstanceRow) -> None:
            refresh(ns)
            if level_id is not None:
                ns.instantiation_level_id = str(level_id)
            ns.scale_status = [
                {"nsScalingAspectId": a, "nsScaleLevelId": str(n)}
                for a, n in sorted(status.items())
            ]

        return complete

    def _heal(self, run: _Run) -> Callable[[NsInstanceRow], None]:
        vnfm = self.deps.vnfm
        for i, data in enumerate(run.params.get("healVnfData") or ()):
            body: Json = {}
            if data.get("cause"):
                body["cause"] = data["cause"]
            if data.get("additionalParams"):
                body["additionalParams"] = data["additionalParams"]
            request = HealVnfRequest.model_validate(body)
            vnf_id = str(data["vnfInstanceId"])
            self._vnf_op(run, f"heal-{i}", partial(vnfm.heal, vnf_id, request))
        return self._refresh(run)

    def _update(self, run: _Run) -> Callable[[NsInstanceRow], None]:
        kind = run.params.get("updateType")
        if kind == "REMOVE_VNF":
            removed = {str(v) for v in run.params.get("removeVnfInstanceId") or ()}
            for vnf_id in sorted(removed):
                self._vnf_down(run, vnf_id, vnf_id)

            def complete(ns: NsInstanceRow) -> None:
                ns.vnf_instances = [v for v in ns.vnf_instances if v.get("id") not in removed]

            return complete
        if kind == "ADD_VNF":
            added: list[Json] = []
            for data in run.params.get("addVnfInstance") or ():
                try:
                    instance = self.deps.vnfm.get_vnf_instance(str(data["vnfInstanceId"]))
                except VnfmError as exc:
                    raise ExecutionError(
                        f"VNF instance {data['vnfInstanceId']}: {exc}", status=422
                    ) from None
                vnf = {"profileId": data["vnfProfileId"], "key": instance.id}
                added.append(_vnf_record(instance, vnf, self._package_id(instance.vnfdId)))

            def add(ns: NsInstanceRow) -> None:
                ns.vnf_instances = [*ns.vnf_instances, *added]

            return add
        if kind == "CHANGE_VNF_DF":
            return self._change_vnf_flavours(run)
        raise ExecutionError(f"updateType {kind}: not supported", status=422)

    def _change_vnf_flavours(self, run: _Run) -> Callable[[NsInstanceRow], None]:
        """CHANGE_VNF_DF: each VNF's ChangeVnfFlavour on the VNFM, one after the other.

        Each is one recorded VNF step (`_vnf_op`), so a retry waits for (or retries) the
        VNFM operation it started instead of starting another; the NS instance's VNF records
        are read again from the VNFM once all are done.
        """
        vnfm = self.deps.vnfm
        members = {str(vnf.get("id")): vnf for vnf in run.ns_vnfs}
        for i, data in enumerate(run.params.get("changeVnfFlavourData") or ()):
            vnf_id = str(data["vnfInstanceId"])
            request = ChangeVnfFlavourRequest.model_validate(
                {key: value for key, value in data.items() if key != "vnfInstanceId"}
            )
            self._vnf_op(run, f"change-df-{i}", partial(vnfm.change_flavour, vnf_id, request))
            try:
                instance = vnfm.get_vnf_instance(vnf_id)
            except VnfmError as exc:
                raise ExecutionError(f"VNF instance {vnf_id}: {exc}", retryable=True) from None
            vnf = members.get(vnf_id, {})
            run.add_change(
                "affectedVnfs",
                {
                    "vnfInstanceId": vnf_id,
                    "vnfdId": instance.vnfdId,
                    "vnfProfileId": str(vnf.get("vnfProfileId")),
                    "vnfName": instance.vnfInstanceName or vnf_id,
                    "changeType": "CHANGE_FLAVOUR",
                    "changeResult": "COMPLETED",
                    "changedExtConnectivity": _ext_connectivity(instance),
                },
            )
            run.save()
        return self._refresh(run)


def _levels_step(vnf_key: str) -> str:
    """The progress key of the scale that brings a new VNF to its NS level's VNF levels."""
    return f"{vnf_key}-levels"


def _to_levels(scale_levels: dict[str, int]) -> ScaleVnfToLevelRequest:
    """A scale to level request that puts these VNF aspects at these levels."""
    info = [{"aspectId": a, "scaleLevel": n} for a, n in sorted(scale_levels.items())]
    return ScaleVnfToLevelRequest.model_validate({"scaleInfo": info})


def _ext_connectivity(instance: VnfInstance) -> list[Json]:
    """The VNF's external links (AffectedVnf.changedExtConnectivity of an add or remove)."""
    info = instance.instantiatedVnfInfo
    if info is None or not info.extVirtualLinkInfo:
        return []
    return [
        link.model_dump(mode="json", by_alias=True, exclude_none=True)
        for link in info.extVirtualLinkInfo
    ]


def _vnf_record(instance: VnfInstance, vnf: Json, package_id: str | None) -> Json:
    """The NsInstance.vnfInstance entry: the VNFM's VnfInstance plus its place in the NS.

    SOL005's VnfInstance also has vnfPkgId (SOL003 v3's has not): the package of its VNFD.
    """
    record: Json = instance.model_dump(mode="json", by_alias=True, exclude_none=True)
    record["vnfProfileId"] = vnf["profileId"]
    record["nsVnfKey"] = vnf["key"]
    if package_id is not None:
        record.setdefault("vnfPkgId", package_id)
    return record
