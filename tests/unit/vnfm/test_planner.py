"""The planner turns the sample VNFDs and LCM requests into valid VIM specs and scale levels."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from descriptors.build import build_csar
from descriptors.csar import open_csar
from descriptors.tosca import parse_vnfd
from descriptors.vnfd import (
    DeploymentFlavour,
    InstantiationLevel,
    ScalingAspect,
    VduCp,
    VduScalingAspectDeltas,
    VirtualLinkProtocolData,
    Vnfd,
)
from vim_adapters.interface import NAME_PATTERN, NetworkSpec, UnitSpec
from vnfm.planner import (
    CONFIG_FILE,
    ExternalLink,
    PlanError,
    ResourcePlan,
    check_consistency,
    interface_name,
    interface_names,
    levels_for_instantiation,
    network_name,
    plan_instantiation,
    replicas_at,
    scale,
    scale_to_level,
    unit_name,
)

PACKAGES = Path(__file__).resolve().parents[3] / "descriptors" / "packages"
SAMPLES = ("nat", "slb", "cen", "vpn")
INSTANCE = "6f1b8a52-3c1e-4d7a-9f0e-2b5c8d4a1e01"
PREFIX = "v6f1b8a52"


@pytest.fixture(scope="session")
def vnfds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Vnfd]:
    parsed = {}
    for name in SAMPLES:
        work = tmp_path_factory.mktemp(name)
        csar = open_csar(build_csar(PACKAGES / name, work / f"{name}.csar"), work / "pkg")
        parsed[name] = parse_vnfd(csar.root, csar.entry_definitions)
    return parsed


@pytest.fixture
def nat(vnfds: dict[str, Vnfd]) -> Vnfd:
    return vnfds["nat"]


def plan(vnfd: Vnfd, level: str | None = None, **kwargs: Any) -> ResourcePlan:
    return plan_instantiation(
        vnfd,
        flavour_id=kwargs.pop("flavour_id", "default"),
        instantiation_level_id=level,
        vnf_instance_id=INSTANCE,
        **kwargs,
    )


def with_flavour(vnfd: Vnfd, **changes: Any) -> Vnfd:
    """The VNFD with its default flavour changed (model_copy skips validation, so build anew)."""
    flavour = vnfd.flavour("default")
    changed = DeploymentFlavour.model_validate({**flavour.model_dump(), **changes})
    return vnfd.model_copy(update={"flavours": [changed]})


def dump(items: list[Any]) -> list[dict[str, Any]]:
    return [item.model_dump() for item in items]


def unit(result: ResourcePlan, vdu_id: str) -> UnitSpec:
    (found,) = [u for u in result.units if u.name == unit_name(INSTANCE, vdu_id)]
    return found


# ---------------------------------------------------------------- names


def test_names_follow_the_documented_form() -> None:
    assert network_name(INSTANCE, "nat_inside_vl") == f"{PREFIX}-nat-inside-vl"
    assert unit_name(INSTANCE, "nat_fastpath") == f"{PREFIX}-nat-fastpath"
    assert unit_name(INSTANCE.upper(), "NAT_FastPath") == f"{PREFIX}-nat-fastpath"
    # Stable: the executor re-plans after a crash and must find the same resources.
    assert network_name(INSTANCE, "nat_inside_vl") == network_name(INSTANCE, "nat_inside_vl")


@pytest.mark.parametrize(
    "local_id",
    ["x" * 80, "a" * 54, "a" * 55, "link_", "vl.with.dots", "Ünïcode", "", "-", "a__b", "9lives"],
)
def test_names_are_always_valid(local_id: str) -> None:
    for name in (network_name(INSTANCE, local_id), unit_name("not-a-uuid", local_id)):
        assert re.match(NAME_PATTERN, name), name
        assert len(name) <= 63


def test_long_and_odd_ids_keep_distinct_names() -> None:
    ids = ["x" * 70 + "_a", "x" * 70 + "_b", "vl.a", "vl/a", "vl a", "a" * 54, "a" * 55]
    names = [network_name(INSTANCE, i) for i in ids]
    assert len(set(names)) == len(ids)
    assert network_name("11111111-0000", "vl") != network_name("22222222-0000", "vl")


def test_interface_names() -> None:
    assert interface_name("nat_fastpath_inside", "nat_fastpath") == "inside"
    assert interface_name("cen_fastpath_vpc_a", "cen_fastpath") == "vpc_a"
    assert interface_name("data0", "nat_fastpath") == "data0"
    for cp in ("a_very_long_connection_point_name", "Data.Port-1", "0eth", "vdu_lo", "vdu_eth0"):
        name = interface_name(cp, "vdu")
        assert re.match(r"^[a-z][a-z0-9_]{0,14}$", name), name
        assert name not in ("lo", "eth0")
    assert interface_name("cp_" + "x" * 20 + "1", "vdu") != interface_name(
        "cp_" + "x" * 20 + "2", "vdu"
    )


def test_interface_names_settle_clashes_within_a_vdu() -> None:
    names = interface_names("nat_fastpath", ["nat_fastpath_inside", "inside", "Inside", "mgmt"])
    assert len(set(names.values())) == 4
    assert names["mgmt"] == "mgmt"
    assert all(re.match(r"^[a-z][a-z0-9_]{0,14}$", n) for n in names.values())


# ---------------------------------------------------------------- instantiation


def test_nat_default_plan(nat: Vnfd) -> None:
    result = plan(nat)
    assert result == plan(nat, "small")
    assert [(n.name, n.cidr, n.gateway) for n in result.networks] == [
        (f"{PREFIX}-nat-inside-vl", "10.10.0.0/24", None),
        (f"{PREFIX}-nat-outside-vl", "198.51.100.0/24", None),
        (f"{PREFIX}-nat-punt-vl", "10.255.0.0/27", None),
        (f"{PREFIX}-nat-mgmt-vl", "10.254.0.0/24", None),
    ]
    assert result.replicas == {"nat_fastpath": 1, "nat_slowpath": 1}
    assert result.scale_levels == {"fastpath": 0}
    assert len(result.units) == 2

    fastpath, slowpath = unit(result, "nat_fastpath"), unit(result, "nat_slowpath")
    assert fastpath.replicas == 1 and slowpath.replicas == 1
    assert [(cp.name, cp.network) for cp in fastpath.connection_points] == [
        ("inside", f"{PREFIX}-nat-inside-vl"),
        ("outside", f"{PREFIX}-nat-outside-vl"),
        ("punt", f"{PREFIX}-nat-punt-vl"),
        ("mgmt", f"{PREFIX}-nat-mgmt-vl"),
    ]
    assert [cp.name for cp in slowpath.connection_points] == ["punt", "mgmt"]
    (process,) = fastpath.processes
    assert process.name == "fastpath"
    assert process.command == ("python", "-m", "vnfs.nat.fastpath")
    assert process.env == {"VNF_UNIT": "fastpath"}
    assert slowpath.processes[0].command == ("python", "-m", "vnfs.nat.slowpath")
    assert (fastpath.cpu, fastpath.memory_mib) == (2.0, 1024)
    assert (slowpath.cpu, slowpath.memory_mib) == (1.0, 512)


def test_config_file(nat: Vnfd) -> None:
    result = plan(nat, additional_params={"public_ip": "198.51.100.1"}, config={"extra.conf": "x"})
    fastpath = unit(result, "nat_fastpath")
    assert set(fastpath.config_files) == {CONFIG_FILE, "extra.conf"}
    assert json.loads(fastpath.config_files[CONFIG_FILE]) == {
        "vnfInstanceId": INSTANCE,
        "flavourId": "default",
        "vdu": "nat_fastpath",
        "additionalParams": {"public_ip": "198.51.100.1"},
        "configurableProperties": nat.configurable_properties,
    }
    with pytest.raises(PlanError, match=CONFIG_FILE):
        plan(nat, config={CONFIG_FILE: "{}"})
    with pytest.raises(PlanError, match="additionalParams"):
        plan(nat, additional_params={"bad": object()})


@pytest.mark.parametrize(
    ("flavour_id", "level", "fastpath", "aspect_level"),
    [
        ("default", "medium", 2, 1),
        ("default", "large", 4, 3),
        ("large", None, 2, 1),
        ("large", "xlarge", 8, 7),
    ],
)
def test_nat_levels(
    nat: Vnfd, flavour_id: str, level: str | None, fastpath: int, aspect_level: int
) -> None:
    result = plan(nat, level, flavour_id=flavour_id)
    assert result.replicas == {"nat_fastpath": fastpath, "nat_slowpath": 1}
    assert result.scale_levels == {"fastpath": aspect_level}
    assert unit(result, "nat_fastpath").replicas == fastpath


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_plan_is_valid(vnfds: dict[str, Vnfd], name: str) -> None:
    vnfd = vnfds[name]
    for flavour in vnfd.flavours:
        for level in flavour.instantiation_levels:
            result = plan(vnfd, level.id, flavour_id=flavour.flavour_id)
            # Re-validating proves the specs pass every VIM-side check, not just construction.
            assert [NetworkSpec.model_validate(n) for n in dump(result.networks)] == result.networks
            assert [UnitSpec.model_validate(u) for u in dump(result.units)] == result.units
            names = [n.name for n in result.networks] + [u.name for u in result.units]
            assert len(set(names)) == len(names)
            network_names = {n.name for n in result.networks}
            for spec in result.units:
                interfaces = [cp.name for cp in spec.connection_points]
                assert len(set(interfaces)) == len(interfaces)
                assert {cp.network for cp in spec.connection_points} <= network_names
            assert {n.cidr for n in result.networks} == {
                cidr for vl in flavour.virtual_links for cidr in vl.cidrs
            }
            assert result.replicas == {vdu.id: level.vdu_instances[vdu.id] for vdu in flavour.vdus}


def test_unknown_flavour_and_level_are_named(nat: Vnfd) -> None:
    with pytest.raises(PlanError, match=r"'tiny'.*default, large") as caught:
        plan(nat, flavour_id="tiny")
    assert "tiny" in caught.value.detail
    with pytest.raises(PlanError, match=r"'huge'.*small, medium, large"):
        plan(nat, "huge")
    with pytest.raises(PlanError, match="no default instantiation level"):
        plan(with_flavour(nat, default_instantiation_level=None))


def test_level_without_count_uses_vdu_profile_minimum(nat: Vnfd) -> None:
    levels = [InstantiationLevel(id="bare", description="no counts")]
    result = plan(
        with_flavour(nat, instantiation_levels=levels, default_instantiation_level="bare")
    )
    assert result.replicas == {"nat_fastpath": 1, "nat_slowpath": 1}
    assert result.scale_levels == {"fastpath": 0}


def test_level_outside_vdu_profile_is_refused(nat: Vnfd) -> None:
    levels = [InstantiationLevel(id="big", description="", vdu_instances={"nat_slowpath": 2})]
    with pytest.raises(PlanError, match=r"nat_slowpath.*2 instances.*1\.\.1"):
        plan(with_flavour(nat, instantiation_levels=levels), "big")


def test_link_without_l3_data_is_refused(nat: Vnfd) -> None:
    links = [
        vl.model_copy(
            update={
                "protocol_data": [VirtualLinkProtocolData(associated_layer_protocol="ethernet")]
            }
        )
        if vl.id == "nat_punt_vl"
        else vl
        for vl in nat.flavour("default").virtual_links
    ]
    with pytest.raises(PlanError, match=r"nat_punt_vl.*no L3"):
        plan(with_flavour(nat, virtual_links=[vl.model_dump() for vl in links]))


def test_vdu_without_command_is_refused(nat: Vnfd) -> None:
    vdus = [vdu.model_dump() for vdu in nat.flavour("default").vdus]
    vdus[1]["command"] = []
    with pytest.raises(PlanError, match="nat_slowpath has no command"):
        plan(with_flavour(nat, vdus=vdus))


def test_cp_order_then_id(nat: Vnfd) -> None:
    cps = [cp.model_dump() for cp in nat.flavour("default").vdu_cps]
    for cp in cps:
        if cp["vdu"] == "nat_fastpath":
            cp["order"] = None if cp["id"].endswith(("mgmt", "inside")) else 5
    result = plan(with_flavour(nat, vdu_cps=cps))
    assert [cp.name for cp in unit(result, "nat_fastpath").connection_points] == [
        "outside",
        "punt",
        "inside",
        "mgmt",
    ]


# ---------------------------------------------------------------- external links


def test_ext_link_replaces_an_internal_link(nat: Vnfd) -> None:
    result = plan(nat, ext_links=[ExternalLink(network="public-net", ext_cps=["nat_outside"])])
    assert f"{PREFIX}-nat-outside-vl" not in {n.name for n in result.networks}
    assert len(result.networks) == 3
    outside = {cp.name: cp for cp in unit(result, "nat_fastpath").connection_points}["outside"]
    assert outside.network == "public-net"
    assert outside.fixed_addresses == ()


def test_ext_link_on_a_shared_link_moves_every_vdu(nat: Vnfd) -> None:
    result = plan(nat, ext_links=[ExternalLink(network="oam", ext_cps=["nat_mgmt"])])
    assert f"{PREFIX}-nat-mgmt-vl" not in {n.name for n in result.networks}
    for vdu_id in ("nat_fastpath", "nat_slowpath"):
        mgmt = {cp.name: cp for cp in unit(result, vdu_id).connection_points}["mgmt"]
        assert mgmt.network == "oam"


def test_ext_link_fixed_addresses(nat: Vnfd) -> None:
    link = ExternalLink(
        network="public-net",
        ext_cps=["nat_outside"],
        fixed_addresses={"nat_outside": ["198.51.100.10", "198.51.100.11"]},
    )
    result = plan(nat, "medium", ext_links=[link])
    outside = {cp.name: cp for cp in unit(result, "nat_fastpath").connection_points}["outside"]
    assert outside.fixed_addresses == ("198.51.100.10", "198.51.100.11")
    with pytest.raises(PlanError, match="nat_outside has 2 fixed addresses for 4"):
        plan(nat, "large", ext_links=[link])
    ambiguous = ExternalLink(
        network="oam", ext_cps=["nat_mgmt"], fixed_addresses={"nat_mgmt": ["10.0.0.1"]}
    )
    with pytest.raises(PlanError, match="nat_mgmt are ambiguous"):
        plan(nat, ext_links=[ambiguous])


def test_ext_link_errors(nat: Vnfd) -> None:
    with pytest.raises(PlanError, match="no external CP 'nat_fastpath_inside'"):
        plan(nat, ext_links=[ExternalLink(network="n", ext_cps=["nat_fastpath_inside"])])
    with pytest.raises(PlanError, match="nat_inside is given in two"):
        plan(
            nat,
            ext_links=[
                ExternalLink(network="a", ext_cps=["nat_inside"]),
                ExternalLink(network="b", ext_cps=["nat_inside"]),
            ],
        )
    with pytest.raises(ValueError, match="not an IP address"):
        ExternalLink(network="a", ext_cps=["x"], fixed_addresses={"x": ["nope"]})
    with pytest.raises(ValueError, match="not in ext_cps"):
        ExternalLink(network="a", ext_cps=["x"], fixed_addresses={"y": ["10.0.0.1"]})


def test_directly_exposed_vdu_cp(nat: Vnfd) -> None:
    flavour = nat.flavour("default")
    exposed = VduCp(
        id="nat_slowpath_api",
        vdu="nat_slowpath",
        layer_protocols=["ipv4"],
        order=9,
        exposed_as="virtual_link_api",
    )
    vnfd = with_flavour(nat, vdu_cps=[*dump(flavour.vdu_cps), exposed.model_dump()])
    # Not connected without an ext link: it has no internal link to fall back on.
    assert [cp.name for cp in unit(plan(vnfd), "nat_slowpath").connection_points] == [
        "punt",
        "mgmt",
    ]
    link = ExternalLink(
        network="api-net",
        ext_cps=["nat_slowpath_api"],
        fixed_addresses={"nat_slowpath_api": ["192.0.2.5"]},
    )
    result = plan(vnfd, ext_links=[link])
    api = unit(result, "nat_slowpath").connection_points[-1]
    assert (api.name, api.network, api.fixed_addresses) == ("api", "api-net", ("192.0.2.5",))
    assert len(result.networks) == 4


# ---------------------------------------------------------------- scaling


def test_scale_out_and_in(nat: Vnfd) -> None:
    flavour = nat.flavour("default")
    levels, replicas = scale(
        flavour, {"fastpath": 0}, aspect_id="fastpath", steps=1, direction="SCALE_OUT"
    )
    assert (levels, replicas) == ({"fastpath": 1}, {"nat_fastpath": 2, "nat_slowpath": 1})
    levels, replicas = scale(flavour, levels, aspect_id="fastpath", steps=3, direction="SCALE_OUT")
    assert (levels, replicas) == ({"fastpath": 4}, {"nat_fastpath": 5, "nat_slowpath": 1})
    levels, replicas = scale(flavour, levels, aspect_id="fastpath", steps=2, direction="SCALE_IN")
    assert (levels, replicas) == ({"fastpath": 2}, {"nat_fastpath": 3, "nat_slowpath": 1})
    assert scale(flavour, {}, aspect_id="fastpath", steps=7, direction="SCALE_OUT")[1] == {
        "nat_fastpath": 8,
        "nat_slowpath": 1,
    }


def test_scale_bounds(nat: Vnfd) -> None:
    flavour = nat.flavour("default")
    with pytest.raises(PlanError, match="cannot scale aspect fastpath beyond level 7"):
        scale(flavour, {"fastpath": 5}, aspect_id="fastpath", steps=3, direction="SCALE_OUT")
    with pytest.raises(PlanError, match="cannot scale aspect fastpath beyond level 0"):
        scale(flavour, {"fastpath": 1}, aspect_id="fastpath", steps=2, direction="SCALE_IN")
    with pytest.raises(PlanError, match="no scaling aspect 'slowpath'"):
        scale(flavour, {}, aspect_id="slowpath", steps=1, direction="SCALE_OUT")
    with pytest.raises(PlanError, match="must be positive"):
        scale(flavour, {}, aspect_id="fastpath", steps=0, direction="SCALE_OUT")
    with pytest.raises(PlanError, match=r"outside 0\.\.7"):
        scale(flavour, {"fastpath": 9}, aspect_id="fastpath", steps=1, direction="SCALE_IN")


def test_scale_to_level(nat: Vnfd) -> None:
    flavour = nat.flavour("default")
    assert scale_to_level(flavour, instantiation_level_id="large") == (
        {"fastpath": 3},
        {"nat_fastpath": 4, "nat_slowpath": 1},
    )
    assert scale_to_level(flavour, scale_info={"fastpath": 5}) == (
        {"fastpath": 5},
        {"nat_fastpath": 6, "nat_slowpath": 1},
    )
    assert scale_to_level(flavour, scale_info={}, current_levels={"fastpath": 2})[0] == {
        "fastpath": 2
    }
    with pytest.raises(PlanError, match="exactly one"):
        scale_to_level(flavour)
    with pytest.raises(PlanError, match="exactly one"):
        scale_to_level(flavour, instantiation_level_id="small", scale_info={"fastpath": 0})
    with pytest.raises(PlanError, match="'huge'"):
        scale_to_level(flavour, instantiation_level_id="huge")
    with pytest.raises(PlanError, match=r"outside 0\.\.7"):
        scale_to_level(flavour, scale_info={"fastpath": 8})
    with pytest.raises(PlanError, match="no scaling aspect 'disk'"):
        scale_to_level(flavour, scale_info={"disk": 1})


def test_step_deltas_repeat_the_last_and_initial_delta_is_level_zero(nat: Vnfd) -> None:
    flavour = nat.flavour("default")
    vdus = dump(flavour.vdus)
    vdus[0]["initial_delta"] = 2
    vdus[0]["vdu_profile"]["max_number_of_instances"] = 20
    vnfd = with_flavour(
        nat,
        vdus=vdus,
        scaling_aspects=[
            ScalingAspect(
                id="fastpath",
                name="fp",
                description="",
                max_scale_level=4,
                step_deltas=["d1", "d2"],
            ).model_dump()
        ],
        vdu_scaling_aspect_deltas=[
            VduScalingAspectDeltas(
                id="p", aspect="fastpath", deltas={"d1": 1, "d2": 2}, targets=["nat_fastpath"]
            ).model_dump()
        ],
        instantiation_levels=[InstantiationLevel(id="small", description="").model_dump()],
    )
    changed = vnfd.flavour("default")
    counts = [replicas_at(changed, {"fastpath": level})["nat_fastpath"] for level in range(5)]
    assert counts == [2, 3, 5, 7, 9]
    # vdu_instances absent: instantiation uses the profile minimum, which the scale arithmetic
    # (initial_delta 2) disagrees with.
    assert plan(vnfd).replicas["nat_fastpath"] == 1
    (problem,) = check_consistency(changed)
    assert "small defaults to 1 instances of nat_fastpath" in problem and "gives 2" in problem


def test_uniform_aspect_without_step_deltas(nat: Vnfd) -> None:
    aspect = nat.flavour("default").scaling_aspects[0].model_copy(update={"step_deltas": []})
    flavour = with_flavour(nat, scaling_aspects=[aspect.model_dump()]).flavour("default")
    assert replicas_at(flavour, {"fastpath": 3})["nat_fastpath"] == 4


# ---------------------------------------------------------------- consistency


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_packages_are_consistent(vnfds: dict[str, Vnfd], name: str) -> None:
    for flavour in vnfds[name].flavours:
        assert check_consistency(flavour) == []
        for level in flavour.instantiation_levels:
            levels = levels_for_instantiation(flavour, level.id)
            assert (
                replicas_at(flavour, levels)
                == plan(vnfds[name], level.id, flavour_id=flavour.flavour_id).replicas
            )


def test_disagreeing_level_is_reported_and_explicit_counts_win(nat: Vnfd) -> None:
    flavour = nat.flavour("default")
    levels = dump(flavour.instantiation_levels)
    levels[1]["vdu_instances"]["nat_fastpath"] = 3  # medium: scale_info says level 1 -> 2
    vnfd = with_flavour(nat, instantiation_levels=levels)
    assert plan(vnfd, "medium").replicas["nat_fastpath"] == 3
    (problem,) = check_consistency(vnfd.flavour("default"))
    assert "medium gives 3 instances of nat_fastpath" in problem
    assert "fastpath level 1" in problem and "gives 2" in problem


def test_consistency_reports_structural_problems(nat: Vnfd) -> None:
    flavour = nat.flavour("default")
    aspect = flavour.scaling_aspects[0].model_copy(
        update={"max_scale_level": 9, "step_deltas": ["delta_x"]}
    )
    vnfd = with_flavour(nat, scaling_aspects=[aspect.model_dump()])
    problems = check_consistency(vnfd.flavour("default"))
    assert any("uses delta delta_x that no policy defines" in p for p in problems)
