"""parse_vnfd: offline import resolution, tosca-parser error reporting, occurrence counting."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from toscaparser.tosca_template import ToscaTemplate

from descriptors import sol001
from descriptors.errors import DescriptorError
from descriptors.tosca import parse_vnfd

ETSI = "https://forge.etsi.org/rep/nfv/SOL001/raw/{version}/etsi_nfv_sol001_{kind}_types.yaml"
VNFD_TYPES_URL = ETSI.format(version="v4.4.1", kind="vnfd")


pytestmark = pytest.mark.usefixtures("no_network")


VNF_TYPE = """\
  test.VNF:
    derived_from: tosca.nodes.nfv.VNF
    properties:
      descriptor_id:
        type: string
        default: 11111111-2222-3333-4444-555555555555
      descriptor_version: {{type: string, default: "1.0"}}
      provider: {{type: string, default: test provider}}
      product_name: {{type: string, default: TestVNF}}
      software_version: {{type: string, default: "1.0"}}
      vnfm_info: {{type: list, entry_schema: {{type: string}}, default: [test]}}
      flavour_id: {{type: string, default: simple}}
      flavour_description: {{type: string, default: ""}}
    requirements:
      - virtual_link_external:
          capability: tosca.capabilities.nfv.VirtualLinkable
          relationship: tosca.relationships.nfv.VirtualLinksTo
{extra_requirements}
"""

TOPOLOGY = """\
topology_template:
  substitution_mappings:
    node_type: test.VNF
    properties:
      flavour_id: {flavour}
    requirements:
      virtual_link_external: [ext_cp, external_virtual_link]
{extra_mappings}
  node_templates:
    VNF:
      type: test.VNF
      properties:
        flavour_description: the {flavour} flavour
      interfaces:
        Vnflcm:
          instantiate: {{}}
          terminate: {{}}
    vdu:
      type: tosca.nodes.nfv.Vdu.Compute
      properties:
        name: vdu
        vdu_profile: {{min_number_of_instances: 1, max_number_of_instances: 2}}
      capabilities:
        virtual_compute:
          properties:
            virtual_cpu: {{num_virtual_cpu: 1}}
            virtual_memory: {{virtual_mem_size: 512 MiB}}
    vl:
      type: tosca.nodes.nfv.VnfVirtualLink
      properties:
        connectivity_type: {{layer_protocols: [ipv4]}}
        vl_profile:
          max_bitrate_requirements: {{root: 1000}}
          min_bitrate_requirements: {{root: 100}}
    cp:
      type: tosca.nodes.nfv.VduCp
      properties:
        layer_protocols: [ipv4]
      requirements:
{cp_requirements}
    ext_cp:
      type: tosca.nodes.nfv.VnfExtCp
      properties:
        layer_protocols: [ipv4]
      requirements:
        - internal_virtual_link: vl
{extra_nodes}
"""

DEFAULT_CP_REQUIREMENTS = "        - virtual_binding: vdu\n        - virtual_link: vl"


def single_file(
    imports: list[str] | None = None,
    *,
    flavour: str = "simple",
    extra_requirements: str = "",
    extra_mappings: str = "",
    cp_requirements: str = DEFAULT_CP_REQUIREMENTS,
    extra_nodes: str = "",
) -> str:
    imports = [VNFD_TYPES_URL] if imports is None else imports
    return (
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        + "imports:\n"
        + "".join(f"  - {i}\n" for i in imports)
        + "node_types:\n"
        + VNF_TYPE.format(extra_requirements=extra_requirements)
        + TOPOLOGY.format(
            flavour=flavour,
            extra_mappings=extra_mappings,
            cp_requirements=cp_requirements,
            extra_nodes=extra_nodes,
        )
    )


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return root


def test_single_file_vnfd_parses(tmp_path: Path) -> None:
    write(tmp_path, {"Definitions/vnfd.yaml": single_file()})
    vnfd = parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    assert vnfd.vnfd_id == "11111111-2222-3333-4444-555555555555"
    assert vnfd.vnf_product_name == "TestVNF"
    (flavour,) = vnfd.flavours
    assert flavour.flavour_id == "simple"
    assert flavour.description == "the simple flavour"
    compute = flavour.vdu("vdu").virtual_compute
    assert compute is not None
    assert compute.virtual_mem_size == 512 * 1024**2
    assert flavour.vdu("vdu").role == "other"
    assert flavour.vdu("vdu").connection_points == ["cp"]
    assert flavour.ext_cps[0].external_requirement == "virtual_link_external"
    assert set(flavour.lcm_operations) == {"instantiate", "terminate"}


def test_import_by_bare_name(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "Definitions/vnfd.yaml": single_file(
                ["etsi_nfv_sol001_common_types.yaml", "etsi_nfv_sol001_vnfd_types.yaml"]
            )
        },
    )
    assert parse_vnfd(tmp_path, "Definitions/vnfd.yaml").flavours[0].flavour_id == "simple"


@pytest.mark.parametrize(
    "url",
    [
        ETSI.format(version="v2.6.1", kind="vnfd"),
        ETSI.format(version="v3.3.1", kind="vnfd"),
        ETSI.format(version="v4.2.1", kind="vnfd"),
        ETSI.format(version="v4.4.1", kind="vnfd"),
        ETSI.format(version="v4.5.1", kind="vnfd"),
        "https://forge.etsi.org/rep/nfv/SOL001/-/raw/v4.3.1/etsi_nfv_sol001_vnfd_types.yaml",
    ],
)
def test_etsi_urls_of_every_release_from_2_6_1_resolve_locally(tmp_path: Path, url: str) -> None:
    common = url.replace("vnfd_types", "common_types")
    write(tmp_path, {"Definitions/vnfd.yaml": single_file([common, url])})
    assert parse_vnfd(tmp_path, "Definitions/vnfd.yaml").vnf_product_name == "TestVNF"


def test_local_type_file_mapping() -> None:
    assert sol001.local_type_file("etsi_nfv_sol001_vnfd_types.yaml") == sol001.VNFD_TYPES
    assert sol001.local_type_file(ETSI.format(version="v2.6.1", kind="common")) == (
        sol001.COMMON_TYPES
    )
    assert sol001.local_type_file(ETSI.format(version="v2.5.1", kind="vnfd")) is None
    assert sol001.local_type_file(ETSI.format(version="v4.4.1", kind="nsd")) == sol001.NSD_TYPES
    assert sol001.local_type_file("http://example.com/etsi_nfv_sol001_vnfd_types.yaml") is None


@pytest.mark.parametrize(
    "reference",
    [
        "https://example.com/types/vendor_types.yaml",
        ETSI.format(version="v2.5.1", kind="vnfd"),
        "https://forge.etsi.org/rep/nfv/SOL001/raw/v4.4.1/etsi_nfv_sol001_pnfd_types.yaml",
        "file:///etc/passwd",
    ],
)
def test_unknown_remote_import_is_refused(tmp_path: Path, reference: str) -> None:
    write(tmp_path, {"Definitions/vnfd.yaml": single_file([VNFD_TYPES_URL, reference])})
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    assert "unknown import" in err.value.detail
    assert reference in err.value.detail
    assert err.value.location == "Definitions/vnfd.yaml"


@pytest.mark.parametrize("reference", ["missing_types.yaml", "../outside.yaml", "/etc/hosts"])
def test_missing_or_escaping_relative_import_is_refused(tmp_path: Path, reference: str) -> None:
    pkg = tmp_path / "pkg"
    write(tmp_path, {"outside.yaml": "tosca_definitions_version: tosca_simple_yaml_1_3\n"})
    write(pkg, {"Definitions/vnfd.yaml": single_file([VNFD_TYPES_URL, reference])})
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(pkg, "Definitions/vnfd.yaml")
    assert "unknown import" in err.value.detail
    assert reference in err.value.detail


def test_nested_import_problems_name_the_importing_file(tmp_path: Path) -> None:
    types = (
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        "imports:\n  - https://example.org/other.yaml\n"
    )
    write(
        tmp_path,
        {
            "Definitions/vnfd.yaml": single_file([VNFD_TYPES_URL, "types/own.yaml"]),
            "Definitions/types/own.yaml": types,
        },
    )
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    assert err.value.location == "Definitions/types/own.yaml"
    assert "https://example.org/other.yaml" in err.value.detail


def test_imported_files_are_checked_by_safe_yaml(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    write(
        tmp_path,
        {
            "Definitions/vnfd.yaml": single_file([VNFD_TYPES_URL, "bomb.yaml"]),
            "Definitions/bomb.yaml": bomb,
        },
    )
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    assert err.value.location == "Definitions/bomb.yaml"


def test_unknown_node_type_is_refused_with_its_name(tmp_path: Path) -> None:
    extra = "    bogus:\n      type: tosca.nodes.nfv.NoSuchThing\n"
    write(tmp_path, {"Definitions/vnfd.yaml": single_file(extra_nodes=extra)})
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    assert "tosca.nodes.nfv.NoSuchThing" in err.value.detail
    assert err.value.location == "Definitions/vnfd.yaml"


def test_missing_required_property_is_refused_naming_it(tmp_path: Path) -> None:
    text = single_file().replace(
        "        vl_profile:\n          max_bitrate_requirements: {root: 1000}\n"
        "          min_bitrate_requirements: {root: 100}\n",
        "",
    )
    write(tmp_path, {"Definitions/vnfd.yaml": text})
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    assert "vl_profile" in err.value.detail
    assert '"vl"' in err.value.detail


def test_several_problems_are_listed_once_each(tmp_path: Path) -> None:
    text = (
        single_file()
        .replace("        name: vdu\n", "")
        .replace(
            "layer_protocols: [ipv4]\n      requirements:\n        - internal",
            "layer_protocols: [ipv5]\n      requirements:\n        - internal",
        )
    )
    write(tmp_path, {"Definitions/vnfd.yaml": text})
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    detail = err.value.detail
    assert detail.startswith("TOSCA validation failed: ")
    assert 'template "vdu" is missing required field "[\'name\']"' in detail
    assert "ipv5" in detail
    assert "\n" not in detail
    assert str(tmp_path) not in detail


# Requirement occurrences ---------------------------------------------------
#
# The VNF specific type adds `virtual_link_internal`, realised by a VduCp that
# is exposed directly (it has no virtual_link assignment of its own), and
# every VnfExtCp's external_virtual_link comes from substitution_mappings.
# This is valid SOL001 that tosca-parser 2.15's own check rejects.

EXPOSED_VDU_CP = """\
    direct_cp:
      type: tosca.nodes.nfv.VduCp
      properties:
        layer_protocols: [ipv4]
      requirements:
        - virtual_binding: vdu
