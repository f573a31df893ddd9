"""parse_nsd: every refusal names the node (or policy) and the field it is about.

Each case starts from the sample edge-gateway NSD, changes one thing in its
service template, and checks the error; the layout cases write small NSDs of
their own.
"""

from __future__ import annotations

import copy
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from descriptors.errors import DescriptorError
from descriptors.nsd import Nsd
from descriptors.nsd_parse import parse_nsd

pytestmark = pytest.mark.usefixtures("no_network")

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "descriptors" / "nsds" / "edge-gateway"
ENTRY = "Definitions/edge_gateway_nsd.yaml"
NSD_TYPES_URL = "https://forge.etsi.org/rep/nfv/SOL001/raw/v4.4.1/etsi_nfv_sol001_nsd_types.yaml"

Template = dict[str, Any]


def _nodes(d: Template) -> dict[str, Any]:
    nodes: dict[str, Any] = d["topology_template"]["node_templates"]
    return nodes


def _policy(d: Template, name: str) -> dict[str, Any]:
    for entry in d["topology_template"]["policies"]:
        if name in entry:
            policy: dict[str, Any] = entry[name]
            return policy
    raise KeyError(name)


def _add_policy(d: Template, name: str, policy: dict[str, Any]) -> None:
    d["topology_template"]["policies"].append({name: policy})


def _nat_requirements(d: Template) -> list[dict[str, str]]:
    requirements: list[dict[str, str]] = _nodes(d)["nat"]["requirements"]
    return requirements


def _second_nat(d: Template, name: str = "nat2") -> dict[str, Any]:
    """A second profile of the NAT VNFD, e.g. for dependencies."""
    node: dict[str, Any] = copy.deepcopy(_nodes(d)["nat"])
    _nodes(d)[name] = node
    return node


def _parse_changed(tmp_path: Path, change: Callable[[Template], object]) -> Nsd:
    tree = tmp_path / "nsd"
    shutil.copytree(SAMPLE, tree)
    document = yaml.safe_load((tree / ENTRY).read_text())
    change(document)
    (tree / ENTRY).write_text(yaml.safe_dump(document, sort_keys=False))
    return parse_nsd(tree, ENTRY)


def _set(path: list[Any], value: Any) -> Callable[[Template], None]:
    def change(d: Template) -> None:
        target: Any = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _dependency_cycle(d: Template) -> None:
    _second_nat(d)["requirements"].append({"dependency": "nat"})
    _nat_requirements(d).append({"dependency": "nat2"})


def _substitute_the_vnf(d: Template) -> None:
    d["topology_template"]["substitution_mappings"].update(
        node_type="mano.nodes.nfv.nat.VNF", requirements={}
    )
    _nodes(d).pop("edge_gateway")


def _without_vnfs(d: Template) -> None:
    _nodes(d).pop("nat")
    d["topology_template"].pop("policies")


NODE = ["topology_template", "node_templates"]

