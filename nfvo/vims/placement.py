"""Placement: which registered VIM a VNF profile goes on (for the NS orchestration).

How it decides, for one `PlacementRequest`:

1. Constraints. A VIM is a candidate only if its vimType is allowed (``vim_types``), it is
   one of the VIMs the request names (``vim_ids``, e.g. the VIM selection of an
   InstantiateNsRequest), it is in the required ``zone`` and carries every required label.
2. Capacity. The profile's demand (`demand_of`: vCPU and memory of every VNFC of the flavour
   at the instantiation level, times the number of VNF instances) must fit in what is free on
   the VIM: ``total x allocation ratio - allocated``, as granting checks it
   (`nfvo.grant.placement.check_capacity`), counting what this `Placer` already placed.
3. Choice. Of the VIMs left, the one with the most vCPU free after placing, then the most
   memory free, then by name and id, so the same inputs always give the same VIM and load
   spreads over VIMs.

If none is left, `PlacementRefused` lists every VIM and why it was rejected.

Use: ``placer = Placer.from_directory(vims, policy)`` once per NS operation, then
``placer.place(request)`` per VNF profile; the placer books each placed demand, so the
profiles of one NS do not together over-commit a VIM that none of them has used yet.
``vims`` is the service's `RegisteredVims` (``app.state.vims``), ``policy`` the service's
allocation ratios (``GrantService.policy``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from descriptors.vnfd import Vnfd
from nfvo.grant.placement import (
    CapacityPolicy,
    GrantRejected,
    VimCapacity,
    VimChoice,
    check_capacity,
    vnfd_resources,
)
from nfvo.vims.directory import RegisteredVims


@dataclass(frozen=True)
class Demand:
    """What a VNF profile needs from a VIM."""

    vcpu: float
    memory_mib: int

    def __add__(self, other: Demand) -> Demand:
        return Demand(self.vcpu + other.vcpu, self.memory_mib + other.memory_mib)


def demand_of(
    vnfd: Vnfd, flavour_id: str, instantiation_level_id: str | None = None, *, instances: int = 1
) -> Demand:
    """vCPU and memory of ``instances`` VNF instances of a flavour at an instantiation level.

    The level's VNFC counts per VDU, and for a VDU it does not name its minimum number of
    instances (as the VNFM instantiates it); without a level, the flavour's default one.
    ValueError for an unknown flavour or level.
    """
    try:
        flavour = vnfd.flavour(flavour_id)
    except KeyError:
        raise ValueError(f"VNFD {vnfd.vnfd_id} has no deployment flavour {flavour_id!r}") from None
    sizes = vnfd_resources(vnfd, flavour_id).vdus
    counts: Mapping[str, int] = {}
    if flavour.instantiation_levels:
        try:
            counts = flavour.instantiation_level(instantiation_level_id).vdu_instances
        except KeyError:
            raise ValueError(
                f"flavour {flavour_id} of VNFD {vnfd.vnfd_id} has no instantiation level "
                f"{instantiation_level_id!r}"
            ) from None
    vcpu = 0.0
    memory = 0
    for vdu in flavour.vdus:
        count = counts.get(vdu.id, vdu.vdu_profile.min_number_of_instances) * instances
        vcpu += sizes[vdu.id].vcpu * count
        memory += sizes[vdu.id].memory_mib * count
    return Demand(vcpu, memory)


@dataclass(frozen=True)
class PlacementRequest:
    """One VNF profile to place, and the constraints on where it may go."""

    profile_id: str
    demand: Demand
    vim_types: frozenset[str] = frozenset()
    """Allowed vimTypes; empty: any."""
    vim_ids: frozenset[str] = frozenset()
    """Only these VIMs; empty: any registered VIM."""
    zone: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels the VIM must carry, each with this value."""


@dataclass(frozen=True)
class Placement:
    """The VIM chosen for a profile, and what is left on it afterwards."""

    profile_id: str
    vim: VimCapacity
    vcpu_free_after: float
    memory_mib_free_after: int


class PlacementRefused(Exception):
    """No VIM can take the profile; `reasons` says why each VIM was rejected."""

    def __init__(self, profile_id: str, reasons: Mapping[str, str]) -> None:
        self.profile_id = profile_id
        self.reasons = dict(reasons)
        listed = "; ".join(f"{vim}: {why}" for vim, why in sorted(self.reasons.items()))
        self.detail = (
            f"no VIM can take VNF profile {profile_id}: {listed or 'no VIM is registered'}"
        )
        super().__init__(self.detail)


