"""Turn a typed VNFD and a VNF LCM request into the VIM resources it needs.

Everything here is pure: no I/O, no clock, no randomness, so the executor can
re-plan after a crash and get exactly the same specs (the VIM adapters are
create-or-get by name, which only works if names and specs are stable).

Replica counts follow SOL001/SOL003 scaling: a VDU has `initial_delta`
instances (else `vdu_profile.min_number_of_instances`) at scale level 0 of
every aspect, and each step 1..L of an aspect adds the instances its step
delta gives. An instantiation level names both scale levels (`scale_info`)
and VDU counts (`vdu_instances`); when a VNFD's two disagree, instantiation
uses the explicit `vdu_instances` (they are what the VNF provider wrote for
that level) and `check_consistency` reports the disagreement.

External connection points (SOL001 has two shapes, both handled):
- a `VnfExtCp` that re-exposes an internal virtual link: every VduCp on that
  link, of every VDU, attaches to the external network instead, and the
  internal link is not created;
- a `VduCp` exposed directly (`exposed_as`): only that VduCp attaches to the
  external network. Its internal link, if it has one, is still created
  unless no other VduCp remains on it. A directly exposed VduCp with no
  internal link and no external link in the request stays unconnected.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from descriptors.vnfd import (
    DeploymentFlavour,
    InstantiationLevel,
    ScalingAspect,
    Vdu,
    VduCp,
    VirtualLink,
    Vnfd,
)
from vim_adapters.interface import (
    NAME_PATTERN,
    ConnectionPointSpec,
    NetworkSpec,
    ProcessSpec,
    UnitSpec,
)

__all__ = [
    "CONFIG_FILE",
    "Connectivity",
    "ExternalLink",
    "PlanError",
    "ResourcePlan",
    "check_consistency",
    "external_cp_ids",
    "interface_name",
    "interface_names",
    "levels_for_instantiation",
    "network_name",
    "plan_connectivity",
    "plan_flavour",
    "plan_instantiation",
    "replicas_at",
    "replicas_for_instantiation",
    "scale",
    "scale_to_level",
    "unit_name",
]

CONFIG_FILE = "vnf-config.json"
"""Name of the generated configuration file every replica of a unit gets."""

_MAX_NAME = 63
_NAME = re.compile(NAME_PATTERN)
_IFNAME = re.compile(r"^[a-z][a-z0-9_]{0,14}$")
_MAX_IFNAME = 15
# Names a VDU's own interface must not take: the loopback exists in every
# namespace, and eth0 is the cluster network of every Kubernetes pod.
_RESERVED_IFNAMES = frozenset({"lo", "eth0"})
_HEX8 = re.compile(r"^[0-9a-f]{8}")
_MIB = 1024 * 1024
# Module-level so the signature can say "empty" without a mutable default.
_EMPTY: Mapping[str, Any] = MappingProxyType({})

Direction = Literal["SCALE_OUT", "SCALE_IN"]


class PlanError(Exception):
    """The VNFD or the request cannot be turned into VIM resources.

    `detail` is a sentence for a ProblemDetails `detail` that names the VNFD
    element (flavour, VDU, link, aspect, level, CP) at fault.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# ---------------------------------------------------------------- names


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _instance_tag(vnf_instance_id: str) -> str:
    compact = vnf_instance_id.replace("-", "").lower()
    if _HEX8.match(compact):
        return compact[:8]
    # Instance ids are UUIDs in practice; anything else still needs a stable,
    # name-safe tag, which a digest of the whole id gives.
    return _digest(vnf_instance_id, 8)


def _dns_label(prefix: str, local_id: str) -> str:
    """`prefix-<local id as a DNS label>`, hashed when the plain form would be invalid.

    The plain form is what docs/lcm.md promises and what an operator reads on
    the VIM; the hashed form only appears for ids that cannot be shown as
    they are (too long, or characters beyond '_'), and its digest of the
    original id keeps two such ids apart after truncation.
    """
    body = local_id.lower().replace("_", "-")
    plain = f"{prefix}-{body}" if prefix else body
    if _NAME.match(plain):
        return plain
    digest = _digest(local_id, 8)
    cleaned = re.sub(r"[^a-z0-9-]+", "-", body).strip("-")
    head = f"{prefix}-" if prefix else ""
    room = _MAX_NAME - len(head) - 1 - len(digest)
    cleaned = cleaned[:room].strip("-")
    return f"{head}{cleaned}-{digest}" if cleaned else f"{head}{digest}"


