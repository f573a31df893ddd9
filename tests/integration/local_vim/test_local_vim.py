"""The local VIM end to end: links, a 2-VDU unit set, traffic, scale, heal, restart, terminate.

Runs as root with real namespaces, bridges, CNI plugins and processes; the
units are created by a separate Python process that then exits, as a MANO
service would before a restart, so re-attaching is shown for real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.local_vim import leftovers, local_vim, next_cidr, serving
from vim_adapters.interface import (
    ConnectionPointSpec,
    HealthCheck,
    NetworkSpec,
    Ownership,
    Replica,
    ReplicaState,
    UnitSpec,
)
from vim_adapters.local import cni, netns, processes
from vim_adapters.local.adapter import LocalVim

REPO = Path(__file__).resolve().parents[3]
OWNER = Ownership(vnf_instance_id="vnf-under-test", lcm_op_id="instantiate-1")


def _units(data: NetworkSpec, punt: NetworkSpec) -> tuple[UnitSpec, UnitSpec]:
    fast = UnitSpec(
        name="fastpath",
        replicas=1,
        processes=(serving(8080),),
        connection_points=(
            ConnectionPointSpec(name="data0", network=data.name),
            ConnectionPointSpec(name="punt0", network=punt.name),
        ),
        health_check=HealthCheck(tcp_port=8080),
        cpu=2,
        memory_mib=1024,
    )
    slow = UnitSpec(
        name="slowpath",
        replicas=1,
        processes=(serving(8081),),
        connection_points=(ConnectionPointSpec(name="punt0", network=punt.name),),
        health_check=HealthCheck(tcp_port=8081),
    )
    return fast, slow


def _instantiate_in_another_process(vim: LocalVim, specs: list[object]) -> None:
    """What a MANO service would do before it stops: make everything, wait, exit."""
    script = """
import json, sys
from collections.abc import Sequence
from pathlib import Path
from vim_adapters.interface import NetworkSpec, Ownership, UnitSpec
from vim_adapters.local.adapter import LocalVim
args = json.loads(sys.argv[1])
vim = LocalVim(Path(args["state_dir"]), prefix=args["prefix"])
owner = Ownership.model_validate(args["owner"])
for net in args["networks"]:
    vim.ensure_network(NetworkSpec.model_validate(net), owner)
for unit in args["units"]:
    spec = UnitSpec.model_validate(unit)
    vim.ensure_unit(spec, owner.model_copy(update={"vdu_id": spec.name}))
for unit in args["units"]:
    vim.wait_ready(unit["name"], timeout=60)
