"""Flavour fields that come from policies: scaling, instantiation levels, monitoring, rules."""

from __future__ import annotations

from typing import Any

from toscaparser.tosca_template import ToscaTemplate

from descriptors.vnfd import (
    InstantiationLevel,
    LinkBitrate,
    MonitoringParameter,
    PlacementRule,
    ScalingAspect,
    SecurityGroupRule,
    Vdu,
    VduScalingAspectDeltas,
    VirtualLink,
    VirtualLinkBitrateScalingAspectDeltas,
    VnfIndicator,
)
from descriptors.vnfd_build.type_names import MONITORING_TYPES, type_chain
from descriptors.vnfd_build.values import ToscaValues, link_bitrate, property_values


def policy_fields(
    tpl: ToscaTemplate, values: ToscaValues, vdus: list[Vdu], links: list[VirtualLink]
) -> dict[str, Any]:
    """Flavour fields that come from policies; VDUs and links get their initial deltas."""
    aspects: list[ScalingAspect] = []
    vdu_deltas: list[VduScalingAspectDeltas] = []
    vl_deltas: list[VirtualLinkBitrateScalingAspectDeltas] = []
    levels: dict[str, dict[str, Any]] = {}
    default_level: str | None = None
    vdu_levels: list[tuple[list[str], dict[str, Any]]] = []
    vl_levels: list[tuple[list[str], dict[str, Any]]] = []
    monitoring: list[MonitoringParameter] = []
    placement: list[PlacementRule] = []
    security: list[SecurityGroupRule] = []
    indicators: list[VnfIndicator] = []
    vdu_initial: dict[str, int] = {}
    vl_initial: dict[str, LinkBitrate] = {}

    for policy in getattr(tpl, "policies", None) or []:
        chain = type_chain(policy.type_definition)
        props = property_values(policy, values)
        targets = [str(t) for t in policy.targets or []]
        if "tosca.policies.nfv.ScalingAspects" in chain:
            for aspect_id, aspect in (props.get("aspects") or {}).items():
                aspects.append(ScalingAspect(id=aspect_id, **aspect))
        elif "tosca.policies.nfv.VduScalingAspectDeltas" in chain:
            vdu_deltas.append(
                VduScalingAspectDeltas(
                    id=policy.name,
                    aspect=props["aspect"],
                    deltas={k: int(v["number_of_instances"]) for k, v in props["deltas"].items()},
                    targets=targets,
                )
            )
        elif "tosca.policies.nfv.VirtualLinkBitrateScalingAspectDeltas" in chain:
            vl_deltas.append(
                VirtualLinkBitrateScalingAspectDeltas(
                    id=policy.name,
                    aspect=props["aspect"],
                    deltas={
                        k: link_bitrate(v.get("bitrate_requirements"))
                        for k, v in props["deltas"].items()
                    },
                    targets=targets,
                )
            )
        elif "tosca.policies.nfv.InstantiationLevels" in chain:
            levels.update(props.get("levels") or {})
            default_level = props.get("default_level") or default_level
        elif "tosca.policies.nfv.VduInstantiationLevels" in chain:
            vdu_levels.append((targets, props.get("levels") or {}))
        elif "tosca.policies.nfv.VirtualLinkInstantiationLevels" in chain:
            vl_levels.append((targets, props.get("levels") or {}))
        elif "tosca.policies.nfv.VduInitialDelta" in chain:
            for target in targets:
                vdu_initial[target] = int(props["initial_delta"]["number_of_instances"])
        elif "tosca.policies.nfv.VirtualLinkBitrateInitialDelta" in chain:
            for target in targets:
                vl_initial[target] = link_bitrate(
                    props["initial_delta"].get("bitrate_requirements")
                )
        elif "tosca.policies.nfv.AffinityRule" in chain or (
            "tosca.policies.nfv.AntiAffinityRule" in chain
        ):
            placement.append(
                PlacementRule(
                    id=policy.name,
                    kind="affinity"
                    if "tosca.policies.nfv.AffinityRule" in chain
                    else "anti_affinity",
                    scope=props["scope"],
                    targets=targets,
                )
            )
        elif "tosca.policies.nfv.SecurityGroupRule" in chain:
            security.append(SecurityGroupRule(id=policy.name, targets=targets, **props))
        elif "tosca.policies.nfv.VnfIndicator" in chain:
            indicators.append(VnfIndicator(id=policy.name, **props))
        else:
            kind = next((MONITORING_TYPES[t] for t in chain if t in MONITORING_TYPES), None)
            if kind is not None:
                period = props.get("collection_period")
                monitoring.append(
                    MonitoringParameter(
                        id=policy.name,
                        name=props.get("name"),
                        performance_metric=props["performance_metric"],
                        collection_period=values.seconds(period) if period is not None else None,
                        targets=targets,
                        level=kind[0],
                        standard=kind[1],
                    )
                )

    instantiation_levels: list[InstantiationLevel] = []
    for level_id, level in levels.items():
        vdu_instances = {
            target: int(per_level[level_id]["number_of_instances"])
            for targets, per_levels in vdu_levels
            for per_level in [per_levels]
            if level_id in per_level
            for target in targets
        }
        bitrates = {
            target: link_bitrate(per_levels[level_id].get("bitrate_requirements"))
            for targets, per_levels in vl_levels
            if level_id in per_levels
            for target in targets
        }
        instantiation_levels.append(
            InstantiationLevel(
                id=level_id,
                description=str(level.get("description") or ""),
                scale_info={
                    aspect: int(info["scale_level"])
                    for aspect, info in (level.get("scale_info") or {}).items()
                },
                vdu_instances=vdu_instances,
                virtual_link_bitrates=bitrates,
            )
        )
    return {
        "vdus": [
            vdu.model_copy(update={"initial_delta": vdu_initial[vdu.id]})
            if vdu.id in vdu_initial
            else vdu
            for vdu in vdus
        ],
        "virtual_links": [
            link.model_copy(update={"initial_bitrate": vl_initial[link.id]})
            if link.id in vl_initial
            else link
            for link in links
        ],
        "scaling_aspects": aspects,
        "vdu_scaling_aspect_deltas": vdu_deltas,
        "virtual_link_bitrate_scaling_aspect_deltas": vl_deltas,
        "instantiation_levels": instantiation_levels,
        "default_instantiation_level": default_level,
        "monitoring_parameters": monitoring,
        "placement_rules": placement,
        "security_group_rules": security,
        "vnf_indicators": indicators,
    }