# case id -> (change, text the error must contain)
CASES: dict[str, tuple[Callable[[Template], object], str]] = {
    "tosca-unknown-property": (
        _set([*NODE, "inside_vl", "properties", "colour"], "red"),
        'template "inside_vl" contains unknown field "colour"',
    ),
    "tosca-sap-without-link": (
        lambda d: _nodes(d)["sap_inside"].pop("requirements"),
        'Relationship "internal_virtual_link" in template "sap_inside" has a wrong number',
    ),
    "tosca-unconnected-vnf-cp": (
        lambda d: _nat_requirements(d).pop(2),
        'Relationship "virtual_link_mgmt" in template "nat" has a wrong number',
    ),
    "tosca-unknown-target": (
        lambda d: _nat_requirements(d).__setitem__(0, {"virtual_link_inside": "nowhere"}),
        'Node template "nowhere" was not found in "nat"',
    ),
    "tosca-ns-level-not-integer": (
        _set(
            ["topology_template", "policies", 1, "nat_instances_by_level", "properties"],
            {"aspect": "nat_capacity", "number_of_instances": {"one": 1}},
        ),
        '"one" is not an integer',
    ),
    "tosca-vnf-flavour-not-in-type": (
        _set([*NODE, "nat", "properties", "flavour_id"], "tiny"),
        'The value "tiny" of property "flavour_id" is not valid',
    ),
    "no-vnf-profile-property": (
        lambda d: _nodes(d)["nat"]["properties"].pop("vnf_profile"),
        "VNF profile 'nat': property vnf_profile is required",
    ),
    "vnf-link-to-sap": (
        lambda d: _nat_requirements(d).__setitem__(0, {"virtual_link_inside": "sap_inside"}),
        "VNF profile 'nat': requirement 'virtual_link_inside' names 'sap_inside', which is not "
        "an NsVirtualLink",
    ),
    "vnf-link-twice": (
        lambda d: _nat_requirements(d).append({"virtual_link_inside": "mgmt_vl"}),
        "VNF profile 'nat': requirement 'virtual_link_inside' is assigned more than once",
    ),
    "sap-to-vnf": (
        _set([*NODE, "sap_inside", "requirements"], [{"internal_virtual_link": "nat"}]),
        "Sap 'sap_inside': requirement internal_virtual_link must name one NsVirtualLink",
    ),
    "profile-min-above-max": (
        _set(
            [*NODE, "nat", "properties", "vnf_profile"],
            {"min_number_of_instances": 2, "max_number_of_instances": 1},
        ),
        "VNF profile 'nat': vnf_profile min_number_of_instances 2 exceeds "
        "max_number_of_instances 1",
    ),
    "dependency-on-itself": (
        lambda d: _nat_requirements(d).append({"dependency": "nat"}),
        "VNF profile 'nat' depends on itself",
    ),
    "dependency-on-a-link": (
        lambda d: _nat_requirements(d).append({"dependency": "inside_vl"}),
        "VNF profile 'nat': dependency 'inside_vl' is not a VNF profile",
    ),
    "dependency-cycle": (
        _dependency_cycle,
        "cyclic VNF profile dependencies among ['nat', 'nat2']",
    ),
    "forwarding-node": (
        _set(
            [*NODE, "classifier"],
            {"type": "tosca.nodes.nfv.Forwarding", "requirements": [{"virtual_link": "inside_vl"}]},
        ),
        "node 'classifier' (tosca.nodes.nfv.Forwarding): network forwarding paths (VNFFGs) are "
        "not supported",
    ),
    "nested-ns": (
        _set(
            [*NODE, "nested"],
            {
                "type": "tosca.nodes.nfv.NS",
                "properties": {
                    "descriptor_id": "x",
                    "designer": "x",
                    "version": "1",
                    "name": "x",
                    "invariant_id": "x",
                    "flavour_id": "x",
                },
            },
        ),
        "node 'nested' (tosca.nodes.nfv.NS) is a nested NS; nested NSs are not supported",
    ),
    "nested-ns-policy": (
        lambda d: _add_policy(
            d,
            "nested_levels",
            {
                "type": "tosca.policies.nfv.NsToInstantiationLevelMapping",
                "properties": {"number_of_instances": {"small": 1}},
                "targets": ["edge_gateway"],
            },
        ),
        "policy 'nested_levels' (tosca.policies.nfv.NsToInstantiationLevelMapping): nested NSs "
        "are not supported",
    ),
    "vnf-mapping-targets-a-link": (
        _set(
            ["topology_template", "policies", 1, "nat_instances_by_level", "targets"], ["inside_vl"]
        ),
        "policy 'nat_instances_by_level' (tosca.policies.nfv.VnfToLevelMapping): targets "
        "['inside_vl'] are not VNF profiles",
    ),
    "link-mapping-targets-a-vnf": (
        lambda d: _policy(d, "chain_bitrate_by_instantiation_level").__setitem__(
            "targets", ["nat"]
        ),
        "targets ['nat'] are not NsVirtualLinks",
    ),
    "mapping-without-targets": (
        lambda d: _policy(d, "nat_fastpath_by_level").pop("targets"),
        "policy 'nat_fastpath_by_level' (mano.policies.nfv.VnfAspectToLevelMapping): the policy "
        "has no targets",
    ),
    "mapping-unknown-aspect": (
        lambda d: _policy(d, "nat_fastpath_by_level")["properties"].__setitem__(
            "aspect", "nat_volume"
        ),
        "a level mapping names NS scaling aspect 'nat_volume', which no NsScalingAspects policy "
        "defines",
    ),
    "mapping-unknown-ns-level": (
        lambda d: _policy(d, "nat_instances_by_level")["properties"]["number_of_instances"].update(
            {9: 1}
        ),
        "NS scaling aspect 'nat_capacity': a level mapping names levels [9], which are not among "
        "its ns_scale_levels 0-7",
    ),
    "aspect-levels-with-a-gap": (
        lambda d: _policy(d, "scaling_aspects")["properties"]["aspects"]["nat_capacity"][
            "ns_scale_levels"
        ].pop(3),
        "NS scaling aspect 'nat_capacity': ns_scale_levels must be numbered 0, 1, 2... without "
        "gaps",
    ),
    "aspect-defined-twice": (
        lambda d: _add_policy(d, "more_aspects", copy.deepcopy(_policy(d, "scaling_aspects"))),
        "policy 'more_aspects' (tosca.policies.nfv.NsScalingAspects): NS scaling aspect "
        "'nat_capacity' is defined twice",
    ),
    "conflicting-instance-counts": (
        lambda d: _add_policy(
            d,
            "nat_two_instances",
            {
                "type": "tosca.policies.nfv.VnfToInstantiationLevelMapping",
                "properties": {"number_of_instances": {"large": 2}},
                "targets": ["nat"],
            },
        ),
        "policy 'nat_two_instances' (tosca.policies.nfv.VnfToInstantiationLevelMapping): "
        "vnf_instances of nat at level 'large' is given twice, differently (1 and 2)",
    ),
    "instance-count-beyond-profile": (
        lambda d: _policy(d, "nat_instances_by_instantiation_level")["properties"][
            "number_of_instances"
        ].update(large=3),
        "NS instantiation level 'large' gives VNF profile 'nat' 3 instance(s), outside its "
        "vnf_profile bounds 1..1",
    ),
    "mapping-unknown-instantiation-level": (
        lambda d: _policy(d, "nat_fastpath_by_instantiation_level")["properties"][
            "scale_levels"
        ].update(medium=1),
        "a level mapping names NS instantiation levels ['medium'], which no "
        "NsInstantiationLevels policy defines",
    ),
    "default-level-missing": (
        lambda d: _policy(d, "instantiation_levels")["properties"].pop("default_level"),
        "NsInstantiationLevels defines 2 levels but no default_level",
    ),
    "default-level-unknown": (
        lambda d: _policy(d, "instantiation_levels")["properties"].update(default_level="medium"),
        "default_level 'medium' is not an NS instantiation level",
    ),
    "mapping-names-an-unknown-node": (
        lambda d: d["topology_template"]["substitution_mappings"]["requirements"].update(
            virtual_link_inside=["ghost", "external_virtual_link"]
        ),
        "substitution mapping of NS requirement 'virtual_link_inside' names 'ghost', which is "
        "neither a Sap nor a VNF profile",
    ),
    "mapping-of-sap-internal-link": (
        lambda d: d["topology_template"]["substitution_mappings"]["requirements"].update(
            virtual_link_inside=["sap_inside", "dependency"]
        ),
        "a Sap is exposed by its external_virtual_link requirement, not 'dependency'",
    ),
    "mapping-not-a-pair": (
        lambda d: d["topology_template"]["substitution_mappings"]["requirements"].update(
            virtual_link_inside="sap_inside"
        ),
        "substitution mapping of NS requirement 'virtual_link_inside' must be [node, requirement]",
    ),
    "mapping-without-node-type": (
        lambda d: d["topology_template"]["substitution_mappings"].pop("node_type"),
        'SubstitutionMappings used in topology_template is missing required field "node_type"',
    ),
    "substituted-type-not-an-ns": (
        _substitute_the_vnf,
        "substitution_mappings node_type 'mano.nodes.nfv.nat.VNF' does not derive from "
        "tosca.nodes.nfv.NS",
    ),
    "flavour-id-disagrees": (
        lambda d: d["topology_template"]["substitution_mappings"].update(
            properties={"flavour_id": "other"}
        ),
        "flavour_id 'default' of NS node 'edge_gateway' differs from the substitution_mappings "
        "flavour_id 'other'",
    ),
    "no-vnf-profile": (
        _without_vnfs,
        "the flavour has no VNF profile",
    ),
    "placement-on-the-ns-itself": (
        lambda d: _add_policy(
            d,
            "together",
            {
                "type": "tosca.policies.nfv.NsAffinityRule",
                "properties": {"scope": "nfvi_node"},
                "targets": ["edge_gateway", "nat"],
            },
        ),
        "policy 'together' targets ['edge_gateway'], which are not VNF profiles, NS virtual "
        "links or SAPs",
    ),
    "remote-import": (
        lambda d: d["imports"].append("https://example.invalid/more_types.yaml"),
        "unknown import 'https://example.invalid/more_types.yaml'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refusals_name_what_is_wrong(tmp_path: Path, case: str) -> None:
    change, expected = CASES[case]
    with pytest.raises(DescriptorError) as refused:
        _parse_changed(tmp_path, change)
    assert expected in str(refused.value), str(refused.value)
    assert refused.value.location is not None


def test_placement_and_monitoring_policies(tmp_path: Path) -> None:
    def change(d: Template) -> None:
        _add_policy(
            d,
            "spread",
            {
                "type": "tosca.policies.nfv.NsAntiAffinityRule",
                "properties": {"scope": "zone"},
                "targets": ["nat", "mgmt_vl"],
            },
        )
        _add_policy(
            d,
            "sap_traffic",
            {
                "type": "tosca.policies.nfv.NsMonitoring",
                "properties": {
                    "ns_monitoring_parameters": {
                        "inside_bytes": {
                            "name": "bytes in",
                            "performance_metric": "byte_incoming_sap",
                            "collection_period": "30 s",
                        }
                    }
                },
                "targets": ["edge_gateway"],
            },
        )

    flavour = _parse_changed(tmp_path, change).flavour("default")
    (rule,) = flavour.placement_rules
    assert (rule.id, rule.kind, rule.scope, rule.targets) == (
        "spread",
        "anti_affinity",
        "zone",
        ["nat", "mgmt_vl"],
    )
    (param,) = flavour.monitoring_parameters
    assert (param.id, param.performance_metric, param.collection_period) == (
        "inside_bytes",
        "byte_incoming_sap",
        30.0,
    )


def test_entry_must_be_inside_and_exist(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE, tmp_path / "nsd")
    with pytest.raises(DescriptorError, match="inside the archive"):
        parse_nsd(tmp_path / "nsd", "../outside.yaml")
    with pytest.raises(DescriptorError, match="entry definitions file not found"):
        parse_nsd(tmp_path / "nsd", "Definitions/missing.yaml")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_template_without_topology_is_not_an_nsd(tmp_path: Path) -> None:
    _write(
        tmp_path / "types.yaml",
        f"""\
        tosca_definitions_version: tosca_simple_yaml_1_3
        imports: [{NSD_TYPES_URL}]
        """,
    )
    with pytest.raises(DescriptorError, match="no NS deployment flavour"):
        parse_nsd(tmp_path, "types.yaml")


MINIMAL_VNF_TYPE = """\
node_types:
  test.VNF:
    derived_from: tosca.nodes.nfv.VNF
    properties:
      descriptor_id: {type: string, default: 11111111-2222-3333-4444-555555555555}
      descriptor_version: {type: string, default: "1.0"}
      provider: {type: string, default: test provider}
      product_name: {type: string, default: TestVNF}
      software_version: {type: string, default: "1.0"}
      vnfm_info: {type: list, entry_schema: {type: string}, default: [test]}
      flavour_id: {type: string, default: simple}
      flavour_description: {type: string, default: ""}
    requirements:
      - virtual_link_data:
          capability: tosca.capabilities.nfv.VirtualLinkable
          relationship: tosca.relationships.nfv.VirtualLinksTo
"""


def _ns_node(name: str, node_type: str = "tosca.nodes.nfv.NS", flavour: str = "f1") -> str:
    return f"""\
    {name}:
      type: {node_type}
      properties:
        descriptor_id: aaaaaaaa-0000-0000-0000-000000000001
        designer: tester
        version: "1.0"
        name: minimal
        invariant_id: aaaaaaaa-0000-0000-0000-000000000000
        flavour_id: {flavour}
"""


def _minimal_topology(ns_nodes: str) -> str:
    return (
        "topology_template:\n  node_templates:\n"
        + textwrap.indent(textwrap.dedent(ns_nodes), "    ")
        + textwrap.indent(
            textwrap.dedent(
                """\
                vnf:
                  type: test.VNF
                  properties:
                    vnf_profile: {min_number_of_instances: 1, max_number_of_instances: 2}
                  requirements:
                    - virtual_link_data: data
                data:
                  type: tosca.nodes.nfv.NsVirtualLink
                  properties:
                    connectivity_type: {layer_protocols: [ipv4]}
                    vl_profile:
                      max_bitrate_requirements: {root: 1000}
                      min_bitrate_requirements: {root: 100}
                      qos: {latency: 5 ms, packet_delay_variation: 1 ms, priority: 2}
                """
            ),
            "    ",
        )
    )


def _minimal_nsd(tmp_path: Path, ns_nodes: str) -> Path:
    text = (
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        f"imports: [{NSD_TYPES_URL}]\n" + MINIMAL_VNF_TYPE + _minimal_topology(ns_nodes)
    )
    (tmp_path / "nsd.yaml").write_text(text)
    return tmp_path


def test_topology_without_substitution_mappings(tmp_path: Path) -> None:
    """An NS node template, no substitution_mappings: a one-flavour NSD of the node's type."""
    nsd = parse_nsd(_minimal_nsd(tmp_path, _ns_node("ns")), "nsd.yaml")
    assert (nsd.nsd_id, nsd.name, nsd.ns_node_type) == (
        "aaaaaaaa-0000-0000-0000-000000000001",
        "minimal",
        "tosca.nodes.nfv.NS",
    )
    flavour = nsd.flavour("f1")
    assert flavour.vnf_profile("vnf").virtual_links == {"virtual_link_data": "data"}
    qos = flavour.virtual_link("data").qos
    assert qos is not None and (qos.latency, qos.packet_delay_variation) == (0.005, 0.001)
    assert flavour.saps == [] and flavour.requirement_mappings == {}


def test_topology_needs_exactly_one_ns_node(tmp_path: Path) -> None:
    with pytest.raises(DescriptorError, match="exactly one node template of an NS type"):
        parse_nsd(_minimal_nsd(tmp_path, ""), "nsd.yaml")


def test_multi_flavour_layout(tmp_path: Path) -> None:
    """SOL001's layout: a top-level file importing one service template per flavour."""
    ns_type = """\
      test.NS:
        derived_from: tosca.nodes.nfv.NS
        properties:
          descriptor_id: {type: string, default: bbbbbbbb-0000-0000-0000-000000000001}
          designer: {type: string, default: tester}
          version: {type: string, default: "2.0"}
          name: {type: string, default: two flavours}
          invariant_id: {type: string, default: bbbbbbbb-0000-0000-0000-000000000000}
          flavour_id: {type: string, default: small}
    """
    (tmp_path / "types.yaml").write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        f"imports: [{NSD_TYPES_URL}]\n"
        + MINIMAL_VNF_TYPE
        + textwrap.indent(textwrap.dedent(ns_type), "  ")
    )
    for flavour in ("small", "big"):
        topology = _minimal_topology("").replace(
            "topology_template:\n",
            f"topology_template:\n  substitution_mappings:\n    node_type: test.NS\n"
            f"    properties: {{flavour_id: {flavour}}}\n",
        )
        _write(
            tmp_path / f"{flavour}.yaml",
            "tosca_definitions_version: tosca_simple_yaml_1_3\nimports: [types.yaml]\n" + topology,
        )
    _write(
        tmp_path / "top.yaml",
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        "imports: [types.yaml, small.yaml, big.yaml]\n",
    )
    nsd = parse_nsd(tmp_path, "top.yaml")
    assert nsd.flavour_ids == ["small", "big"]
    assert (nsd.name, nsd.version, nsd.ns_node_type) == ("two flavours", "2.0", "test.NS")
    assert nsd.flavour("big").definitions_file == "big.yaml"
    assert nsd.vnfd_ids == ["11111111-2222-3333-4444-555555555555"]

    # The same flavour twice is refused.
    (tmp_path / "big.yaml").write_text(
        (tmp_path / "big.yaml").read_text().replace("flavour_id: big", "flavour_id: small")
    )
    with pytest.raises(DescriptorError, match="NS deployment flavour 'small' is defined twice"):
        parse_nsd(tmp_path, "top.yaml")