"""
    subprocess.run(
        [sys.executable, "-c", script, json.dumps(specs)],
        cwd=REPO,
        check=True,
        timeout=120,
    )


def _netns(vim: LocalVim, unit: str, index: int) -> str:
    record = vim.store.load().units[unit].replica(index)
    assert record is not None
    return record.netns


def _ping(vim: LocalVim, unit: str, index: int, address: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", _netns(vim, unit, index), "ping", "-c", "1", "-W", "2", address],
        check=True,
        capture_output=True,
        timeout=10,
    )


def _address(vim: LocalVim, unit: str, index: int, cp: str) -> str:
    found = vim.get_unit(unit)
    assert found is not None
    replica = next(r for r in found.replicas if r.index == index)
    return next(a.ip for a in replica.addresses if a.connection_point == cp)


def _server_pid(vim: LocalVim, unit: str, index: int) -> int:
    record = vim.store.load().units[unit].replica(index)
    assert record is not None
    return record.processes[0].pid


def _replica_when(
    vim: LocalVim, unit: str, index: int, state: ReplicaState, timeout: float = 20.0
) -> Replica:
    """The replica once it shows `state` (a killed process takes a moment to be gone)."""
    deadline = time.monotonic() + timeout
    while True:
        found = vim.get_unit(unit)
        assert found is not None
        replica = next(r for r in found.replicas if r.index == index)
        if replica.state is state:
            return replica
        assert time.monotonic() < deadline, f"{replica.id} stayed {replica.state}"
        time.sleep(0.05)


def test_local_vim_end_to_end(tmp_path: Path) -> None:
    with local_vim(tmp_path / "vim") as vim:
        data = NetworkSpec(name="data", cidr=next_cidr())
        punt = NetworkSpec(name="punt", cidr=next_cidr())
        fast, slow = _units(data, punt)
        _instantiate_in_another_process(
            vim,
            {  # type: ignore[arg-type]
                "state_dir": str(vim.state_dir),
                "prefix": vim.prefix,
                "owner": OWNER.model_dump(),
                "networks": [data.model_dump(), punt.model_dump()],
                "units": [fast.model_dump(), slow.model_dump()],
            },
        )
        # The creating process is gone; its units run on and this adapter finds them.
        for name in ("fastpath", "slowpath"):
            unit = vim.get_unit(name)
            assert unit is not None and unit.ready, unit
        assert vim.leaks() == []
        _ping(vim, "slowpath", 0, _address(vim, "fastpath", 0, "punt0"))

        vim.scale_unit("fastpath", 3, lcm_op_id="scale-out-1")
        grown = vim.wait_ready("fastpath", timeout=60)
        assert [r.index for r in grown.replicas] == [0, 1, 2]
        for index in (1, 2):
            _ping(vim, "slowpath", 0, _address(vim, "fastpath", index, "punt0"))
            _ping(vim, "fastpath", index, _address(vim, "fastpath", 0, "data0"))
        assert [o.owner.lcm_op_id for o in vim.list_owned() if o.name == "fastpath-2"] == [
            "scale-out-1"
        ]
        vim.scale_unit("fastpath", 1)
        assert [r.index for r in vim.wait_ready("fastpath", timeout=60).replicas] == [0]
        assert vim.leaks() == []

        before = _address(vim, "fastpath", 0, "punt0")
        old_pid = _server_pid(vim, "fastpath", 0)
        os.kill(old_pid, signal.SIGKILL)
        failed = _replica_when(vim, "fastpath", 0, ReplicaState.FAILED)
        assert "server exited" in (failed.detail or "")
        vim.heal_replica("fastpath", "fastpath-0")
        healed = vim.wait_ready("fastpath", timeout=60)
        assert _address(vim, "fastpath", 0, "punt0") == before
        assert _server_pid(vim, "fastpath", 0) != old_pid
        _ping(vim, "slowpath", 0, before)

        # A process that dies while no adapter runs is reported by the next one.
        os.kill(_server_pid(vim, "slowpath", 0), signal.SIGKILL)
        restarted = LocalVim(vim.state_dir, prefix=vim.prefix)
        _replica_when(restarted, "slowpath", 0, ReplicaState.FAILED)
        restarted.heal_replica("slowpath", "slowpath-0")
        restarted.wait_ready("slowpath", timeout=60)
        assert healed.replicas[0].id == "fastpath-0"

        handles = [
            p for u in vim.store.load().units.values() for r in u.replicas for p in r.processes
        ]
        restarted.delete_unit("fastpath")
        restarted.delete_unit("slowpath")
        restarted.delete_network("data")
        restarted.delete_network("punt")
        assert restarted.list_owned() == []
        assert restarted.leaks() == []
        assert leftovers(vim.prefix) == []
        assert cni.leases(vim.ipam_dir) == {}
        assert not any((vim.state_dir / "units").iterdir())
        assert handles and not any(processes.is_alive(h) for h in handles)


def test_refuses_without_root(tmp_path: Path) -> None:
    """Not root: one clear line, nothing made."""
    # Everything is imported before dropping root: the interpreter's files may not be
    # readable by nobody.
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from vim_adapters.errors import VimError\n"
        "from vim_adapters.local.adapter import LocalVim\n"
        "os.setuid(65534)\n"
        "try:\n"
        f"    LocalVim(Path({str(tmp_path / 'state')!r}))\n"
        "except VimError as exc:\n"
        "    print(exc.detail)\n"
        "    sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3, result.stderr
    assert "needs root" in result.stdout
    assert result.stdout.count("\n") == 1
    assert not (tmp_path / "state").exists()


def test_fixed_and_allocated_addresses_on_one_network(tmp_path: Path) -> None:
    """An allocated address never takes one a connection point has fixed, also on a rebuild."""
    with local_vim(tmp_path / "vim") as vim:
        link = NetworkSpec(name="data", cidr=next_cidr())
        base = link.cidr.split("/")[0].rsplit(".", 1)[0]
        # host-local hands out addresses in order, from .1: without the reservation the
        # first replica's allocated data1 would take .2, the second replica's fixed one.
        fixed = tuple(f"{base}.{n}" for n in (2, 3, 4))
        unit = UnitSpec(
            name="mixed",
            replicas=3,
            processes=(serving(8080),),
            connection_points=(
                ConnectionPointSpec(name="data0", network="data", fixed_addresses=fixed),
                ConnectionPointSpec(name="data1", network="data"),
            ),
            health_check=HealthCheck(tcp_port=8080),
        )
        vim.ensure_network(link, OWNER)
        vim.ensure_unit(unit, OWNER)
        done = vim.wait_ready("mixed", timeout=60)

        def addresses(replicas: Sequence[Replica], cp: str) -> list[str]:
            return [a.ip for r in replicas for a in r.addresses if a.connection_point == cp]

        assert addresses(done.replicas, "data0") == list(fixed)
        allocated = addresses(done.replicas, "data1")
        assert len(set(allocated)) == 3 and not set(allocated) & set(fixed)
        # Every replica rebuilt (update): each gets its addresses back.
        vim.update_unit(unit.model_copy(update={"config_files": {"v": "2"}}))
        rebuilt = vim.wait_ready("mixed", timeout=60)
        assert addresses(rebuilt.replicas, "data0") == list(fixed)
        assert addresses(rebuilt.replicas, "data1") == allocated
        assert vim.leaks() == []


def test_crash_while_creating_then_repeat(tmp_path: Path) -> None:
    """SIGKILL the creating process mid-way; repeating the call converges without duplicates."""
    with local_vim(tmp_path / "vim") as vim:
        link = NetworkSpec(name="data", cidr=next_cidr())
        unit = UnitSpec(
            name="many",
            replicas=8,
            processes=(serving(8080),),
            connection_points=(ConnectionPointSpec(name="data0", network="data"),),
            health_check=HealthCheck(tcp_port=8080),
        )
        vim.ensure_network(link, OWNER)
        script = (
            "import json, sys\n"
            "from pathlib import Path\n"
            "from vim_adapters.interface import Ownership, UnitSpec\n"
            "from vim_adapters.local.adapter import LocalVim\n"
            "args = json.loads(sys.argv[1])\n"
            "vim = LocalVim(Path(args['state_dir']), prefix=args['prefix'])\n"
            "vim.ensure_unit(UnitSpec.model_validate(args['unit']), "
            "Ownership.model_validate(args['owner']))\n"
        )
        payload = json.dumps(
            {
                "state_dir": str(vim.state_dir),
                "prefix": vim.prefix,
                "unit": unit.model_dump(),
                "owner": OWNER.model_dump(),
            }
        )
        creator = subprocess.Popen([sys.executable, "-c", script, payload], cwd=REPO)
        try:
            deadline = time.monotonic() + 60
            # Kill it once some, but not all, replicas exist.
            while len(netns.list_names(f"{vim.prefix}-")) < 3:
                assert creator.poll() is None, "the creator finished before it could be killed"
                assert time.monotonic() < deadline
                time.sleep(0.01)
            creator.kill()
        finally:
            creator.wait(timeout=30)
        partial = vim.get_unit("many")
        assert partial is not None and len(partial.replicas) < 8
        vim.ensure_unit(unit, OWNER)
        done = vim.wait_ready("many", timeout=60)
        assert [r.index for r in done.replicas] == list(range(8))
        addresses = [a.ip for r in done.replicas for a in r.addresses]
        assert len(addresses) == len(set(addresses)) == 8
        assert vim.leaks() == []
