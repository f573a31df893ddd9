"""`planner.plan_flavour`: a flavour planned at given scale levels and VDU counts (what a
CHANGE_FLAVOUR's rollback puts back), and `plan_instantiation` as its special case."""

from __future__ import annotations

from pathlib import Path

import pytest

from descriptors.tosca import parse_vnfd
from descriptors.vnfd import Vnfd
from vnfm.planner import PlanError, plan_flavour, plan_instantiation, unit_name

NAT = Path(__file__).resolve().parents[3] / "descriptors" / "packages" / "nat"
INSTANCE = "5d1c3f9e-8a2b-4c7d-9e0f-1a2b3c4d5e6f"


@pytest.fixture(scope="module")
def nat() -> Vnfd:
    return parse_vnfd(NAT, "Definitions/nat_vnfd_top.yaml")


def test_a_level_plans_as_its_levels_and_counts(nat: Vnfd) -> None:
    by_level = plan_instantiation(
        nat, flavour_id="large", instantiation_level_id="large", vnf_instance_id=INSTANCE
    )
    assert by_level.scale_levels == {"fastpath": 3}
    assert by_level.replicas == {"nat_fastpath": 4, "nat_slowpath": 1}
    same = plan_flavour(
        nat,
        flavour_id="large",
        scale_levels={"fastpath": 3},
        replicas={"nat_fastpath": 4, "nat_slowpath": 1},
        vnf_instance_id=INSTANCE,
    )
    assert same == by_level
    fastpath = next(u for u in same.units if u.name == unit_name(INSTANCE, "nat_fastpath"))
    assert (fastpath.cpu, fastpath.memory_mib, fastpath.replicas) == (4.0, 2048, 4)


def test_counts_are_checked(nat: Vnfd) -> None:
    with pytest.raises(PlanError) as missing:
        plan_flavour(
            nat,
            flavour_id="default",
            scale_levels={},
            replicas={"nat_fastpath": 1},
            vnf_instance_id=INSTANCE,
        )
    assert "nat_slowpath" in missing.value.detail
    with pytest.raises(PlanError) as too_many:
        plan_flavour(
            nat,
            flavour_id="default",
            scale_levels={"fastpath": 7},
            replicas={"nat_fastpath": 9, "nat_slowpath": 1},
            vnf_instance_id=INSTANCE,
        )
    assert "nat_fastpath" in too_many.value.detail and "1..8" in too_many.value.detail
    with pytest.raises(PlanError) as level:
        plan_flavour(
            nat,
            flavour_id="default",
            scale_levels={"fastpath": 8},
            replicas={"nat_fastpath": 1, "nat_slowpath": 1},
            vnf_instance_id=INSTANCE,
        )
    assert "outside 0..7" in level.value.detail