def network_name(vnf_instance_id: str, vl_id: str) -> str:
    """VIM name of an internal virtual link of one VNF instance (docs/lcm.md)."""
    return _dns_label(f"v{_instance_tag(vnf_instance_id)}", vl_id)


def unit_name(vnf_instance_id: str, vdu_id: str) -> str:
    """VIM name of the unit that runs one VDU of one VNF instance (docs/lcm.md)."""
    return _dns_label(f"v{_instance_tag(vnf_instance_id)}", vdu_id)


def _hashed_ifname(vdu_cp_id: str, base: str) -> str:
    digest = _digest(vdu_cp_id, 4)
    cleaned = re.sub(r"[^a-z0-9_]+", "_", base.lower()).strip("_")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"c{cleaned}"
    cleaned = cleaned[: _MAX_IFNAME - 1 - len(digest)].rstrip("_")
    return f"{cleaned}_{digest}"


def interface_name(vdu_cp_id: str, vdu_id: str) -> str:
    """Linux interface name (<= 15 chars) for a VduCp inside its VDU's replicas.

    CP ids conventionally repeat the VDU id (`nat_fastpath_inside`), so that
    prefix is dropped and `inside` is used when what remains is already a
    valid name. Anything else is sanitised, truncated and suffixed with a
    digest of the full CP id, so two CPs of one VDU do not meet after
    truncation. Two ids can still share a name (`inside` next to
    `nat_fastpath_inside`, or ids differing only in case); `interface_names`
    settles those for a whole VDU, and the planner uses it.
    """
    lowered = vdu_cp_id.lower()
    prefix = vdu_id.lower()
    short = lowered
    for separator in ("_", "-"):
        if prefix and lowered.startswith(prefix + separator) and len(lowered) > len(prefix) + 1:
            short = lowered[len(prefix) + 1 :]
            break
    if _IFNAME.match(short) and short not in _RESERVED_IFNAMES:
        return short
    return _hashed_ifname(vdu_cp_id, short)


def interface_names(vdu_id: str, vdu_cp_ids: Sequence[str]) -> dict[str, str]:
    """Interface names for all CPs of one VDU, guaranteed distinct.

    Each CP gets `interface_name` unless two CPs would share a name; all CPs
    of such a clash then take their digest form.
    """
    names = {cp: interface_name(cp, vdu_id) for cp in vdu_cp_ids}
    taken: dict[str, list[str]] = {}
    for cp, name in names.items():
        taken.setdefault(name, []).append(cp)
    for clashing in (cps for cps in taken.values() if len(cps) > 1):
        for cp in clashing:
            names[cp] = _hashed_ifname(cp, cp.removeprefix(vdu_id + "_"))
    if len(set(names.values())) != len(names):
        raise PlanError(f"VDU {vdu_id}: cannot give its connection points distinct interface names")
    return names