def _constraint_problem(request: PlacementRequest, vim: VimCapacity) -> str | None:
    if request.vim_ids and vim.vim_id not in request.vim_ids:
        return "not among the VIMs the request allows"
    if request.vim_types and vim.vim_type not in request.vim_types:
        allowed = ", ".join(sorted(request.vim_types))
        return f"vimType {vim.vim_type} is not one of {allowed}"
    if request.zone is not None and vim.zone != request.zone:
        return f"zone {vim.zone or 'none'} is not {request.zone}"
    for key, value in sorted(request.labels.items()):
        have = vim.labels.get(key)
        if have != value:
            return f"label {key}={value} required, VIM has {key}={have or '(none)'}"
    return None


def _free(vim: VimCapacity, booked: Demand, policy: CapacityPolicy) -> tuple[float, int]:
    inventory = vim.inventory
    cpu = inventory.cpu_total * policy.cpu_allocation_ratio - inventory.cpu_allocated - booked.vcpu
    memory = (
        int(inventory.memory_mib_total * policy.memory_allocation_ratio)
        - inventory.memory_mib_allocated
        - booked.memory_mib
    )
    return cpu, memory


class Placer:
    """Places VNF profiles one after the other, booking what it placed."""

    def __init__(
        self,
        candidates: Iterable[VimCapacity],
        policy: CapacityPolicy,
        *,
        unreadable: Mapping[str, str] | None = None,
    ) -> None:
        """`unreadable`: VIMs whose capacity could not be read (id -> why); never chosen."""
        self.candidates = sorted(candidates, key=lambda v: (v.name, v.vim_id))
        self.policy = policy
        self.unreadable = dict(unreadable or {})
        self.booked: dict[str, Demand] = {}

    @classmethod
    def from_directory(cls, vims: RegisteredVims, policy: CapacityPolicy) -> Placer:
        """A placer over every registered VIM as it is now."""
        found: list[VimCapacity] = []
        unreadable: dict[str, str] = {}
        for row in vims.rows():
            try:
                found.append(vims.capacity(row.id))
            except Exception as exc:
                unreadable[row.id] = f"its capacity cannot be read: {exc}"
        return cls(found, policy, unreadable=unreadable)

    def place(self, request: PlacementRequest) -> Placement:
        """The VIM for the profile (booked), or PlacementRefused listing every VIM's reason."""
        reasons = dict(self.unreadable)
        fitting: list[Placement] = []
        for vim in self.candidates:
            problem = _constraint_problem(request, vim)
            if problem is not None:
                reasons[vim.vim_id] = problem
                continue
            booked = self.booked.get(vim.vim_id, Demand(0.0, 0))
            policy = vim.policy(self.policy)
            held = vim.inventory.model_copy(
                update={
                    "cpu_allocated": vim.inventory.cpu_allocated + booked.vcpu,
                    "memory_mib_allocated": vim.inventory.memory_mib_allocated + booked.memory_mib,
                }
            )
            choice = VimChoice(vim.vim_id, vim.vim_id, vim.vim_type, vim.single_host)
            try:
                check_capacity(request.demand.vcpu, request.demand.memory_mib, held, choice, policy)
            except GrantRejected as exc:
                reasons[vim.vim_id] = exc.detail
                continue
            cpu_free, memory_free = _free(vim, booked + request.demand, policy)
            fitting.append(Placement(request.profile_id, vim, cpu_free, memory_free))
        if not fitting:
            raise PlacementRefused(request.profile_id, reasons)
        best = min(
            fitting,
            key=lambda p: (-p.vcpu_free_after, -p.memory_mib_free_after, p.vim.name, p.vim.vim_id),
        )
        self.booked[best.vim.vim_id] = (
            self.booked.get(best.vim.vim_id, Demand(0.0, 0)) + request.demand
        )
        return best


def place(
    request: PlacementRequest, candidates: Iterable[VimCapacity], policy: CapacityPolicy
) -> Placement:
    """One placement over the given VIMs (see `Placer` for several)."""
    return Placer(candidates, policy).place(request)
