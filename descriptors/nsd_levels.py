"""NS deployment flavour fields that come from policies: scaling, levels, placement, monitoring.

SOL001 spreads what the NS looks like at a level over several policies (an
aspect's NS levels in NsScalingAspects, instance counts in VnfToLevelMapping,
bitrates in VirtualLinkToLevelMapping, and likewise for instantiation
levels). They are gathered here into one record per level, so consumers read
"what is the NS at level n" in one place. The project's
`mano.policies.nfv.VnfAspectTo*LevelMapping` extensions add the scale level
of a VNF's own aspect to the same records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toscaparser.tosca_template import ToscaTemplate

from descriptors.errors import DescriptorError
from descriptors.nsd import (
    NsInstantiationLevel,
    NsMonitoringParameter,
    NsPlacementRule,
    NsScaleLevel,
    NsScalingAspect,
    PlacementKind,
)
from descriptors.vnfd_build.type_names import VNF, is_a, type_chain
from descriptors.vnfd_build.values import ToscaValues, link_bitrate, property_values

NS_VIRTUAL_LINK = "tosca.nodes.nfv.NsVirtualLink"
SCALING_ASPECTS = "tosca.policies.nfv.NsScalingAspects"
VNF_TO_LEVEL = "tosca.policies.nfv.VnfToLevelMapping"
VL_TO_LEVEL = "tosca.policies.nfv.VirtualLinkToLevelMapping"
VNF_ASPECT_TO_LEVEL = "mano.policies.nfv.VnfAspectToLevelMapping"
INSTANTIATION_LEVELS = "tosca.policies.nfv.NsInstantiationLevels"
VNF_TO_INSTANTIATION_LEVEL = "tosca.policies.nfv.VnfToInstantiationLevelMapping"
VL_TO_INSTANTIATION_LEVEL = "tosca.policies.nfv.VirtualLinkToInstantiationLevelMapping"
VNF_ASPECT_TO_INSTANTIATION_LEVEL = "mano.policies.nfv.VnfAspectToInstantiationLevelMapping"
PLACEMENT: dict[str, PlacementKind] = {
    "tosca.policies.nfv.NsAffinityRule": "affinity",
    "tosca.policies.nfv.NsAntiAffinityRule": "anti_affinity",
}
MONITORING = "tosca.policies.nfv.NsMonitoring"
UNSUPPORTED_POLICIES = {
    "tosca.policies.nfv.NsToLevelMapping": "nested NSs are not supported",
    "tosca.policies.nfv.NsToInstantiationLevelMapping": "nested NSs are not supported",
    "tosca.policies.nfv.NfpRule": "network forwarding paths (VNFFGs) are not supported",
}

_Level = dict[str, Any]


class _Levels:
    """Level contents under construction, keyed by (aspect id or None, level key)."""

    def __init__(self) -> None:
        self.content: dict[tuple[str | None, Any], _Level] = {}

    def at(self, aspect: str | None, level: Any) -> _Level:
        return self.content.setdefault(
            (aspect, level),
            {"vnf_instances": {}, "vnf_scale_levels": {}, "virtual_link_bitrates": {}},
        )

    def set(
        self, where: str, aspect: str | None, level: Any, path: tuple[str, ...], value: Any
    ) -> None:
        """Record one value; a second, different value for the same place is an error."""
        slot = self.at(aspect, level)
        for key in path[:-1]:
            slot = slot.setdefault(key, {})
        old = slot.get(path[-1])
        if old is not None and old != value:
            raise DescriptorError(
                f"{where}: {path[0]} of {'/'.join(path[1:])} at level {level!r} is given "
                f"twice, differently ({old!r} and {value!r})"
            )
        slot[path[-1]] = value


def _ns_level(where: str, level: Any) -> int:
    """An NS scale level key; SOL001 numbers them with integers from 0."""
    # Map keys come back as strings from ToscaValues.plain.
    if isinstance(level, str) and level.isdecimal():
        level = int(level)
    if isinstance(level, bool) or not isinstance(level, int) or level < 0:
        raise DescriptorError(f"{where}: NS level {level!r} is not an integer >= 0")
    return level


def _targets(
    policy: Any, kind: str, accept: Callable[[Any], bool], nodes: dict[str, Any], where: str
) -> list[str]:
    targets = [str(t) for t in policy.targets or []]
    if not targets:
        raise DescriptorError(f"{where}: the policy has no targets")
    wrong = [t for t in targets if t not in nodes or not accept(nodes[t])]
    if wrong:
        raise DescriptorError(f"{where}: targets {wrong} are not {kind}")
    return targets


def level_fields(tpl: ToscaTemplate, values: ToscaValues, location: str) -> dict[str, Any]:
    """Flavour fields that come from policies; DescriptorError (at `location`) if inconsistent."""
    try:
        return _level_fields(tpl, values)
    except DescriptorError as exc:
        if exc.location is not None:
            raise
        raise DescriptorError(exc.detail, location=location) from None


def _level_fields(tpl: ToscaTemplate, values: ToscaValues) -> dict[str, Any]:
    nodes = {node.name: node for node in tpl.nodetemplates}

    def is_vnf(node: Any) -> bool:
        return is_a(node, VNF)

    def is_link(node: Any) -> bool:
        return is_a(node, NS_VIRTUAL_LINK)

    aspects: dict[str, dict[str, Any]] = {}
    ns_levels: dict[str, str] = {}
    default_level: str | None = None
    levels = _Levels()
    placement: list[NsPlacementRule] = []
    monitoring: list[NsMonitoringParameter] = []

    for policy in getattr(tpl, "policies", None) or []:
        chain = type_chain(policy.type_definition)
        where = f"policy {policy.name!r} ({policy.type})"
        refused = next((why for name, why in UNSUPPORTED_POLICIES.items() if name in chain), None)
        if refused is not None:
            raise DescriptorError(f"{where}: {refused}")
        props = property_values(policy, values)
        if SCALING_ASPECTS in chain:
            for aspect_id, aspect in (props.get("aspects") or {}).items():
                if aspect_id in aspects:
                    raise DescriptorError(
                        f"{where}: NS scaling aspect {aspect_id!r} is defined twice"
                    )
                aspects[str(aspect_id)] = aspect
        elif VNF_TO_LEVEL in chain:
            for target in _targets(policy, "VNF profiles", is_vnf, nodes, where):
                for level, count in props["number_of_instances"].items():
                    levels.set(
                        where,
                        props["aspect"],
                        _ns_level(where, level),
                        ("vnf_instances", target),
                        int(count),
                    )
        elif VL_TO_LEVEL in chain:
            for target in _targets(policy, "NsVirtualLinks", is_link, nodes, where):
                for level, bitrate in props["bit_rate_requirements"].items():
                    levels.set(
                        where,
                        props["aspect"],
                        _ns_level(where, level),
                        ("virtual_link_bitrates", target),
                        link_bitrate(bitrate),
                    )
        elif VNF_ASPECT_TO_LEVEL in chain:
            for target in _targets(policy, "VNF profiles", is_vnf, nodes, where):
                for level, scale in props["scale_levels"].items():
                    path: tuple[str, ...] = ("vnf_scale_levels", target, str(props["vnf_aspect"]))
                    levels.set(where, props["aspect"], _ns_level(where, level), path, int(scale))
        elif INSTANTIATION_LEVELS in chain:
            for level_id, level in (props.get("ns_levels") or {}).items():
                if level_id in ns_levels:
                    raise DescriptorError(
                        f"{where}: NS instantiation level {level_id!r} is defined twice"
                    )
                ns_levels[str(level_id)] = str(level.get("description") or "")
            default_level = props.get("default_level") or default_level
        elif VNF_TO_INSTANTIATION_LEVEL in chain:
            for target in _targets(policy, "VNF profiles", is_vnf, nodes, where):
                for level_id, count in props["number_of_instances"].items():
                    levels.set(where, None, str(level_id), ("vnf_instances", target), int(count))
        elif VL_TO_INSTANTIATION_LEVEL in chain:
            for target in _targets(policy, "NsVirtualLinks", is_link, nodes, where):
                for level_id, bitrate in props["bit_rate_requirements"].items():
                    path = ("virtual_link_bitrates", target)
                    levels.set(where, None, str(level_id), path, link_bitrate(bitrate))
        elif VNF_ASPECT_TO_INSTANTIATION_LEVEL in chain:
            for target in _targets(policy, "VNF profiles", is_vnf, nodes, where):
                for level_id, scale in props["scale_levels"].items():
                    path = ("vnf_scale_levels", target, str(props["vnf_aspect"]))
                    levels.set(where, None, str(level_id), path, int(scale))
        elif kind := next((k for name, k in PLACEMENT.items() if name in chain), None):
            placement.append(
                NsPlacementRule(
                    id=policy.name,
                    kind=kind,
                    scope=str(props["scope"]),
                    targets=[str(t) for t in policy.targets or []],
                )
            )
        elif MONITORING in chain:
            for param_id, param in (props.get("ns_monitoring_parameters") or {}).items():
                period = param.get("collection_period")
                monitoring.append(
                    NsMonitoringParameter(
                        id=str(param_id),
                        name=str(param["name"]),
                        performance_metric=str(param["performance_metric"]),
                        collection_period=None
                        if period is None
                        else values.seconds(period, f"{where} {param_id} collection_period"),
                    )
                )

    return {
        "scaling_aspects": _scaling_aspects(aspects, levels),
        "instantiation_levels": _instantiation_levels(ns_levels, levels),
        "default_instantiation_level": default_level,
        "placement_rules": placement,
        "monitoring_parameters": monitoring,
    }


def _scaling_aspects(aspects: dict[str, dict[str, Any]], levels: _Levels) -> list[NsScalingAspect]:
    for aspect_id, _ in levels.content:
        if aspect_id is not None and aspect_id not in aspects:
            raise DescriptorError(
                f"a level mapping names NS scaling aspect {aspect_id!r}, which no "
                "NsScalingAspects policy defines"
            )
    out: list[NsScalingAspect] = []
    for aspect_id, aspect in aspects.items():
        where = f"NS scaling aspect {aspect_id!r}"
        by_number = {_ns_level(where, n): v for n, v in aspect["ns_scale_levels"].items()}
        numbers = sorted(by_number)
        if not numbers or numbers != list(range(len(numbers))):
            raise DescriptorError(
                f"{where}: ns_scale_levels must be numbered 0, 1, 2... without gaps (got {numbers})"
            )
        mapped = sorted(level for a, level in levels.content if a == aspect_id)
        unknown = [level for level in mapped if int(level) not in numbers]
        if unknown:
            raise DescriptorError(
                f"{where}: a level mapping names levels {unknown}, which are not among its "
                f"ns_scale_levels 0-{numbers[-1]}"
            )
        scale_levels = [
            NsScaleLevel(
                level=number,
                description=str(by_number[number].get("description") or ""),
                **levels.content.get((aspect_id, number), {}),
            )
            for number in numbers
        ]
        out.append(
            NsScalingAspect(
                id=aspect_id,
                name=str(aspect["name"]),
                description=str(aspect["description"]),
                levels=scale_levels,
            )
        )
    return out


def _instantiation_levels(ns_levels: dict[str, str], levels: _Levels) -> list[NsInstantiationLevel]:
    mapped = sorted({level for aspect, level in levels.content if aspect is None})
    unknown = [level for level in mapped if level not in ns_levels]
    if unknown:
        raise DescriptorError(
            f"a level mapping names NS instantiation levels {unknown}, which no "
            "NsInstantiationLevels policy defines"
        )
    return [
        NsInstantiationLevel(
            id=level_id, description=description, **levels.content.get((None, level_id), {})
        )
        for level_id, description in ns_levels.items()
    ]