# ---------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExternalLink(_Model):
    """One `extVirtualLinks` entry of an InstantiateVnfRequest, reduced to what planning needs."""

    network: str = Field(
        min_length=1, description="existing VIM network (ExtVirtualLinkData.resourceId)"
    )
    ext_cps: list[str] = Field(
        min_length=1,
        description="ids of VnfExtCps (or directly exposed VduCps) attached to it (extCps[].cpdId)",
    )
    fixed_addresses: dict[str, list[str]] = Field(
        default_factory=dict,
        description="ext CP id -> one address per replica, in replica order",
    )

    @field_validator("fixed_addresses")
    @classmethod
    def _valid_addresses(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for cp, addresses in value.items():
            for address in addresses:
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise ValueError(
                        f"fixed address {address!r} of {cp} is not an IP address"
                    ) from None
        return value

    @model_validator(mode="after")
    def _addresses_for_listed_cps(self) -> ExternalLink:
        unknown = sorted(set(self.fixed_addresses) - set(self.ext_cps))
        if unknown:
            raise ValueError(f"fixed addresses given for CPs not in ext_cps: {', '.join(unknown)}")
        return self


class ResourcePlan(_Model):
    """The desired VIM state of one VNF instance after an operation."""

    networks: list[NetworkSpec]
    units: list[UnitSpec]
    scale_levels: dict[str, int] = Field(description="scaling aspect id -> scale level")
    replicas: dict[str, int] = Field(description="VDU id -> number of instances")


# ---------------------------------------------------------------- lookups


def _flavour(vnfd: Vnfd, flavour_id: str) -> DeploymentFlavour:
    try:
        return vnfd.flavour(flavour_id)
    except KeyError:
        raise PlanError(
            f"VNFD {vnfd.vnfd_id} has no deployment flavour {flavour_id!r} "
            f"(it has: {', '.join(vnfd.flavour_ids) or 'none'})"
        ) from None


def _aspect(flavour: DeploymentFlavour, aspect_id: str) -> ScalingAspect:
    try:
        return flavour.scaling_aspect(aspect_id)
    except KeyError:
        known = ", ".join(a.id for a in flavour.scaling_aspects) or "none"
        raise PlanError(
            f"flavour {flavour.flavour_id} has no scaling aspect {aspect_id!r} (it has: {known})"
        ) from None


def _level(flavour: DeploymentFlavour, level_id: str | None) -> InstantiationLevel | None:
    if level_id is None and not flavour.instantiation_levels:
        return None
    try:
        return flavour.instantiation_level(level_id)
    except KeyError:
        known = ", ".join(level.id for level in flavour.instantiation_levels) or "none"
        if level_id is None:
            raise PlanError(
                f"flavour {flavour.flavour_id} has no default instantiation level; "
                f"name one of: {known}"
            ) from None
        raise PlanError(
            f"flavour {flavour.flavour_id} has no instantiation level {level_id!r} "
            f"(it has: {known})"
        ) from None


_T = TypeVar("_T", bound=BaseModel)


def _build(factory: Callable[..., _T], element: str, **fields: Any) -> _T:
    # The VIM models validate on construction; their errors are re-raised as
    # PlanError so the caller learns which VNFD element produced a bad spec.
    try:
        return factory(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PlanError(f"{element}: {problems}") from None


# ---------------------------------------------------------------- scale arithmetic


def _base_count(vdu: Vdu) -> int:
    return (
        vdu.initial_delta
        if vdu.initial_delta is not None
        else vdu.vdu_profile.min_number_of_instances
    )


def _declared_deltas(flavour: DeploymentFlavour, aspect_id: str) -> set[str]:
    vdu = {d for p in flavour.vdu_scaling_aspect_deltas if p.aspect == aspect_id for d in p.deltas}
    links = {
        d
        for p in flavour.virtual_link_bitrate_scaling_aspect_deltas
        if p.aspect == aspect_id
        for d in p.deltas
    }
    return vdu | links


def _delta_ids(flavour: DeploymentFlavour, aspect: ScalingAspect) -> list[str]:
    """Delta id of each step 1..max_scale_level of an aspect."""
    if aspect.max_scale_level <= 0:
        return []
    steps = list(aspect.step_deltas[: aspect.max_scale_level])
    if not steps:
        # SOL001: without step_deltas the aspect is uniform, so it may declare one delta only.
        declared = _declared_deltas(flavour, aspect.id)
        if len(declared) > 1:
            raise PlanError(
                f"scaling aspect {aspect.id} declares deltas {', '.join(sorted(declared))} "
                "but no step_deltas saying which step uses which"
            )
        if not declared:
            return []
        steps = [declared.pop()]
    # SOL001: the last listed delta repeats for the steps left unlisted.
    return steps + [steps[-1]] * (aspect.max_scale_level - len(steps))


def _vdu_deltas(flavour: DeploymentFlavour, aspect_id: str, vdu_id: str) -> dict[str, int]:
    policies = [
        p
        for p in flavour.vdu_scaling_aspect_deltas
        if p.aspect == aspect_id and vdu_id in p.targets
    ]
    if len(policies) > 1:
        raise PlanError(
            f"VDU {vdu_id} is targeted by several scaling deltas of aspect {aspect_id}: "
            + ", ".join(p.id for p in policies)
        )
    return dict(policies[0].deltas) if policies else {}


def _complete_levels(flavour: DeploymentFlavour, levels: Mapping[str, int]) -> dict[str, int]:
    """Every aspect's level, unlisted ones at 0, after checking each is in 0..max."""
    for aspect_id in levels:
        _aspect(flavour, aspect_id)
    complete: dict[str, int] = {}
    for aspect in flavour.scaling_aspects:
        level = levels.get(aspect.id, 0)
        if not 0 <= level <= aspect.max_scale_level:
            raise PlanError(
                f"scale level {level} of aspect {aspect.id} is outside 0..{aspect.max_scale_level}"
            )
        complete[aspect.id] = level
    return complete


def _check_bounds(flavour: DeploymentFlavour, replicas: Mapping[str, int], why: str) -> None:
    for vdu in flavour.vdus:
        count = replicas[vdu.id]
        profile = vdu.vdu_profile
        if not profile.min_number_of_instances <= count <= profile.max_number_of_instances:
            raise PlanError(
                f"VDU {vdu.id} would have {count} instances {why}, outside its vdu_profile "
                f"{profile.min_number_of_instances}..{profile.max_number_of_instances}"
            )


def _arithmetic(flavour: DeploymentFlavour, levels: Mapping[str, int]) -> dict[str, int]:
    complete = _complete_levels(flavour, levels)
    steps = {a.id: _delta_ids(flavour, a) for a in flavour.scaling_aspects}
    replicas: dict[str, int] = {}
    for vdu in flavour.vdus:
        count = _base_count(vdu)
        for aspect_id, level in complete.items():
            deltas = _vdu_deltas(flavour, aspect_id, vdu.id)
            # A delta a policy does not list leaves its targets unchanged (IFA011 ScalingDelta).
            count += sum(deltas.get(delta, 0) for delta in steps[aspect_id][:level])
        replicas[vdu.id] = count
    return replicas


def _describe(levels: Mapping[str, int]) -> str:
    return "at " + (", ".join(f"{a} level {n}" for a, n in sorted(levels.items())) or "no aspect")


def replicas_at(flavour: DeploymentFlavour, levels: Mapping[str, int]) -> dict[str, int]:
    """Instances of every VDU at these aspect levels (unlisted aspects at 0), bounds checked."""
    replicas = _arithmetic(flavour, levels)
    _check_bounds(flavour, replicas, _describe(_complete_levels(flavour, levels)))
    return replicas


def levels_for_instantiation(flavour: DeploymentFlavour, level_id: str | None) -> dict[str, int]:
    """Scale level of every aspect at an instantiation level (the default one for None)."""
    level = _level(flavour, level_id)
    scale_info = level.scale_info if level is not None else {}
    try:
        return _complete_levels(flavour, scale_info)
    except PlanError as exc:
        raise PlanError(f"instantiation level {level.id if level else '-'}: {exc.detail}") from None


def _instantiation_counts(
    flavour: DeploymentFlavour, level: InstantiationLevel | None
) -> dict[str, int]:
    given = level.vdu_instances if level is not None else {}
    vdu_ids = {vdu.id for vdu in flavour.vdus}
    unknown = sorted(set(given) - vdu_ids)
    if unknown and level is not None:
        raise PlanError(f"instantiation level {level.id} names unknown VDUs: {', '.join(unknown)}")
    return {
        vdu.id: given.get(vdu.id, vdu.vdu_profile.min_number_of_instances) for vdu in flavour.vdus
    }


def replicas_for_instantiation(flavour: DeploymentFlavour, level_id: str | None) -> dict[str, int]:
    """Instances of every VDU at an instantiation level; its explicit vdu_instances win."""
    level = _level(flavour, level_id)
    replicas = _instantiation_counts(flavour, level)
    _check_bounds(flavour, replicas, f"at instantiation level {level.id if level else '-'}")
    return replicas


def scale(
    flavour: DeploymentFlavour,
    levels: Mapping[str, int],
    *,
    aspect_id: str,
    steps: int,
    direction: Direction,
) -> tuple[dict[str, int], dict[str, int]]:
    """SOL003 ScaleVnfRequest: (new level of every aspect, new instances of every VDU).

    The replica counts are those of the scale arithmetic for every VDU, not
    only the ones the aspect targets, so the result is a complete desired
    state; for VNFDs that `check_consistency` passes, the other VDUs keep
    the counts their instantiation level gave them.
    """
    aspect = _aspect(flavour, aspect_id)
    if steps < 1:
        raise PlanError(
            f"scaling aspect {aspect_id}: number of steps must be positive, not {steps}"
        )
    if direction not in ("SCALE_OUT", "SCALE_IN"):
        raise PlanError(f"scaling aspect {aspect_id}: unknown direction {direction!r}")
    current = _complete_levels(flavour, levels)
    now = current[aspect_id]
    target = now + steps if direction == "SCALE_OUT" else now - steps
    bound = aspect.max_scale_level if direction == "SCALE_OUT" else 0
    if not 0 <= target <= aspect.max_scale_level:
        raise PlanError(
            f"cannot scale aspect {aspect_id} beyond level {bound}: it is at level {now} "
            f"and {direction} by {steps} step{'s' if steps != 1 else ''} was asked"
        )
    new_levels = {**current, aspect_id: target}
    return new_levels, replicas_at(flavour, new_levels)


def scale_to_level(
    flavour: DeploymentFlavour,
    *,
    instantiation_level_id: str | None = None,
    scale_info: Mapping[str, int] | None = None,
    current_levels: Mapping[str, int] | None = None,
) -> tuple[dict[str, int], dict[str, int]]:
    """SOL003 ScaleVnfToLevelRequest: exactly one of a target level or target scale levels.

    With `scale_info`, aspects it does not list keep their `current_levels`
    entry (0 when absent). With an instantiation level, its counts are the
    ones instantiation would use, so scaling to the level a VNF was
    instantiated at is a no-op.
    """
    if (instantiation_level_id is None) == (scale_info is None):
        raise PlanError("scale to level needs exactly one of instantiationLevelId and scaleInfo")
    if instantiation_level_id is not None:
        return (
            levels_for_instantiation(flavour, instantiation_level_id),
            replicas_for_instantiation(flavour, instantiation_level_id),
        )
    assert scale_info is not None
    _complete_levels(flavour, scale_info)
    levels = {**_complete_levels(flavour, current_levels or {}), **scale_info}
    return levels, replicas_at(flavour, levels)


def check_consistency(flavour: DeploymentFlavour) -> list[str]:
    """Where a flavour's instantiation levels and scaling numbers disagree; empty when sound."""
    problems: list[str] = []
    vdu_ids = {vdu.id for vdu in flavour.vdus}
    aspect_ids = {a.id for a in flavour.scaling_aspects}
    level_ids = {level.id for level in flavour.instantiation_levels}
    if flavour.default_instantiation_level and flavour.default_instantiation_level not in level_ids:
        problems.append(
            f"default instantiation level {flavour.default_instantiation_level} is not defined"
        )
    for policy in flavour.vdu_scaling_aspect_deltas:
        if policy.aspect not in aspect_ids:
            problems.append(f"scaling deltas {policy.id} name unknown aspect {policy.aspect}")
        for target in sorted(set(policy.targets) - vdu_ids):
            problems.append(f"scaling deltas {policy.id} target unknown VDU {target}")
    for aspect in flavour.scaling_aspects:
        for delta in aspect.step_deltas:
            if delta not in _declared_deltas(flavour, aspect.id):
                problems.append(
                    f"scaling aspect {aspect.id} uses delta {delta} that no policy defines"
                )
    for vdu in flavour.vdus:
        profile = vdu.vdu_profile
        if (
            not profile.min_number_of_instances
            <= _base_count(vdu)
            <= profile.max_number_of_instances
        ):
            problems.append(
                f"VDU {vdu.id} starts with {_base_count(vdu)} instances at scale level 0, "
                f"outside its vdu_profile "
                f"{profile.min_number_of_instances}..{profile.max_number_of_instances}"
            )
    try:
        replicas_at(flavour, {a.id: a.max_scale_level for a in flavour.scaling_aspects})
    except PlanError as exc:
        problems.append(f"at the maximum scale levels: {exc.detail}")
    for level in flavour.instantiation_levels:
        try:
            levels = levels_for_instantiation(flavour, level.id)
            computed = _arithmetic(flavour, levels)
            explicit = _instantiation_counts(flavour, level)
            replicas_for_instantiation(flavour, level.id)
        except PlanError as exc:
            problems.append(f"instantiation level {level.id}: {exc.detail}")
            continue
        for vdu_id, count in explicit.items():
            if computed[vdu_id] != count:
                source = "gives" if vdu_id in level.vdu_instances else "defaults to"
                problems.append(
                    f"instantiation level {level.id} {source} {count} instances of {vdu_id} "
                    f"but its scale_info ({_describe(levels).removeprefix('at ')}) gives "
                    f"{computed[vdu_id]}"
                )
    return problems


# ---------------------------------------------------------------- instantiation


class _Attachment:
    """Where one VduCp goes when an ext link takes it over."""

    __slots__ = ("ext_cp", "fixed", "network")

    def __init__(self, network: str, ext_cp: str, fixed: tuple[str, ...]) -> None:
        self.network = network
        self.ext_cp = ext_cp
        self.fixed = fixed


def _attachments(
    flavour: DeploymentFlavour, ext_links: Sequence[ExternalLink]
) -> tuple[dict[str, _Attachment], set[str]]:
    """VduCp id -> external attachment, and the internal links ext links replace entirely."""
    ext_cps = {cp.id: cp for cp in flavour.ext_cps}
    vdu_cps = {cp.id: cp for cp in flavour.vdu_cps}
    vl_ids = {vl.id for vl in flavour.virtual_links}
    attached: dict[str, _Attachment] = {}
    replaced: set[str] = set()
    seen: dict[str, str] = {}
    for link in ext_links:
        for cp_id in link.ext_cps:
            if cp_id in seen:
                raise PlanError(f"external CP {cp_id} is given in two ext virtual links")
            seen[cp_id] = link.network
            targets: list[VduCp]
            if cp_id in ext_cps:
                vl_id = ext_cps[cp_id].internal_virtual_link
                if vl_id is None or vl_id not in vl_ids:
                    raise PlanError(
                        f"external CP {cp_id} re-exposes no internal virtual link of flavour "
                        f"{flavour.flavour_id}"
                    )
                replaced.add(vl_id)
                targets = [cp for cp in flavour.vdu_cps if cp.virtual_link == vl_id and cp.vdu]
            elif cp_id in vdu_cps and vdu_cps[cp_id].exposed_as is not None:
                targets = [vdu_cps[cp_id]]
            else:
                known = external_cp_ids(flavour)
                raise PlanError(
                    f"flavour {flavour.flavour_id} has no external CP {cp_id!r} "
                    f"(it has: {', '.join(known) or 'none'})"
                )
            fixed = tuple(link.fixed_addresses.get(cp_id, ()))
            if fixed and len(targets) != 1:
                # One address list cannot be split between several VduCps without guessing.
                raise PlanError(
                    f"fixed addresses of external CP {cp_id} are ambiguous: it reaches "
                    f"{len(targets)} VDU connection points"
                )
            for target in targets:
                earlier = attached.get(target.id)
                if earlier is not None and earlier.network != link.network:
                    raise PlanError(
                        f"VDU connection point {target.id} is reached by external CPs "
                        f"{earlier.ext_cp} and {cp_id} on different networks"
                    )
                attached[target.id] = _Attachment(link.network, cp_id, fixed)
    for vl_id in vl_ids - replaced:
        on_link = [cp for cp in flavour.vdu_cps if cp.virtual_link == vl_id and cp.vdu]
        if on_link and all(cp.id in attached for cp in on_link):
            replaced.add(vl_id)
    return attached, replaced


def _network_spec(vl: VirtualLink, name: str) -> NetworkSpec:
    l3 = [p.l3_protocol_data for p in vl.protocol_data if p.l3_protocol_data is not None]
    if not l3:
        raise PlanError(
            f"virtual link {vl.id} has no L3 protocol data (cidr), so its subnet is unknown"
        )
    if len(l3) > 1:
        raise PlanError(
            f"virtual link {vl.id} declares {len(l3)} subnets; a VIM network carries one"
        )
    l2 = next((p.l2_protocol_data for p in vl.protocol_data if p.l2_protocol_data), None)
    vlan: int | None = None
    if l2 is not None and l2.network_type == "vlan" and (l2.segmentation_id or "").isdigit():
        vlan = int(l2.segmentation_id or "0")
    return _build(
        NetworkSpec,
        f"virtual link {vl.id}",
        name=name,
        cidr=l3[0].cidr,
        gateway=l3[0].gateway_ip,
        vlan=vlan,
        mtu=l2.mtu if l2 is not None else None,
    )


def _config_json(
    vnfd: Vnfd, flavour_id: str, vdu_id: str, instance_id: str, params: Mapping[str, Any]
) -> str:
    document = {
        "vnfInstanceId": instance_id,
        "flavourId": flavour_id,
        "vdu": vdu_id,
        "additionalParams": dict(params),
        "configurableProperties": vnfd.configurable_properties,
    }
    try:
        return json.dumps(document, indent=2, sort_keys=True) + "\n"
    except (TypeError, ValueError) as exc:
        raise PlanError(f"additionalParams cannot be written as JSON: {exc}") from None


def _connection_points(
    flavour: DeploymentFlavour,
    vdu: Vdu,
    *,
    replicas: int,
    vnf_instance_id: str,
    attached: Mapping[str, _Attachment],
) -> tuple[ConnectionPointSpec, ...]:
    """The interfaces of a VDU's replicas: on their internal link, or on the external one."""
    cps = sorted(
        (cp for cp in flavour.vdu_cps if cp.vdu == vdu.id),
        key=lambda cp: (cp.order is None, cp.order or 0, cp.id),
    )
    ifnames = interface_names(vdu.id, [cp.id for cp in cps])
    points: list[ConnectionPointSpec] = []
    for cp in cps:
        attachment = attached.get(cp.id)
        if attachment is not None:
            if attachment.fixed and len(attachment.fixed) < replicas:
                raise PlanError(
                    f"external CP {attachment.ext_cp} has {len(attachment.fixed)} fixed addresses "
                    f"for {replicas} instances of VDU {vdu.id}"
                )
            network, fixed = attachment.network, attachment.fixed
        elif cp.virtual_link is not None:
            network, fixed = network_name(vnf_instance_id, cp.virtual_link), ()
        else:
            continue
        points.append(
            _build(
                ConnectionPointSpec,
                f"connection point {cp.id}",
                name=ifnames[cp.id],
                network=network,
                fixed_addresses=fixed,
            )
        )
    return tuple(points)


def _unit_spec(
    vnfd: Vnfd,
    flavour: DeploymentFlavour,
    vdu: Vdu,
    *,
    replicas: int,
    vnf_instance_id: str,
    attached: Mapping[str, _Attachment],
    additional_params: Mapping[str, Any],
    config: Mapping[str, str],
) -> UnitSpec:
    element = f"VDU {vdu.id}"
    if not vdu.command:
        raise PlanError(f"VDU {vdu.id} has no command, so there is nothing to run")
    process_name = _dns_label("", vdu.role if vdu.role != "other" else vdu.id)
    process = _build(
        ProcessSpec,
        element,
        name=process_name,
        command=tuple(vdu.command),
        env=dict(vdu.environment),
    )
    points = _connection_points(
        flavour, vdu, replicas=replicas, vnf_instance_id=vnf_instance_id, attached=attached
    )
    if CONFIG_FILE in config:
        raise PlanError(f"config file {CONFIG_FILE} is generated and cannot be given")
    files = {
        CONFIG_FILE: _config_json(
            vnfd, flavour.flavour_id, vdu.id, vnf_instance_id, additional_params
        ),
        **config,
    }
    sizing: dict[str, Any] = {}
    if vdu.virtual_compute is not None:
        sizing["cpu"] = float(vdu.virtual_compute.num_virtual_cpu)
        sizing["memory_mib"] = -(-vdu.virtual_compute.virtual_mem_size // _MIB)
    return _build(
        UnitSpec,
        element,
        name=unit_name(vnf_instance_id, vdu.id),
        replicas=replicas,
        processes=(process,),
        connection_points=points,
        config_files=files,
        **sizing,
    )


def plan_instantiation(
    vnfd: Vnfd,
    *,
    flavour_id: str,
    instantiation_level_id: str | None,
    vnf_instance_id: str,
    ext_links: Sequence[ExternalLink] = (),
    additional_params: Mapping[str, Any] = _EMPTY,
    config: Mapping[str, str] = _EMPTY,
) -> ResourcePlan:
    """The networks and units an InstantiateVnfRequest asks for."""
    flavour = _flavour(vnfd, flavour_id)
    return plan_flavour(
        vnfd,
        flavour_id=flavour_id,
        scale_levels=levels_for_instantiation(flavour, instantiation_level_id),
        replicas=replicas_for_instantiation(flavour, instantiation_level_id),
        vnf_instance_id=vnf_instance_id,
        ext_links=ext_links,
        additional_params=additional_params,
        config=config,
    )


def plan_flavour(
    vnfd: Vnfd,
    *,
    flavour_id: str,
    scale_levels: Mapping[str, int],
    replicas: Mapping[str, int],
    vnf_instance_id: str,
    ext_links: Sequence[ExternalLink] = (),
    additional_params: Mapping[str, Any] = _EMPTY,
    config: Mapping[str, str] = _EMPTY,
) -> ResourcePlan:
    """The networks and units of a flavour at these scale levels with these VDU instances.

    `replicas` counts every VDU of the flavour (checked against the VDU profiles); how they
    follow from a level or from scaling is the caller's (`plan_instantiation`, a rollback
    to the counts on record).
    """
    flavour = _flavour(vnfd, flavour_id)
    levels = _complete_levels(flavour, scale_levels)
    missing = [vdu.id for vdu in flavour.vdus if vdu.id not in replicas]
    if missing:
        raise PlanError(f"no number of instances for VDU {', '.join(missing)}")
    counts = {vdu.id: replicas[vdu.id] for vdu in flavour.vdus}
    _check_bounds(flavour, counts, _describe(levels))
    vl_ids = {vl.id for vl in flavour.virtual_links}
    for cp in flavour.vdu_cps:
        if cp.vdu is not None and cp.vdu not in counts:
            raise PlanError(f"VDU connection point {cp.id} binds to unknown VDU {cp.vdu}")
        if cp.virtual_link is not None and cp.virtual_link not in vl_ids:
            raise PlanError(
                f"VDU connection point {cp.id} links to unknown virtual link {cp.virtual_link}"
            )
    attached, replaced = _attachments(flavour, ext_links)
    networks = [
        _network_spec(vl, network_name(vnf_instance_id, vl.id))
        for vl in flavour.virtual_links
        if vl.id not in replaced
    ]
    units = [
        _unit_spec(
            vnfd,
            flavour,
            vdu,
            replicas=counts[vdu.id],
            vnf_instance_id=vnf_instance_id,
            attached=attached,
            additional_params=additional_params,
            config=config,
        )
        for vdu in flavour.vdus
    ]
    return ResourcePlan(networks=networks, units=units, scale_levels=levels, replicas=counts)


class Connectivity(_Model):
    """Where an instance's units attach, for the external links it has now."""

    networks: list[NetworkSpec] = Field(description="internal links still needed")
    connection_points: dict[str, tuple[ConnectionPointSpec, ...]] = Field(
        description="unit name -> its connection points"
    )


def external_cp_ids(flavour: DeploymentFlavour) -> list[str]:
    """The CPs an ext virtual link can attach: VnfExtCps and directly exposed VduCps."""
    return [*(cp.id for cp in flavour.ext_cps), *(cp.id for cp in flavour.vdu_cps if cp.exposed_as)]


def plan_connectivity(
    vnfd: Vnfd,
    *,
    flavour_id: str,
    vnf_instance_id: str,
    ext_links: Sequence[ExternalLink],
    replicas: Mapping[str, int],
) -> Connectivity:
    """The connection points of every unit (and the internal links) for `ext_links`.

    For a change of external connectivity: `ext_links` are all the instance's external links
    after the change, `replicas` its current counts (fixed addresses must cover them). The
    rest of a unit's spec (processes, files, size) is not the planner's to change here.
    """
    flavour = _flavour(vnfd, flavour_id)
    attached, replaced = _attachments(flavour, ext_links)
    networks = [
        _network_spec(vl, network_name(vnf_instance_id, vl.id))
        for vl in flavour.virtual_links
        if vl.id not in replaced
    ]
    points = {
        unit_name(vnf_instance_id, vdu.id): _connection_points(
            flavour,
            vdu,
            replicas=replicas.get(vdu.id, 0),
            vnf_instance_id=vnf_instance_id,
            attached=attached,
        )
        for vdu in flavour.vdus
    }
    return Connectivity(networks=networks, connection_points=points)
