"""The contract every VIM adapter passes: subclass `VimContract` and provide the fixtures.

Fixtures a subclass provides:
- `vim`: a fresh VimAdapter whose resources the fixture removes afterwards;
- `workloads`: a `Workloads` giving process specs that run on that VIM;
- `cidrs`: a callable returning a new private /24 for each network a test makes.
Everything asserted here is what the VNFM relies on, whatever the VIM.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from vim_adapters.errors import VimConflict, VimError, VimFatalError, VimNotFound
from vim_adapters.interface import (
    ConnectionPointSpec,
    HealthCheck,
    NetworkSpec,
    Ownership,
    ProcessSpec,
    ReplicaState,
    UnitSpec,
    VimAdapter,
)

READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Workloads:
    """Process specs that behave the same on every VIM."""

    serving: Callable[[int], ProcessSpec]  # listens on TCP port n on all addresses
    failing: Callable[[], ProcessSpec]  # exits with an error at once


def _owner(**extra: str) -> Ownership:
    return Ownership(vnf_instance_id=str(uuid.uuid4()), **extra)


class VimContract:
    """Behaviour the VNFM relies on, run against each adapter."""

    @pytest.fixture
    def link(self, vim: VimAdapter, cidrs: Callable[[], str]) -> Callable[..., NetworkSpec]:
        made: list[str] = []

        def make(name: str = "link", owner: Ownership | None = None) -> NetworkSpec:
            spec = NetworkSpec(name=f"{name}-{uuid.uuid4().hex[:6]}", cidr=cidrs())
            vim.ensure_network(spec, owner or _owner())
            made.append(spec.name)
            return spec

        return make

    def _unit(
        self, workloads: Workloads, network: NetworkSpec, replicas: int = 2, **extra: object
    ) -> UnitSpec:
        values: dict[str, object] = {
            "name": f"unit-{uuid.uuid4().hex[:6]}",
            "replicas": replicas,
            "processes": (workloads.serving(8080),),
            "connection_points": (ConnectionPointSpec(name="data0", network=network.name),),
            "health_check": HealthCheck(tcp_port=8080),
        }
        values.update(extra)
        return UnitSpec.model_validate(values)

    def test_networks_are_create_or_get(self, vim: VimAdapter, cidrs: Callable[[], str]) -> None:
        owner = _owner()
        spec = NetworkSpec(name=f"net-{uuid.uuid4().hex[:6]}", cidr=cidrs())
        first = vim.ensure_network(spec, owner)
        again = vim.ensure_network(spec, owner)
        assert first == again
        assert vim.get_network(spec.name) == first
        other = spec.model_copy(update={"cidr": cidrs()})
        with pytest.raises(VimConflict):
            vim.ensure_network(other, owner)
        vim.delete_network(spec.name)
        vim.delete_network(spec.name)
        assert vim.get_network(spec.name) is None
        assert vim.get_network("no-such-network") is None

    def test_unit_lifecycle(
        self, vim: VimAdapter, workloads: Workloads, link: Callable[..., NetworkSpec]
    ) -> None:
        network = link()
        owner = _owner(vdu_id="fastpath", lcm_op_id="op-1")
        spec = self._unit(workloads, network)
        vim.ensure_unit(spec, owner)
        unit = vim.wait_ready(spec.name, timeout=READY_TIMEOUT)
        assert [r.index for r in unit.replicas] == [0, 1]
        assert all(r.state is ReplicaState.READY for r in unit.replicas)
        subnet = ipaddress.ip_network(network.cidr)
        addresses = [a.ip for r in unit.replicas for a in r.addresses]
        assert len(addresses) == 2 and len(set(addresses)) == 2
        assert all(ipaddress.ip_address(a) in subnet for a in addresses)

        # Repeating the call after a crash must not duplicate anything.
        again = vim.ensure_unit(spec, owner)
        assert [r.id for r in again.replicas] == [r.id for r in unit.replicas]
        with pytest.raises(VimConflict):
            vim.ensure_unit(spec.model_copy(update={"cpu": 2.0}), owner)

        owned = vim.list_owned(owner.vnf_instance_id)
        assert [(o.kind, o.name) for o in owned] == [
            ("unit", spec.name),
            *[("replica", r.id) for r in unit.replicas],
        ]
        assert all(o.owner.vdu_id == "fastpath" for o in owned)

        with pytest.raises(VimConflict):
            vim.delete_network(network.name)
        vim.delete_unit(spec.name)
        vim.delete_unit(spec.name)
        assert vim.get_unit(spec.name) is None
        assert vim.list_owned(owner.vnf_instance_id) == []
        vim.delete_network(network.name)

    def test_scale_out_and_in(
        self, vim: VimAdapter, workloads: Workloads, link: Callable[..., NetworkSpec]
    ) -> None:
        network = link()
        spec = self._unit(workloads, network, replicas=1)
        vim.ensure_unit(spec, _owner())
        first = vim.wait_ready(spec.name, timeout=READY_TIMEOUT).replicas[0]
        vim.scale_unit(spec.name, 3, lcm_op_id="scale-out")
        grown = vim.wait_ready(spec.name, timeout=READY_TIMEOUT)
        assert [r.index for r in grown.replicas] == [0, 1, 2]
        # Scaling never disturbs replicas that stay.
        assert grown.replicas[0].addresses == first.addresses  # untouched, MAC included
        shrunk = vim.scale_unit(spec.name, 1)
        assert [r.index for r in shrunk.replicas] == [0]
        assert shrunk.spec.replicas == 1
        assert vim.wait_ready(spec.name, timeout=READY_TIMEOUT).replicas[0].addresses == (
            first.addresses
        )
        with pytest.raises(VimNotFound):
            vim.scale_unit("no-such-unit", 1)

    def test_fixed_addresses(
        self, vim: VimAdapter, workloads: Workloads, link: Callable[..., NetworkSpec]
    ) -> None:
        network = link()
        hosts = list(ipaddress.ip_network(network.cidr).hosts())
        wanted = (str(hosts[20]), str(hosts[21]))
        spec = self._unit(
            workloads,
            network,
            connection_points=(
                ConnectionPointSpec(name="data0", network=network.name, fixed_addresses=wanted),
            ),
        )
        vim.ensure_unit(spec, _owner())
        unit = vim.wait_ready(spec.name, timeout=READY_TIMEOUT)
        assert tuple(r.addresses[0].ip for r in unit.replicas) == wanted
        outside = self._unit(
            workloads,
            network,
            replicas=1,
            connection_points=(
                ConnectionPointSpec(
                    name="data0", network=network.name, fixed_addresses=("192.0.2.1",)
                ),
            ),
        )
        with pytest.raises(VimFatalError):
            vim.ensure_unit(outside, _owner())

    def test_heal_keeps_identity_and_addresses(
        self, vim: VimAdapter, workloads: Workloads, link: Callable[..., NetworkSpec]
    ) -> None:
        network = link()
        spec = self._unit(workloads, network)
        vim.ensure_unit(spec, _owner())
        before = vim.wait_ready(spec.name, timeout=READY_TIMEOUT).replicas[1]
        vim.heal_replica(spec.name, before.id)
        after = vim.wait_ready(spec.name, timeout=READY_TIMEOUT).replicas[1]
        # Same identity and IP addresses; a new interface may get a new MAC.
        assert after.id == before.id
        assert [(a.connection_point, a.ip) for a in after.addresses] == [
            (a.connection_point, a.ip) for a in before.addresses
        ]
        with pytest.raises(VimNotFound):
            vim.heal_replica(spec.name, "no-such-replica")

    def test_missing_network_and_failing_process(
        self, vim: VimAdapter, workloads: Workloads, link: Callable[..., NetworkSpec]
    ) -> None:
        ghost = NetworkSpec(name="ghost-net", cidr="10.254.254.0/24")
        with pytest.raises(VimNotFound):
            vim.ensure_unit(self._unit(workloads, ghost), _owner())
        network = link()
        spec = self._unit(
            workloads, network, replicas=1, processes=(workloads.failing(),), health_check=None
        )
        try:
            vim.ensure_unit(spec, _owner())
            with pytest.raises(VimError) as caught:
                vim.wait_ready(spec.name, timeout=READY_TIMEOUT)
            assert not caught.value.retryable
            assert spec.name in caught.value.detail
        finally:
            vim.delete_unit(spec.name)

    def test_inventory_counts_allocations(
        self, vim: VimAdapter, workloads: Workloads, link: Callable[..., NetworkSpec]
    ) -> None:
        before = vim.inventory()
        network = link()
        spec = self._unit(workloads, network, cpu=0.5, memory_mib=128)
        vim.ensure_unit(spec, _owner())
        after = vim.inventory()
        assert after.cpu_allocated == pytest.approx(before.cpu_allocated + 1.0)
        assert after.memory_mib_allocated == before.memory_mib_allocated + 256
        assert after.replicas == before.replicas + 2
        assert after.cpu_total > 0 and after.memory_mib_total > 0
