"""The project's four sample VNF package source trees parse offline into complete models."""

from __future__ import annotations

from pathlib import Path

import pytest

from descriptors import sol001
from descriptors.tosca import parse_vnfd
from descriptors.vnfd import Vnfd

PACKAGES = Path(__file__).resolve().parents[3] / "descriptors" / "packages"

# name -> (data link names, number of flavours)
EXPECTED = {
    "nat": (["inside", "outside"], ["default", "large"]),
    "slb": (["vip", "backend"], ["default"]),
    "cen": (["vpc_a", "vpc_b", "vpc_c"], ["default"]),
    "vpn": (["protected", "tunnel"], ["default"]),
}


pytestmark = pytest.mark.usefixtures("no_network")


def meta(name: str) -> dict[str, str]:
    lines = (PACKAGES / name / "TOSCA-Metadata" / "TOSCA.meta").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line)


def parse(name: str) -> Vnfd:
    return parse_vnfd(PACKAGES / name, meta(name)["Entry-Definitions"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tosca_meta_and_manifest(name: str) -> None:
    entries = meta(name)
    assert entries["TOSCA-Meta-File-Version"] == "1.0"
    assert entries["CSAR-Version"] == "1.1"
    assert entries["ETSI-Entry-Manifest"] == f"{name}.mf"
    assert entries["ETSI-Entry-Change-Log"] == "ChangeLog.txt"
    assert (PACKAGES / name / entries["Entry-Definitions"]).is_file()
    assert (PACKAGES / name / "ChangeLog.txt").is_file()
    manifest = (PACKAGES / name / f"{name}.mf").read_text().splitlines()
    assert manifest[0] == "metadata:"
    keys = {line.split(":", 1)[0] for line in manifest[1:] if line}
    # Only the metadata block: the CSAR builder adds Source/Algorithm/Hash.
    assert keys == {
        "vnf_provider_id",
        "vnf_product_name",
        "vnf_release_date_time",
        "vnf_package_version",
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_project_types_copy_is_current(name: str) -> None:
    copy = PACKAGES / name / "Definitions" / "nfv_mano_types.yaml"
    assert copy.read_bytes() == sol001.PROJECT_TYPES.read_bytes()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_package_parses_into_a_complete_model(name: str) -> None:
    data_links, flavour_ids = EXPECTED[name]
    vnfd = parse(name)
    assert vnfd.vnf_provider == "nfv-mano project"
    assert vnfd.vnf_product_name == name.upper()
    assert vnfd.vnf_software_version == "0.1.0"
    assert vnfd.flavour_ids == flavour_ids
    assert vnfd.configurable_properties["additional_configurable_properties"]
    assert vnfd.modifiable_attributes["extensions"]
    assert {image.id for image in vnfd.software_images} == {f"{name}_fastpath", f"{name}_slowpath"}

    flavour = vnfd.flavour("default")
    (fastpath,) = flavour.vdus_with_role("fastpath")
    (slowpath,) = flavour.vdus_with_role("slowpath")
    assert fastpath.command == ["python", "-m", f"vnfs.{name}.fastpath"]
    assert slowpath.command == ["python", "-m", f"vnfs.{name}.slowpath"]
    assert fastpath.virtual_compute is not None and slowpath.virtual_compute is not None
    assert fastpath.virtual_compute.num_virtual_cpu == 2
    assert fastpath.virtual_compute.virtual_mem_size == 1024**3
    assert slowpath.virtual_compute.num_virtual_cpu == 1
    assert slowpath.virtual_compute.virtual_mem_size == 512 * 1024**2
    assert fastpath.sw_image is not None
    assert fastpath.sw_image.name == f"nfv-mano/{name}-fastpath"
    assert fastpath.sw_image.container_format == "docker"
    assert (
        fastpath.vdu_profile.min_number_of_instances,
        fastpath.vdu_profile.max_number_of_instances,
    ) == (1, 8)

    link_ids = {link.id for link in flavour.virtual_links}
    assert link_ids == {f"{name}_{link}_vl" for link in [*data_links, "punt", "mgmt"]}
    assert all(link.cidrs for link in flavour.virtual_links)
    punt = flavour.virtual_link(f"{name}_punt_vl")
    punt_cps = {cp.vdu for cp in flavour.vdu_cps if cp.virtual_link == punt.id}
    assert punt_cps == {fastpath.id, slowpath.id}
    fp_links = {cp.virtual_link for cp in flavour.vdu_cps if cp.vdu == fastpath.id}
    assert fp_links == link_ids

    exposed = {cp.external_requirement: cp.internal_virtual_link for cp in flavour.ext_cps}
    assert exposed == {
        f"virtual_link_{link}": f"{name}_{link}_vl" for link in [*data_links, "mgmt"]
    }

    aspect = flavour.scaling_aspect("fastpath")
    assert aspect.max_scale_level == 7
    assert flavour.vdu_deltas("fastpath", fastpath.id) == {"delta_1": 1}
    assert flavour.vdu_deltas("fastpath", slowpath.id) == {}
    assert fastpath.initial_delta == 1
    levels = {level.id: level for level in flavour.instantiation_levels}
    assert {k: v.vdu_instances[fastpath.id] for k, v in levels.items()} == {
        "small": 1,
        "medium": 2,
        "large": 4,
    }
    assert {k: v.scale_info["fastpath"] for k, v in levels.items()} == {
        "small": 0,
        "medium": 1,
        "large": 3,
    }
    assert flavour.instantiation_level().id == "small"

    metrics = {(m.level, m.performance_metric) for m in flavour.monitoring_parameters}
    assert {
        ("vnf", "packet_incoming_vnf_ext_cp"),
        ("vnf", "byte_incoming_vnf_ext_cp"),
        ("vdu", "packets_per_second"),
        ("vdu", "bits_per_second"),
        ("vdu", "active_flows"),
    } <= metrics
    assert all(
        m.collection_period and m.collection_period > 0 for m in flavour.monitoring_parameters
    )
    assert {"instantiate", "terminate", "scale", "heal"} <= set(flavour.lcm_operations)


def test_nat_large_flavour() -> None:
    large = parse("nat").flavour("large")
    (fastpath,) = large.vdus_with_role("fastpath")
    assert fastpath.virtual_compute is not None
    assert fastpath.virtual_compute.num_virtual_cpu == 4
    assert large.default_instantiation_level == "medium"
    assert large.instantiation_level("xlarge").vdu_instances[fastpath.id] == 8


def test_nat_public_pool_is_a_configurable_property() -> None:
    vnfd = parse("nat")
    pool = vnfd.configurable_properties["additional_configurable_properties"]["public_pool"]
    assert pool["cidr"] == "203.0.113.0/26"
    assert vnfd.modifiable_attributes["extensions"]["port_block_size"] == 512


def test_vnfd_ids_are_distinct() -> None:
    ids = [parse(name).vnfd_id for name in EXPECTED]
    assert len(set(ids)) == len(ids)


def test_vpn_uses_the_single_file_layout() -> None:
    vnfd = parse("vpn")
    assert vnfd.entry_definitions == vnfd.flavours[0].definitions_file
