"""CHANGE_FLAVOUR by the executor on a real local VIM: needs root.

The NAT's flavours `default` (fast paths of 2 vCPU / 1 GiB, levels small, medium, large)
and `large` (4 vCPU / 2 GiB, levels medium, large, xlarge) have the same VDUs and links, so
a change replaces every replica with one of the other size and scales to the new level.
What is checked is what the VIM has: the units' sizes, counts and configuration, fresh
processes, and that nothing is left over after the way back, a re-run or a rollback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.vnfm.nat_executor import (
    Instance,
    check_changes,
    check_grantable,
    check_info,
    instantiate_params,
    server_pid,
    unit_of,
)
from vim_adapters.interface import Unit
from vim_adapters.local.adapter import LocalVim
from vnfm import planner
from vnfm.executor import Cancelled, ExecutionError, Executor
from vnfm.operation import OperationContext, OperationResult

FASTPATH, SLOWPATH = "nat_fastpath", "nat_slowpath"
TO_LARGE = {"newFlavourId": "large"}


class Nat(Instance):
    """The instance as its record would be: what the executor's context carries of it."""

    def __init__(self) -> None:
        super().__init__()
        self.info: dict[str, Any] = {}

    def change(self, params: dict[str, Any], **fields: Any) -> OperationContext:
        return self.ctx("CHANGE_FLAVOUR", params, instantiated_info=dict(self.info), **fields)

    def apply(self, result: OperationResult) -> None:
        super().apply(result)
        self.info = dict(result.instantiated_info or {})


def _unit(vim: LocalVim, nat: Nat, vdu_id: str) -> Unit:
    unit = vim.get_unit(unit_of(nat, vdu_id))
    assert unit is not None
    assert unit.ready, unit.replicas
    return unit


def _flavour_in_config(unit: Unit) -> str:
    return str(json.loads(unit.spec.config_files[planner.CONFIG_FILE])["flavourId"])


def _instantiated(executor: Executor) -> Nat:
    nat = Nat()
    nat.apply(executor.run(nat.ctx("INSTANTIATE", instantiate_params())))
    return nat


def test_change_to_large_and_back(vim: LocalVim, executor: Executor) -> None:
    nat = _instantiated(executor)
    fastpath, slowpath = unit_of(nat, FASTPATH), unit_of(nat, SLOWPATH)
    old_pids = {unit: server_pid(vim, unit, 0) for unit in (fastpath, slowpath)}
    small = _unit(vim, nat, FASTPATH)
    assert (small.spec.cpu, small.spec.memory_mib, len(small.replicas)) == (2.0, 1024, 1)

    ctx = nat.change(TO_LARGE)
    grant = executor.grant_request(ctx)
    check_grantable(grant)
    assert grant["operation"] == "CHANGE_FLAVOUR"
    assert grant["flavourId"] == "large" and "instantiationLevelId" not in grant
    # Every replica is replaced (each unit's spec changes), and medium has two fast paths.
    assert sorted(r["id"] for r in grant["addResources"]) == [
        f"compute-{FASTPATH}-0",
        f"compute-{FASTPATH}-1",
        f"compute-{SLOWPATH}-0",
    ]
    assert {r["resource"]["resourceId"] for r in grant["removeResources"]} == {
        f"{fastpath}-0",
        f"{slowpath}-0",
    }
    assert grant["additionalParams"]["currentFlavourId"] == "default"

    result = executor.run(ctx)
    assert result.flavour_id == "large" and result.instantiation_level_id == "medium"
    assert result.scale_levels == {"fastpath": 1}
    info = check_info(nat, result.instantiated_info)
    assert info["flavourId"] == "large"
    assert info["scaleStatus"] == [{"aspectId": "fastpath", "scaleLevel": 1}]
    assert sorted(v["id"] for v in info["vnfcResourceInfo"]) == [
        f"{fastpath}-0",
        f"{fastpath}-1",
        f"{slowpath}-0",
    ]
    vnfcs, links = check_changes(result.resource_changes)
    assert vnfcs == {
        f"{fastpath}-0": "MODIFIED",
        f"{fastpath}-1": "ADDED",
        f"{slowpath}-0": "MODIFIED",
    }
    assert links == {}
    # On the VIM: fast paths of the large size, every unit configured for the flavour, and
    # the replicas really replaced (new processes).
    large = _unit(vim, nat, FASTPATH)
    assert (large.spec.cpu, large.spec.memory_mib, len(large.replicas)) == (4.0, 2048, 2)
    assert _flavour_in_config(large) == "large"
    assert _flavour_in_config(_unit(vim, nat, SLOWPATH)) == "large"
    assert all(server_pid(vim, unit, 0) != old_pids[unit] for unit in old_pids)

    # A re-run (a retry after a crash) converges on the same VIM state, making nothing twice.
    again = executor.run(ctx)
    assert again.instantiated_info == result.instantiated_info
    assert again.resource_changes == result.resource_changes
    replicas = sorted(r.name for r in vim.list_owned(nat.id) if r.kind == "replica")
    assert replicas == [f"{fastpath}-0", f"{fastpath}-1", f"{slowpath}-0"]
    nat.apply(result)

    back = nat.change({"newFlavourId": "default", "instantiationLevelId": "small"})
    check_grantable(executor.grant_request(back))
    done = executor.run(back)
    vnfcs, _ = check_changes(done.resource_changes)
    assert vnfcs == {
        f"{fastpath}-0": "MODIFIED",
        f"{fastpath}-1": "REMOVED",
        f"{slowpath}-0": "MODIFIED",
    }
    check_info(nat, done.instantiated_info)
    nat.apply(done)
    assert nat.flavour_id == "default" and nat.scale_levels == {"fastpath": 0}
    small = _unit(vim, nat, FASTPATH)
    assert (small.spec.cpu, small.spec.memory_mib, len(small.replicas)) == (2.0, 1024, 1)
    assert _flavour_in_config(small) == "default"

    executor.run(nat.ctx("TERMINATE", {"terminationType": "FORCEFUL"}))
    assert vim.list_owned(nat.id) == []


