"""The sample edge-gateway NSD: what it parses to, its copies of shared files, its builds."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from descriptors import sol001
from descriptors.csar import validate_csar
from descriptors.errors import DescriptorError
from descriptors.nsd import Nsd, NsDeploymentFlavour, NsLevelContent, VnfProfile
from descriptors.nsd_build import build_nsd_archive, single_file_nsd
from descriptors.nsd_parse import parse_nsd
from descriptors.tosca import parse_vnfd
from descriptors.vnfd import LinkBitrate
from nfvo.nsd.constituents import profile_problems

pytestmark = pytest.mark.usefixtures("no_network")

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "descriptors" / "nsds" / "edge-gateway"
ENTRY = "Definitions/edge_gateway_nsd.yaml"
NAT = REPO / "descriptors" / "packages" / "nat"
NAT_VNFD_ID = "6f1b8a52-3c1e-4d7a-9f0e-2b5c8d4a1e01"


@pytest.fixture(scope="module")
def nsd() -> Nsd:
    return parse_nsd(SAMPLE, ENTRY)


def test_ns_identity(nsd: Nsd) -> None:
    assert nsd.nsd_id == "01ac4c04-8ab4-411c-9f2d-9c5ff9e5cd5f"
    assert nsd.invariant_id == "862c982e-5908-48fc-b864-36ef31dd174a"
    assert (nsd.name, nsd.designer, nsd.version) == ("edge-gateway", "nfv-mano project", "0.1.0")
    assert nsd.ns_node_type == "mano.nodes.nfv.ns.EdgeGateway"
    assert nsd.strict_constituent_onboarding is True
    assert nsd.flavour_ids == ["default"]
    assert nsd.vnfd_ids == [NAT_VNFD_ID]


def test_nat_between_inside_and_outside(nsd: Nsd) -> None:
    flavour = nsd.flavour("default")
    nat = flavour.vnf_profile("nat")
    assert (nat.vnfd_id, nat.flavour_id, nat.instantiation_level) == (
        NAT_VNFD_ID,
        "default",
        "small",
    )
    assert (nat.min_number_of_instances, nat.max_number_of_instances) == (1, 1)
    assert (nat.vnf_provider, nat.vnf_product_name, nat.vnfd_version) == (
        "nfv-mano project",
        "NAT",
        "0.1.0",
    )
    assert nat.virtual_links == {
        "virtual_link_inside": "inside_vl",
        "virtual_link_outside": "outside_vl",
        "virtual_link_mgmt": "mgmt_vl",
    }
    assert {link.id: link.cidrs for link in flavour.virtual_links} == {
        "inside_vl": ["10.10.0.0/24"],
        "outside_vl": ["198.51.100.0/24"],
        "mgmt_vl": ["10.254.0.0/24"],
    }
    assert flavour.virtual_link("inside_vl").max_bitrate == LinkBitrate(root=10_000_000_000)
    assert {(s.id, s.virtual_link, s.external_requirement) for s in flavour.saps} == {
        ("sap_inside", "inside_vl", "virtual_link_inside"),
        ("sap_outside", "outside_vl", "virtual_link_outside"),
    }
    assert flavour.requirement_mappings["virtual_link_outside"].node == "sap_outside"
    assert flavour.instantiation_order() == [["nat"]]


def test_scaling_aspect_scales_the_nat_fast_path(nsd: Nsd) -> None:
    aspect = nsd.flavour("default").scaling_aspect("nat_capacity")
    assert aspect.max_scale_level == 7
    assert [level.level for level in aspect.levels] == list(range(8))
    for level in aspect.levels:
        assert level.vnf_instances == {"nat": 1}
        assert level.vnf_scale_levels == {"nat": {"fastpath": level.level}}
    assert aspect.level(3).description == "4 NAT fast path units"
    with pytest.raises(KeyError):
        aspect.level(8)


def test_instantiation_levels(nsd: Nsd) -> None:
    flavour = nsd.flavour("default")
    assert flavour.default_instantiation_level == "small"
    assert flavour.instantiation_level().id == "small"
    small, large = flavour.instantiation_level("small"), flavour.instantiation_level("large")
    assert (small.vnf_instances, large.vnf_instances) == ({"nat": 1}, {"nat": 1})
    assert small.vnf_scale_levels == {"nat": {"fastpath": 0}}
    assert large.vnf_scale_levels == {"nat": {"fastpath": 3}}
    assert large.virtual_link_bitrates == {
        "inside_vl": LinkBitrate(root=4_000_000_000),
        "outside_vl": LinkBitrate(root=4_000_000_000),
    }
    with pytest.raises(KeyError):
        flavour.instantiation_level("medium")


def test_instantiation_levels_stand_at_the_matching_scale_level(nsd: Nsd) -> None:
    flavour = nsd.flavour("default")
    # large deploys NAT fastpath 3 with 1 NAT, as nat_capacity level 3 does.
    assert flavour.scale_levels_at(flavour.instantiation_level("large")) == {"nat_capacity": 3}
    assert flavour.scale_levels_at(flavour.instantiation_level("small")) == {"nat_capacity": 0}
    # A level that agrees with none (fastpath 9) or shares nothing with the aspect: 0.
    beyond = NsLevelContent(vnf_scale_levels={"nat": {"fastpath": 9}})
    unrelated = NsLevelContent(vnf_instances={"other": 2})
    assert flavour.scale_levels_at(beyond) == {"nat_capacity": 0}
    assert flavour.scale_levels_at(unrelated) == {"nat_capacity": 0}
    # Every level of the aspect agrees on the instance count alone; the highest one wins.
    assert flavour.scale_levels_at(NsLevelContent(vnf_instances={"nat": 1})) == {"nat_capacity": 7}


def test_model_survives_json(nsd: Nsd) -> None:
    """NSD management stores the model as JSON; NS LCM reads it back."""
    assert Nsd.model_validate(nsd.model_dump(mode="json")) == nsd


def test_profiles_fit_the_nat_vnfd(nsd: Nsd) -> None:
    vnfd = parse_vnfd(NAT, "Definitions/nat_vnfd_top.yaml")
    assert vnfd.vnfd_id == NAT_VNFD_ID
    flavour = nsd.flavour("default")
    assert profile_problems(flavour, flavour.vnf_profile("nat"), vnfd) == []
    # The VNFD's external CPs behind the NSD's requirements.
    mappings = vnfd.flavour("default").requirement_mappings
    ext_cps = {req: mappings[req].node for req in flavour.vnf_profile("nat").virtual_links}
    assert ext_cps == {
        "virtual_link_inside": "nat_inside",
        "virtual_link_outside": "nat_outside",
        "virtual_link_mgmt": "nat_mgmt",
    }


def test_shared_files_are_identical_copies() -> None:
    assert (SAMPLE / "Definitions" / "nfv_mano_nsd_types.yaml").read_bytes() == (
        sol001.PROJECT_NSD_TYPES.read_bytes()
    )
    # The VNF node type as the NAT package publishes it.
    assert (SAMPLE / "Definitions" / "vnfs" / "nat_types.yaml").read_bytes() == (
        NAT / "Definitions" / "nat_types.yaml"
    ).read_bytes()


def test_archive_build(tmp_path: Path) -> None:
    archive = build_nsd_archive(SAMPLE, tmp_path / "edge-gateway.zip")
    csar = validate_csar(archive)
    assert csar.manifest is not None and csar.manifest.package_kind == "NS"
    assert csar.entry_definitions == ENTRY
    with zipfile.ZipFile(archive) as files:
        assert files.namelist()[0] == "TOSCA-Metadata/TOSCA.meta"
    with pytest.raises(DescriptorError, match="describes a VNF package, not an NSD archive"):
        build_nsd_archive(NAT, tmp_path / "nat.zip")


def test_single_file_form(nsd: Nsd, tmp_path: Path) -> None:
    (tmp_path / "nsd.yaml").write_text(single_file_nsd(SAMPLE, ENTRY))
    single = parse_nsd(tmp_path, "nsd.yaml")
    assert single.model_dump(exclude={"entry_definitions", "flavours"}) == nsd.model_dump(
        exclude={"entry_definitions", "flavours"}
    )
    assert single.flavours[0].model_dump(exclude={"definitions_file"}) == nsd.flavours[
        0
    ].model_dump(exclude={"definitions_file"})

    # A type defined differently in two files cannot be folded into one.
    tree = tmp_path / "clash"
    shutil.copytree(SAMPLE, tree)
    types = tree / "Definitions" / "edge_gateway_types.yaml"
    types.write_text(
        types.read_text() + "  mano.nodes.nfv.nat.VNF:\n    derived_from: tosca.nodes.nfv.VNF\n"
    )
    with pytest.raises(DescriptorError, match="defined differently in two files"):
        single_file_nsd(tree, ENTRY)


def _profile(profile_id: str, dependencies: list[str]) -> VnfProfile:
    return VnfProfile(
        id=profile_id,
        node_type="test.VNF",
        vnfd_id=f"vnfd-{profile_id}",
        vnf_provider="p",
        vnf_product_name=profile_id,
        vnf_software_version="1",
        vnfd_version="1",
        flavour_id="default",
        min_number_of_instances=1,
        max_number_of_instances=1,
        dependencies=dependencies,
    )


def test_instantiation_order_follows_dependencies() -> None:
    """Dependencies first; profiles that do not depend on each other share a group."""
    flavour = NsDeploymentFlavour(
        flavour_id="df",
        definitions_file="nsd.yaml",
        vnf_profiles=[
            _profile("vpn", ["cen"]),
            _profile("cen", ["nat", "slb"]),
            _profile("nat", []),
            _profile("slb", []),
        ],
    )
    assert flavour.instantiation_order() == [["nat", "slb"], ["cen"], ["vpn"]]
    looped = flavour.model_copy(
        update={"vnf_profiles": [_profile("a", ["b"]), _profile("b", ["a"])]}
    )
    with pytest.raises(ValueError, match="cyclic"):
        looped.instantiation_order()
