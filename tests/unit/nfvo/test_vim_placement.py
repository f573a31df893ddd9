"""Placement of VNF profiles on registered VIMs, and which VIM a grant is checked against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from descriptors.tosca import parse_vnfd
from nfvo.grant.placement import (
    CapacityPolicy,
    GrantRejected,
    VimCapacity,
    choose_vim,
)
from nfvo.grant.schemas import GrantRequest
from nfvo.vims.directory import RegisteredVims
from nfvo.vims.placement import (
    Demand,
    PlacementRefused,
    PlacementRequest,
    Placer,
    demand_of,
    place,
)
from nfvo.vims.schemas import VimRegistrationRequest
from nfvo.vims.service import VimRegistry
from sol013.secrets import SecretBox
from store.base import make_engine, make_session_factory
from store.migrate import upgrade
from vim_adapters.interface import Inventory

NAT = Path(__file__).resolve().parents[3] / "descriptors" / "packages" / "nat"
LOCAL = "NFVMANO.LOCAL.V_1"
OPENSTACK = "ETSINFV.OPENSTACK_KEYSTONE.V_3"
NO_OVERCOMMIT = CapacityPolicy()


def vim(
    vim_id: str,
    *,
    cpu: float = 8,
    cpu_used: float = 0,
    mem: int = 16384,
    mem_used: int = 0,
    vim_type: str = LOCAL,
    zone: str | None = None,
    labels: dict[str, str] | None = None,
    cpu_ratio: float | None = None,
) -> VimCapacity:
    return VimCapacity(
        vim_id=vim_id,
        name=f"vim-{vim_id}",
        vim_type=vim_type,
        single_host=vim_type == LOCAL,
        inventory=Inventory(
            vim_type="local",
            cpu_total=cpu,
            cpu_allocated=cpu_used,
            memory_mib_total=mem,
            memory_mib_allocated=mem_used,
            networks=0,
            replicas=0,
        ),
        cpu_allocation_ratio=cpu_ratio,
        zone=zone,
        labels=labels or {},
    )


def profile(vcpu: float = 3, memory: int = 1536, **constraints: Any) -> PlacementRequest:
    return PlacementRequest(profile_id="nat-1", demand=Demand(vcpu, memory), **constraints)


def test_demand_of_the_nat_flavour_and_levels() -> None:
    vnfd = parse_vnfd(NAT, "Definitions/nat_vnfd_top.yaml")
    # 1 fast path (2 vCPU, 1 GiB) and 1 slow path (1 vCPU, 512 MiB) at the default level.
    assert demand_of(vnfd, "default") == Demand(3.0, 1536)
    assert demand_of(vnfd, "default", "small") == Demand(3.0, 1536)
    assert demand_of(vnfd, "default", "large") == Demand(9.0, 4608)
    assert demand_of(vnfd, "default", "medium", instances=2) == Demand(10.0, 5120)
    with pytest.raises(ValueError, match="no deployment flavour 'huge'"):
        demand_of(vnfd, "huge")
    with pytest.raises(ValueError, match="no instantiation level 'xl'"):
        demand_of(vnfd, "default", "xl")


def test_most_free_capacity_wins_and_ties_are_deterministic() -> None:
    busy, idle = vim("a", cpu_used=6), vim("b", cpu_used=1)
    assert place(profile(), [busy, idle], NO_OVERCOMMIT).vim.vim_id == "b"
    assert place(profile(), [idle, busy], NO_OVERCOMMIT).vim.vim_id == "b"
    # Same CPU left: more memory left wins; then the name decides.
    assert place(profile(), [vim("a", mem_used=8000), vim("b")], NO_OVERCOMMIT).vim.vim_id == "b"
    twins = [vim("z"), vim("m"), vim("q")]
    chosen = place(profile(), twins, NO_OVERCOMMIT)
    assert chosen.vim.vim_id == "m"
    assert (chosen.vcpu_free_after, chosen.memory_mib_free_after) == (5.0, 16384 - 1536)


def test_constraints_come_before_capacity() -> None:
    candidates = [
        vim("big", cpu=64, zone="lyon", labels={"tier": "core"}),
        vim("edge", zone="paris", labels={"tier": "edge", "site": "p1"}),
        vim("os", cpu=64, vim_type=OPENSTACK, zone="paris", labels={"tier": "edge"}),
    ]
    assert place(profile(zone="paris"), candidates, NO_OVERCOMMIT).vim.vim_id == "os"
    assert place(profile(labels={"site": "p1"}), candidates, NO_OVERCOMMIT).vim.vim_id == "edge"
    only_local = profile(zone="paris", vim_types=frozenset({LOCAL}))
    assert place(only_local, candidates, NO_OVERCOMMIT).vim.vim_id == "edge"
    named = profile(vim_ids=frozenset({"edge", "big"}))
    assert place(named, candidates, NO_OVERCOMMIT).vim.vim_id == "big"


def test_refusal_lists_every_vim_and_why() -> None:
    candidates = [
        vim("full", cpu=4, cpu_used=3),
        vim("lyon", zone="lyon"),
        vim("os", vim_type=OPENSTACK, zone="paris"),
        vim("small-mem", mem=1024, zone="paris"),
    ]
    request = profile(zone="paris", vim_types=frozenset({LOCAL}))
    placer = Placer(
        candidates, NO_OVERCOMMIT, unreadable={"gone": "its capacity cannot be read: x"}
    )
    with pytest.raises(PlacementRefused) as refused:
        placer.place(request)
    reasons = refused.value.reasons
    assert reasons == {
        "full": "zone none is not paris",
        "lyon": "zone lyon is not paris",
        "os": f"vimType {OPENSTACK} is not one of {LOCAL}",
        "small-mem": (
            "not enough memory: needs 1536 MiB, 1024 MiB free on VIM small-mem "
            "(1024 MiB, 0 MiB allocated)"
        ),
        "gone": "its capacity cannot be read: x",
    }
    assert refused.value.detail.startswith("no VIM can take VNF profile nat-1: full: zone none")
    with pytest.raises(PlacementRefused, match="not enough CPU: needs 3 vCPU, 1 free on VIM full"):
        place(profile(), [vim("full", cpu=4, cpu_used=3)], NO_OVERCOMMIT)
    with pytest.raises(PlacementRefused, match="no VIM is registered"):
        place(profile(), [], NO_OVERCOMMIT)
    with pytest.raises(PlacementRefused, match="label tier=edge required, VIM has tier=core"):
        place(profile(labels={"tier": "edge"}), [vim("c", labels={"tier": "core"})], NO_OVERCOMMIT)


def test_allocation_ratios_service_wide_or_per_vim() -> None:
    small = vim("small", cpu=2)
    with pytest.raises(PlacementRefused):
        place(profile(), [small], NO_OVERCOMMIT)
    assert place(profile(), [small], CapacityPolicy(cpu_allocation_ratio=16.0)).vim.vim_id == (
        "small"
    )
    strict = vim("strict", cpu=2, cpu_ratio=1.0)
    with pytest.raises(
        PlacementRefused, match=r"2.4 free on VIM strict \(2 vCPU x allocation ratio 1.2"
    ):
        place(profile(), [vim("strict", cpu=2, cpu_ratio=1.2)], CapacityPolicy(16.0))
    with pytest.raises(PlacementRefused, match="needs 3 vCPU, 2 free on VIM strict"):
        place(profile(), [strict], CapacityPolicy(cpu_allocation_ratio=16.0))


def test_a_placer_books_what_it_placed() -> None:
    placer = Placer([vim("a", cpu=8), vim("b", cpu=6)], NO_OVERCOMMIT)
    assert [placer.place(profile()).vim.vim_id for _ in range(4)] == ["a", "b", "a", "b"]
    assert placer.booked == {"a": Demand(6.0, 3072), "b": Demand(6.0, 3072)}
    with pytest.raises(PlacementRefused, match="needs 3 vCPU, 2 free on VIM a"):
        placer.place(profile())


# -- against the registry: the grant's VIM and its capacity --------------------------------


@pytest.fixture
def registered(database_url: str, tmp_path: Path) -> Iterator[RegisteredVims]:
    engine = make_engine(database_url)
    upgrade(engine)
    registry = VimRegistry(make_session_factory(engine), SecretBox([Fernet.generate_key()]))
    # State directories that do not exist: host capacity with nothing allocated, no root needed.
    registry.ensure_default(tmp_path / "default-vim", "nfv")
    try:
        yield RegisteredVims(registry)
    finally:
        engine.dispose()


def register(vims: RegisteredVims, name: str, tmp_path: Path, **extra: Any) -> str:
    body = VimRegistrationRequest.model_validate(
        {
            "name": name,
            "vimType": LOCAL,
            "accessInfo": {"stateDir": str(tmp_path / name), "prefix": name},
            "extra": extra,
        }
    )
    return vims.registry.create(body).id


def grant_request(**fields: Any) -> GrantRequest:
    body: dict[str, Any] = {
        "vnfInstanceId": "inst-1",
        "vnfLcmOpOccId": "op-1",
        "vnfdId": "vnfd-1",
        "flavourId": "default",
        "operation": "INSTANTIATE",
        "isAutomaticInvocation": False,
        "instantiationLevelId": "small",
        "_links": {
            "vnfLcmOpOcc": {"href": "http://vnfm/vnflcm/v2/vnf_lcm_op_occs/op-1"},
            "vnfInstance": {"href": "http://vnfm/vnflcm/v2/vnf_instances/inst-1"},
        },
        **fields,
    }
    return GrantRequest.model_validate(body)


def named(connection: str, vim_id: str, vim_type: str = LOCAL) -> dict[str, Any]:
    return {"vimConnectionInfo": {connection: {"vimId": vim_id, "vimType": vim_type}}}


def test_the_grant_is_checked_against_the_named_vim(
    registered: RegisteredVims, tmp_path: Path
) -> None:
    service = CapacityPolicy(cpu_allocation_ratio=16.0)
    lab_b = register(registered, "labb", tmp_path, capacity={"vcpu": 2, "cpuAllocationRatio": 1})
    choice, inventory, policy = choose_vim(
        grant_request(additionalParams=named("vim-b", lab_b)), registered, service
    )
    assert (choice.connection_id, choice.vim_id, choice.vim_type) == ("vim-b", lab_b, LOCAL)
    assert choice.single_host and inventory.cpu_total == 2
    assert policy == CapacityPolicy(cpu_allocation_ratio=1.0, memory_allocation_ratio=1.0)

    # Nothing named: the default VIM, on the connection existing resources are on.
    choice, inventory, policy = choose_vim(grant_request(), registered, service)
    assert (choice.connection_id, choice.vim_id) == ("local", "local") and policy == service
    existing = {
        "operation": "TERMINATE",
        "instantiationLevelId": None,
        "removeResources": [
            {
                "id": "c1",
                "type": "COMPUTE",
                "vduId": "fast",
                "resourceTemplateId": "fast",
                "resource": {"vimConnectionId": "edge", "resourceId": "r-0"},
            }
        ],
    }
    choice, _, _ = choose_vim(grant_request(**existing), registered, service)
    assert (choice.connection_id, choice.vim_id) == ("edge", "local")

    for params, says in (
        (named("x", "no-such-vim"), "VIM no-such-vim (additionalParams.vimConnectionInfo.x."),
        (named("x", lab_b, OPENSTACK), f"VIM {lab_b} is of type {LOCAL}, not {OPENSTACK}"),
        ({"vimConnectionInfo": {"x": {"vimType": LOCAL}}}, "x: vimId is required"),
        ({"vimConnectionInfo": {}}, "must map one VIM connection id"),
        ({"vimConnectionInfo": {"x": {"vimId": "local"}}}, "Field required"),
    ):
        with pytest.raises(GrantRejected) as rejected:
            choose_vim(grant_request(additionalParams=params), registered, service)
        assert says in rejected.value.detail, params


def test_placement_over_the_registry(registered: RegisteredVims, tmp_path: Path) -> None:
    paris = register(registered, "paris", tmp_path, zone="paris", capacity={"vcpu": 4})
    register(registered, "lyon", tmp_path, zone="lyon", capacity={"vcpu": 64})
    placer = Placer.from_directory(registered, CapacityPolicy())
    assert placer.place(profile(zone="paris")).vim.name == "paris"
    # paris now has 1 vCPU left for this NS; lyon is the only one with room.
    assert placer.place(profile()).vim.name == "lyon"
    with pytest.raises(PlacementRefused) as refused:
        placer.place(profile(zone="paris"))
    assert f"needs 3 vCPU, 1 free on VIM {paris}" in refused.value.reasons[paris]