def test_refusals(executor: Executor) -> None:
    nat = Nat()
    with pytest.raises(ExecutionError) as not_instantiated:
        executor.run(nat.change(TO_LARGE))
    assert not_instantiated.value.status == 409
    nat.flavour_id = "default"
    for params, field in (
        ({"newFlavourId": "huge"}, "newFlavourId"),
        ({"newFlavourId": "default"}, "newFlavourId"),
        ({"newFlavourId": "large", "instantiationLevelId": "small"}, "instantiationLevelId"),
        (
            {
                "newFlavourId": "large",
                "extVirtualLinks": [
                    {"id": "x", "resourceId": "net", "extCps": [{"cpdId": "nat_nope"}]}
                ],
            },
            "extVirtualLinks[0].extCps[0].cpdId",
        ),
    ):
        with pytest.raises(ExecutionError) as refused:
            executor.run(nat.change(params))
        assert refused.value.status == 422
        assert refused.value.detail.startswith(f"{field}:"), refused.value.detail


def _cancel_after(checks: int) -> Callable[[], bool]:
    seen: list[int] = []

    def cancel() -> bool:
        seen.append(1)
        return len(seen) > checks

    return cancel


@pytest.mark.parametrize("checks", [2, 100])
def test_rollback_restores_the_old_flavour(vim: LocalVim, executor: Executor, checks: int) -> None:
    """Rolled back half way (cancelled after the first unit) and after the whole change."""
    nat = _instantiated(executor)
    fastpath, slowpath = unit_of(nat, FASTPATH), unit_of(nat, SLOWPATH)
    before = {vdu: _unit(vim, nat, vdu) for vdu in (FASTPATH, SLOWPATH)}
    ctx = nat.change(TO_LARGE, cancel_requested=_cancel_after(checks))
    try:
        executor.run(ctx)
    except Cancelled:
        assert checks < 100
        # Half way: the fast path has the large size, but not yet its second replica.
        half = _unit(vim, nat, FASTPATH)
        assert (half.spec.cpu, len(half.replicas)) == (4.0, 1)
    else:
        assert checks == 100
        assert len(_unit(vim, nat, FASTPATH).replicas) == 2

    executor.rollback(nat.change(TO_LARGE, op_id=ctx.op_id))
    for vdu, unit in before.items():
        now = _unit(vim, nat, vdu)
        assert now.spec == unit.spec, vdu
        assert [r.id for r in now.replicas] == [r.id for r in unit.replicas]
        # The replicas are back on their networks with their addresses.
        assert [r.addresses for r in now.replicas] == [r.addresses for r in unit.replicas]
    assert {r.name for r in vim.list_owned(nat.id) if r.kind == "replica"} == {
        f"{fastpath}-0",
        f"{slowpath}-0",
    }
    assert vim.leaks() == []
    # A second rollback (after a crash in the first) changes nothing.
    executor.rollback(nat.change(TO_LARGE, op_id=ctx.op_id))
    assert _unit(vim, nat, FASTPATH).spec == before[FASTPATH].spec

    executor.run(nat.ctx("TERMINATE", {"terminationType": "FORCEFUL"}))
    assert vim.list_owned(nat.id) == []