"""
INTERNAL_REQUIREMENT = """\
      - virtual_link_internal:
          capability: tosca.capabilities.nfv.VirtualLinkable
          relationship: tosca.relationships.nfv.VirtualLinksTo"""
INTERNAL_MAPPING = "      virtual_link_internal: [direct_cp, virtual_link]"


def occurrence_case(imports: list[str]) -> str:
    return single_file(
        imports,
        extra_requirements=INTERNAL_REQUIREMENT,
        extra_mappings=INTERNAL_MAPPING,
        extra_nodes=EXPOSED_VDU_CP,
    )


def test_plain_tosca_parser_rejects_the_valid_occurrence_case(tmp_path: Path) -> None:
    """Reproduces the tosca-parser 2.15 miscount this package works around."""
    path = write(tmp_path, {"vnfd.yaml": occurrence_case([str(sol001.VNFD_TYPES)])}) / "vnfd.yaml"
    with pytest.raises(Exception, match="wrong number of occurrences") as err:
        ToscaTemplate(str(path))
    message = str(err.value)
    assert 'Relationship "virtual_link_internal" in template "VNF"' in message
    assert 'Relationship "external_virtual_link" in template "ext_cp"' in message
    assert 'Relationship "virtual_link" in template "direct_cp"' in message


def test_occurrence_case_parses(tmp_path: Path) -> None:
    write(tmp_path, {"Definitions/vnfd.yaml": occurrence_case([VNFD_TYPES_URL])})
    flavour = parse_vnfd(tmp_path, "Definitions/vnfd.yaml").flavours[0]
    direct = next(cp for cp in flavour.vdu_cps if cp.id == "direct_cp")
    assert direct.exposed_as == "virtual_link_internal"
    assert direct.virtual_link is None
    assert flavour.requirement_mappings["virtual_link_internal"].node == "direct_cp"


def test_missing_requirement_is_still_rejected(tmp_path: Path) -> None:
    """A VduCp bound to no VDU, and not exposed: a real occurrence error."""
    text = single_file(cp_requirements="        - virtual_link: vl")
    write(tmp_path, {"Definitions/vnfd.yaml": text})
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    assert 'Relationship "virtual_binding" in template "cp" has a wrong number of occurrences' in (
        err.value.detail
    )


def test_too_many_assignments_are_still_rejected(tmp_path: Path) -> None:
    """VNF.virtual_link allows [0, 1]; exposing it twice is too many."""
    text = single_file(
        extra_mappings="      virtual_link: [ext_cp, external_virtual_link]",
        extra_nodes="",
    ).replace(
        "      flavour_description: the simple flavour\n",
        "      flavour_description: the simple flavour\n"
        "      requirements:\n        - virtual_link: vl\n",
    )
    write(tmp_path, {"Definitions/vnfd.yaml": text})
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    assert 'Relationship "virtual_link" in template "VNF" has a wrong number of occurrences' in (
        err.value.detail
    )


def test_unexposed_vnf_requirement_is_still_rejected(tmp_path: Path) -> None:
    """The VNF type needs virtual_link_internal but the flavour realises it nowhere."""
    text = single_file(extra_requirements=INTERNAL_REQUIREMENT)
    write(tmp_path, {"Definitions/vnfd.yaml": text})
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
    assert 'Relationship "virtual_link_internal" in template "VNF"' in err.value.detail


# Multi-flavour layout ------------------------------------------------------


def flavour_file(flavour: str) -> str:
    body = single_file([VNFD_TYPES_URL, "types.yaml"], flavour=flavour)
    return (
        body.split("node_types:\n")[0] + "topology_template:" + body.split("topology_template:")[1]
    )


def test_multi_flavour_layout(tmp_path: Path) -> None:
    types = (
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        f"imports:\n  - {VNFD_TYPES_URL}\n"
        "node_types:\n" + VNF_TYPE.format(extra_requirements="")
    )
    top = (
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        "imports:\n"
        f"  - {ETSI.format(version='v3.3.1', kind='common')}\n"
        "  - etsi_nfv_sol001_vnfd_types.yaml\n"
        "  - types.yaml\n  - df_simple.yaml\n  - df_complex.yaml\n"
    )
    write(
        tmp_path,
        {
            "Definitions/top.yaml": top,
            "Definitions/types.yaml": types,
            "Definitions/df_simple.yaml": flavour_file("simple"),
            "Definitions/df_complex.yaml": flavour_file("complex"),
        },
    )
    vnfd = parse_vnfd(tmp_path, "Definitions/top.yaml")
    assert vnfd.flavour_ids == ["simple", "complex"]
    assert vnfd.flavour("complex").definitions_file == "Definitions/df_complex.yaml"
    assert vnfd.flavour("complex").description == "the complex flavour"


def test_flavour_with_topology_error_names_the_flavour_file(tmp_path: Path) -> None:
    types = (
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        f"imports:\n  - {VNFD_TYPES_URL}\n"
        "node_types:\n" + VNF_TYPE.format(extra_requirements="")
    )
    broken = flavour_file("complex").replace("num_virtual_cpu: 1", "num_virtual_cpu: 0")
    write(
        tmp_path,
        {
            "Definitions/top.yaml": "tosca_definitions_version: tosca_simple_yaml_1_3\n"
            "imports:\n  - types.yaml\n  - df_simple.yaml\n  - df_complex.yaml\n",
            "Definitions/types.yaml": types,
            "Definitions/df_simple.yaml": flavour_file("simple"),
            "Definitions/df_complex.yaml": broken,
        },
    )
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(tmp_path, "Definitions/top.yaml")
    assert err.value.location == "Definitions/df_complex.yaml"
    assert "num_virtual_cpu" in err.value.detail


def test_no_flavour_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "Definitions/top.yaml": textwrap.dedent(
                f"""\
                tosca_definitions_version: tosca_simple_yaml_1_3
                imports:
                  - {VNFD_TYPES_URL}
                """
            )
        },
    )
    with pytest.raises(DescriptorError, match="no deployment flavour"):
        parse_vnfd(tmp_path, "Definitions/top.yaml")


def test_vdu_role_from_metadata_and_bad_role(tmp_path: Path) -> None:
    text = single_file().replace(
        "    vdu:\n      type: tosca.nodes.nfv.Vdu.Compute\n",
        "    vdu:\n      type: tosca.nodes.nfv.Vdu.Compute\n      metadata: {role: slowpath}\n",
    )
    write(tmp_path, {"Definitions/vnfd.yaml": text})
    assert parse_vnfd(tmp_path, "Definitions/vnfd.yaml").flavours[0].vdus[0].role == "slowpath"
    write(tmp_path, {"Definitions/vnfd.yaml": text.replace("role: slowpath", "role: middle")})
    with pytest.raises(DescriptorError, match="role 'middle'"):
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")


def test_sw_image_artifact_without_required_properties_is_refused(tmp_path: Path) -> None:
    text = single_file().replace(
        "    vl:\n",
        "      artifacts:\n        sw_image:\n          type: tosca.artifacts.nfv.SwImage\n"
        "          file: images/vdu.qcow2\n          properties: {name: vdu, version: '1'}\n"
        "    vl:\n",
    )
    write(tmp_path, {"Definitions/vnfd.yaml": text})
    with pytest.raises(DescriptorError, match="checksum, container_format, disk_format"):
        parse_vnfd(tmp_path, "Definitions/vnfd.yaml")
