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
    Address,
    ConnectionPointSpec,
    HealthCheck,
    NetworkSpec,
    Ownership,
    ProcessSpec,
    Replica,
    ReplicaState,
    Unit,
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

    def test_stop_and_start_keep_the_replica(
        self, vim: VimAdapter, workloads: Workloads, link: Callable[..., NetworkSpec]
    ) -> None:
        network = link()
        owner = _owner()
        spec = self._unit(workloads, network)
        vim.ensure_unit(spec, owner)
        before = vim.wait_ready(spec.name, timeout=READY_TIMEOUT)
        second = before.replicas[1]

        stopped = vim.set_running(spec.name, False, replica_ids=[second.id], graceful_timeout=5)
        assert _states(stopped) == [ReplicaState.READY, ReplicaState.STOPPED]
        assert _states(vim.set_running(spec.name, False, replica_ids=[second.id])) == _states(
            stopped
        )
        # Nothing but set_running starts it: not waiting, not ensuring, not healing.
        assert _states(vim.wait_ready(spec.name, timeout=READY_TIMEOUT)) == _states(stopped)
        vim.ensure_unit(spec, owner)
        healed = vim.heal_replica(spec.name, second.id)
        assert _states(healed) == _states(stopped)
        # Networks and addresses stay while stopped.
        assert _ips(healed) == _ips(before)
        # A scale-out adds running replicas and leaves the stopped one alone.
        vim.scale_unit(spec.name, 3)
        grown = vim.wait_ready(spec.name, timeout=READY_TIMEOUT)
        assert _states(grown) == [ReplicaState.READY, ReplicaState.STOPPED, ReplicaState.READY]
        vim.scale_unit(spec.name, 2)

        vim.set_running(spec.name, True, replica_ids=[second.id])
        started = vim.wait_ready(spec.name, timeout=READY_TIMEOUT)
        assert started.ready
        assert _ips(started) == _ips(before)
        assert _states(vim.set_running(spec.name, True)) == _states(started)

        # All replicas, killed at once; then all started again.
        assert _states(vim.set_running(spec.name, False)) == [ReplicaState.STOPPED] * 2
        vim.set_running(spec.name, True)
        assert vim.wait_ready(spec.name, timeout=READY_TIMEOUT).ready
        assert _ips(vim.get_unit(spec.name)) == _ips(before)

        with pytest.raises(VimNotFound):
            vim.set_running(spec.name, False, replica_ids=["no-such-replica"])
        with pytest.raises(VimNotFound):
            vim.set_running("no-such-unit", True)
        assert vim.wait_ready(spec.name, timeout=READY_TIMEOUT).ready

    def test_update_replaces_replicas_keeping_addresses(
        self, vim: VimAdapter, workloads: Workloads, link: Callable[..., NetworkSpec]
    ) -> None:
        first, second = link("first"), link("second")
        owner = _owner(vdu_id="fastpath", lcm_op_id="instantiate-1")
        spec = self._unit(workloads, first)
        vim.ensure_unit(spec, owner)
        before = vim.wait_ready(spec.name, timeout=READY_TIMEOUT)

        # New processes (a port the old ones do not serve), a config file, a second link.
        changed = _changed(
            spec,
            processes=(workloads.serving(8081),),
            health_check=HealthCheck(tcp_port=8081),
            config_files={"vnf.json": '{"generation": 2}'},
            connection_points=(
                ConnectionPointSpec(name="data0", network=first.name),
                ConnectionPointSpec(name="data1", network=second.name),
            ),
        )
        vim.update_unit(changed, lcm_op_id="update-1")
        # Ready on the new health check: the new processes run in every replica.
        updated = vim.wait_ready(spec.name, timeout=READY_TIMEOUT)
        assert updated.spec == changed
        assert [r.id for r in updated.replicas] == [r.id for r in before.replicas]
        second_subnet = ipaddress.ip_network(second.cidr)
        for old, new in zip(before.replicas, updated.replicas, strict=True):
            # Same network: same IP and MAC. New network: an address there.
            assert _on(new, "data0") == _on(old, "data0")
            assert [ipaddress.ip_address(a.ip) in second_subnet for a in _on(new, "data1")] == [
                True
            ]
        replicas = [o for o in vim.list_owned(owner.vnf_instance_id) if o.kind == "replica"]
        assert {o.owner.lcm_op_id for o in replicas} == {"update-1"}

        # Repeating the call changes nothing.
        again = vim.update_unit(changed, lcm_op_id="update-1")
        assert [r.addresses for r in again.replicas] == [r.addresses for r in updated.replicas]

        # Moving data0 to the second link releases the first one entirely.
        moved = _changed(
            changed,
            connection_points=(ConnectionPointSpec(name="data0", network=second.name),),
        )
        vim.update_unit(moved, lcm_op_id="update-2")
        settled = vim.wait_ready(spec.name, timeout=READY_TIMEOUT)
        assert all(
            [(a.connection_point, ipaddress.ip_address(a.ip) in second_subnet) for a in r.addresses]
            == [("data0", True)]
            for r in settled.replicas
        )
        vim.delete_network(first.name)
        assert vim.get_network(first.name) is None

        with pytest.raises(VimNotFound):
            vim.update_unit(_changed(moved, name="no-such-unit"))
        with pytest.raises(VimFatalError):
            vim.update_unit(_changed(moved, replicas=3))
        with pytest.raises(VimNotFound):
            vim.update_unit(
                _changed(
                    moved,
                    connection_points=(ConnectionPointSpec(name="data0", network="ghost-net"),),
                )
            )
        assert vim.wait_ready(spec.name, timeout=READY_TIMEOUT).spec == moved

    def test_update_stops_at_a_failing_replica_and_goes_back(
        self, vim: VimAdapter, workloads: Workloads, link: Callable[..., NetworkSpec]
    ) -> None:
        network = link()
        spec = self._unit(workloads, network)
        vim.ensure_unit(spec, _owner())
        before = vim.wait_ready(spec.name, timeout=READY_TIMEOUT)
        broken = _changed(spec, processes=(workloads.failing(),))
        with pytest.raises(VimError) as caught:
            vim.update_unit(broken)
        assert not caught.value.retryable
        # One at a time: the second replica was not touched once the first failed.
        unit = vim.get_unit(spec.name)
        assert unit is not None
        assert _states(unit) == [ReplicaState.FAILED, ReplicaState.READY], unit.replicas
        vim.update_unit(spec)
        after = vim.wait_ready(spec.name, timeout=READY_TIMEOUT)
        assert after.ready and after.spec == spec
        assert [r.addresses for r in after.replicas] == [r.addresses for r in before.replicas]


def _changed(spec: UnitSpec, **update: object) -> UnitSpec:
    """`spec` with some fields changed, validated like any spec."""
    return UnitSpec.model_validate({**spec.model_dump(), **update})


def _states(unit: Unit | None) -> list[ReplicaState]:
    assert unit is not None
    return [r.state for r in unit.replicas]


def _ips(unit: Unit | None) -> list[list[tuple[str, str]]]:
    assert unit is not None
    return [[(a.connection_point, a.ip) for a in r.addresses] for r in unit.replicas]


def _on(replica: Replica, connection_point: str) -> list[Address]:
    return [a for a in replica.addresses if a.connection_point == connection_point]
