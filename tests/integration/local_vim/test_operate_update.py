"""Stopping, starting and updating units on the local VIM, with real processes; root.

What the contract suite cannot see from outside: which signal a process got
and when, that the namespace itself survives a stop, that a stop survives an
adapter restart, that an update replaces one replica at a time and only those
that differ, and that a crash (SIGKILL of the calling process) in the middle of
any of these converges when the call is repeated, with `leaks()` exact.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.local_vim import local_vim, name_prefix, next_cidr, serving
from vim_adapters.errors import VimConflict, VimError, VimFatalError
from vim_adapters.interface import (
    ConnectionPointSpec,
    HealthCheck,
    NetworkSpec,
    Ownership,
    ProcessSpec,
    Replica,
    ReplicaState,
    Unit,
    UnitSpec,
)
from vim_adapters.local import cni, netns, processes
from vim_adapters.local.adapter import LocalVim
from vim_adapters.local.processes import ProcessHandle
from vim_adapters.local.state import template_digest

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[3]
OWNER = Ownership(vnf_instance_id="vnf-under-test", vdu_id="fastpath", lcm_op_id="instantiate-1")

# Reports SIGTERM and goes on running: only SIGKILL ends it.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, lambda *_: print("got SIGTERM", flush=True))
print("up", flush=True)
while True:
    time.sleep(1)
"""

# Appends "up <replica> <generation>" to an events file before it listens (so a
# passing TCP health check implies the line is written) and "down ..." on SIGTERM.
# With a gate file named, it waits for that file before it comes up; then it takes
# `delay` seconds more, so a replacement that did not wait for it would show.
EVENTS = """
import os, signal, socket, sys, time
events, gate, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
me = f"{os.environ['VNF_REPLICA_INDEX']} {os.environ['GEN']}"
def note(what):
    with open(events, "a") as out:
        out.write(f"{what} {me}\\n")
def down(*_):
    note("down")
    sys.exit(0)
signal.signal(signal.SIGTERM, down)
while gate and not os.path.exists(gate):
    time.sleep(0.05)
time.sleep(delay)
note("up")
server = socket.create_server(("0.0.0.0", 8080))
while True:
    server.accept()[0].close()
"""


@pytest.fixture
def vim(tmp_path: Path) -> Iterator[LocalVim]:
    with local_vim(tmp_path / "vim", prefix=name_prefix("hb")) as adapter:
        yield adapter
        assert adapter.leaks() == []


@pytest.fixture
def link(vim: LocalVim) -> NetworkSpec:
    spec = NetworkSpec(name="data", cidr=next_cidr())
    vim.ensure_network(spec, OWNER)
    return spec


def _unit(name: str, process: ProcessSpec, *, replicas: int = 2, **extra: object) -> UnitSpec:
    return UnitSpec.model_validate(
        {
            "name": name,
            "replicas": replicas,
            "processes": (process,),
            "connection_points": (ConnectionPointSpec(name="data0", network="data"),),
            **extra,
        }
    )


def _changed(spec: UnitSpec, **update: object) -> UnitSpec:
    return UnitSpec.model_validate({**spec.model_dump(), **update})


def _python(name: str, script: str, *args: str, **env: str) -> ProcessSpec:
    # `python` as a VDU would name it: the runtime PATH makes it the service's interpreter.
    return ProcessSpec(name=name, command=("python", "-c", script, *args), env=env)


def _handle(vim: LocalVim, unit: str, index: int) -> ProcessHandle:
    replica = vim.store.load().units[unit].replica(index)
    assert replica is not None and len(replica.processes) == 1, replica
    return replica.processes[0]


def _netns_inode(vim: LocalVim, unit: str, index: int) -> int:
    replica = vim.store.load().units[unit].replica(index)
    assert replica is not None
    return os.stat(netns.path(replica.netns)).st_ino


def _log(vim: LocalVim, unit: str, index: int, process: str) -> str:
    replica = vim.store.load().units[unit].replica(index)
    assert replica is not None
    path = Path(replica.workdir) / "logs" / f"{process}.log"
    return path.read_text() if path.exists() else ""


def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _states(unit: Unit | None) -> list[ReplicaState]:
    assert unit is not None
    return [r.state for r in unit.replicas]


def _address(replica: Replica, cp: str = "data0") -> tuple[str, str | None]:
    (address,) = [a for a in replica.addresses if a.connection_point == cp]
    return address.ip, address.mac


def _in_another_process(vim: LocalVim, call: str, **values: object) -> subprocess.Popen[bytes]:
    """Run `call` on a LocalVim of the same state in a new Python process (to be killed)."""
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from vim_adapters.interface import UnitSpec\n"
        "from vim_adapters.local import netns\n"
        "from vim_adapters.local.adapter import LocalVim\n"
        "args = json.loads(sys.argv[1])\n"
        "vim = LocalVim(Path(args['state_dir']), prefix=args['prefix'], "
        "stop_timeout=args.get('stop_timeout', 2.0))\n"
        f"{call}\n"
    )
    payload = json.dumps({"state_dir": str(vim.state_dir), "prefix": vim.prefix, **values})
    return subprocess.Popen([sys.executable, "-c", script, payload], cwd=REPO)


def _kill(child: subprocess.Popen[bytes]) -> None:
    child.kill()
    child.wait(timeout=30)


# -- the runtime: the project's own Python environment plays the container image -----------


def test_a_vdu_python_is_the_services_interpreter(vim: LocalVim, link: NetworkSpec) -> None:
    probe = "import sys, time; print(sys.prefix, flush=True); time.sleep(600)"
    same_prefix = f"import sys; sys.exit(sys.prefix != {sys.prefix!r})"
    spec = _unit(
        "runtime",
        _python("probe", probe),
        replicas=1,
        # The health check runs with the same PATH, so its `python` is the same one too.
        health_check=HealthCheck(command=("python", "-c", same_prefix)),
    )
    vim.ensure_unit(spec, OWNER)
    assert vim.wait_ready("runtime", timeout=60).ready
    _until(lambda: _log(vim, "runtime", 0, "probe").strip() != "", "the probe's output")
    assert _log(vim, "runtime", 0, "probe").strip() == sys.prefix
    assert vim.runtime_bin_dir == Path(sys.executable).parent

    # A VDU that sets PATH itself gets exactly that.
    own_path = ProcessSpec(
        name="probe",
        command=("sh", "-c", 'echo "$PATH"; exec sleep 600'),
        env={"PATH": "/usr/bin:/bin"},
    )
    vim.ensure_unit(_unit("own-path", own_path, replicas=1), OWNER)
    _until(lambda: _log(vim, "own-path", 0, "probe").strip() != "", "the PATH probe's output")
    assert _log(vim, "own-path", 0, "probe").strip() == "/usr/bin:/bin"


def test_the_runtime_directory_comes_first_on_path(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime-bin"
    runtime.mkdir()
    tool = runtime / "vnf-tool"
    tool.write_text('#!/bin/sh\necho "tool ran from $0"\nexec sleep 600\n')
    tool.chmod(0o755)
    with local_vim(tmp_path / "vim", prefix=name_prefix("hb"), runtime_bin_dir=runtime) as custom:
        custom.ensure_network(NetworkSpec(name="data", cidr=next_cidr()), OWNER)
        custom.ensure_unit(
            _unit("tool", ProcessSpec(name="tool", command=("vnf-tool",)), replicas=1), OWNER
        )
        custom.wait_ready("tool", timeout=60)
        assert _log(custom, "tool", 0, "tool").strip() == f"tool ran from {tool}"
        assert custom.leaks() == []
    with pytest.raises(VimFatalError, match="not a directory"):
        LocalVim(tmp_path / "other", runtime_bin_dir=tmp_path / "no-such-dir")


# -- stop and start -------------------------------------------------------------------------


def test_stop_sends_sigterm_then_sigkill_and_start_reuses_the_namespace(
    vim: LocalVim, link: NetworkSpec
) -> None:
    vim.ensure_unit(_unit("stubborn", _python("main", STUBBORN)), OWNER)
    before = vim.wait_ready("stubborn", timeout=60)
    inodes = [_netns_inode(vim, "stubborn", i) for i in (0, 1)]
    first, second = _handle(vim, "stubborn", 0), _handle(vim, "stubborn", 1)

    started = time.monotonic()
    unit = vim.set_running("stubborn", False, replica_ids=["stubborn-0"], graceful_timeout=1.0)
    assert time.monotonic() - started >= 1.0  # it was given its grace period
    assert _states(unit) == [ReplicaState.STOPPED, ReplicaState.READY]
    assert "got SIGTERM" in _log(vim, "stubborn", 0, "main")
    assert processes.exit_status(first) == -signal.SIGKILL
    assert processes.is_alive(second)

    # 0: SIGKILL at once, no SIGTERM first.
    unit = vim.set_running("stubborn", False, replica_ids=["stubborn-1"], graceful_timeout=0)
    assert _states(unit) == [ReplicaState.STOPPED, ReplicaState.STOPPED]
    assert "got SIGTERM" not in _log(vim, "stubborn", 1, "main")
    assert processes.exit_status(second) == -signal.SIGKILL
    for replica in vim.store.load().units["stubborn"].replicas:
        assert replica.processes == []
        assert processes.processes_in_netns(replica.netns) == []
    assert vim.leaks() == []

    vim.set_running("stubborn", True)
    after = vim.wait_ready("stubborn", timeout=60)
    # The same namespaces (not new ones with the same name) and the same addresses.
    assert [_netns_inode(vim, "stubborn", i) for i in (0, 1)] == inodes
    assert [r.addresses for r in after.replicas] == [r.addresses for r in before.replicas]
    assert _handle(vim, "stubborn", 0).pid != first.pid
    assert _log(vim, "stubborn", 0, "main").count("up") == 2

    # A process that ends on SIGTERM is not killed.
    vim.ensure_unit(_unit("polite", serving(8080), replicas=1), OWNER)
    vim.wait_ready("polite", timeout=60)
    polite = _handle(vim, "polite", 0)
    vim.set_running("polite", False, graceful_timeout=60)
    assert processes.exit_status(polite) == -signal.SIGTERM

    with pytest.raises(VimFatalError, match="negative"):
        vim.set_running("polite", False, graceful_timeout=-1)


def test_a_replica_whose_namespace_is_gone_must_be_healed_first(
    vim: LocalVim, link: NetworkSpec
) -> None:
    vim.ensure_unit(_unit("lost", serving(8080), replicas=1), OWNER)
    vim.wait_ready("lost", timeout=60)
    replica = vim.store.load().units["lost"].replica(0)
    assert replica is not None
    processes.stop(replica.processes[0], timeout=2)
    netns.delete(replica.netns)
    for running in (True, False):
        with pytest.raises(VimFatalError, match="heal it first"):
            vim.set_running("lost", running)
    vim.heal_replica("lost", "lost-0")
    assert vim.wait_ready("lost", timeout=60).ready


def test_a_stopped_replica_stays_stopped_across_restarts(vim: LocalVim, link: NetworkSpec) -> None:
    spec = _unit("steady", serving(8080), health_check=HealthCheck(tcp_port=8080))
    vim.ensure_unit(spec, OWNER)
    before = vim.wait_ready("steady", timeout=60)
    # Stopped by another process, which then exits, as a worker would.
    stopper = _in_another_process(vim, "vim.set_running('steady', False, graceful_timeout=5)")
    assert stopper.wait(timeout=60) == 0

    restarted = LocalVim(vim.state_dir, prefix=vim.prefix)
    assert _states(restarted.get_unit("steady")) == [ReplicaState.STOPPED] * 2
    restarted.ensure_unit(spec, OWNER)
    assert _states(restarted.wait_ready("steady", timeout=60)) == [ReplicaState.STOPPED] * 2
    assert _states(restarted.heal_replica("steady", "steady-1")) == [ReplicaState.STOPPED] * 2
    for replica in restarted.store.load().units["steady"].replicas:
        assert processes.processes_in_netns(replica.netns) == []
    assert restarted.leaks() == []

    restarted.set_running("steady", True)
    after = restarted.wait_ready("steady", timeout=60)
    assert after.ready
    assert [r.addresses for r in after.replicas] == [r.addresses for r in before.replicas]


def test_a_crash_while_stopping_converges_when_repeated(vim: LocalVim, link: NetworkSpec) -> None:
    vim.ensure_unit(_unit("stubborn", _python("main", STUBBORN)), OWNER)
    vim.wait_ready("stubborn", timeout=60)
    handles = [_handle(vim, "stubborn", i) for i in (0, 1)]
    stopper = _in_another_process(vim, "vim.set_running('stubborn', False, graceful_timeout=120)")
    try:
        # Both got SIGTERM (at once) and ignore it: the stopper sits in its grace period.
        _until(
            lambda: all("got SIGTERM" in _log(vim, "stubborn", i, "main") for i in (0, 1)),
            "SIGTERM to both replicas",
        )
    finally:
        _kill(stopper)
    unit = vim.get_unit("stubborn")
    assert unit is not None
    assert [(r.state, r.detail) for r in unit.replicas] == [
        (ReplicaState.PENDING, "being stopped")
    ] * 2
    assert all(processes.is_alive(h) for h in handles)

    assert _states(vim.set_running("stubborn", False)) == [ReplicaState.STOPPED] * 2
    assert not any(processes.is_alive(h) for h in handles)
    assert vim.leaks() == []


# -- update ---------------------------------------------------------------------------------


def test_update_replaces_only_the_replicas_that_differ(vim: LocalVim, link: NetworkSpec) -> None:
    hosts = [str(h) for h in ipaddress.ip_network(link.cidr).hosts()]
    spec = _unit(
        "fixed",
        serving(8080),
        replicas=3,
        connection_points=(
            ConnectionPointSpec(name="data0", network="data", fixed_addresses=tuple(hosts[10:13])),
        ),
        health_check=HealthCheck(tcp_port=8080),
    )
    vim.ensure_unit(spec, OWNER)
    before = vim.wait_ready("fixed", timeout=60)
    pids = [_handle(vim, "fixed", i).pid for i in range(3)]

    # Sizing and the health check are not part of a replica: nothing is replaced.
    resized = _changed(spec, cpu=0.5, health_check=HealthCheck(tcp_port=8080, period_seconds=0.2))
    vim.update_unit(resized, lcm_op_id="update-1")
    assert [_handle(vim, "fixed", i).pid for i in range(3)] == pids
    assert {o.owner.lcm_op_id for o in vim.list_owned() if o.kind == "replica"} == {"instantiate-1"}
    assert vim.inventory().cpu_allocated == pytest.approx(1.5)

    # A new fixed address for replica 2 only: only replica 2 is replaced.
    moved = _changed(
        resized,
        connection_points=(
            ConnectionPointSpec(
                name="data0", network="data", fixed_addresses=(*hosts[10:12], hosts[20])
            ),
        ),
    )
    vim.update_unit(moved, lcm_op_id="update-2")
    after = vim.wait_ready("fixed", timeout=60)
    assert [_handle(vim, "fixed", i).pid for i in range(2)] == pids[:2]
    assert _handle(vim, "fixed", 2).pid != pids[2]
    assert [_address(r)[0] for r in after.replicas] == [*hosts[10:12], hosts[20]]
    assert after.replicas[:2] == before.replicas[:2]
    owners = {o.name: o.owner.lcm_op_id for o in vim.list_owned() if o.kind == "replica"}
    assert owners == {"fixed-0": "instantiate-1", "fixed-1": "instantiate-1", "fixed-2": "update-2"}
    # The old lease of replica 2 is released: exactly the three addresses are leased.
    assert cni.leases(vim.ipam_dir) == {"data": sorted([*hosts[10:12], hosts[20]])}


def test_update_goes_one_replica_at_a_time(
    vim: LocalVim, link: NetworkSpec, tmp_path: Path
) -> None:
    events = tmp_path / "events"
    spec = _unit(
        "rolling",
        _python("main", EVENTS, str(events), "", "0", GEN="1"),
        replicas=3,
        health_check=HealthCheck(tcp_port=8080, period_seconds=0.05),
    )
    vim.ensure_unit(spec, OWNER)
    before = vim.wait_ready("rolling", timeout=60)
    assert sorted(events.read_text().splitlines()) == ["up 0 1", "up 1 1", "up 2 1"]

    slow = _python("main", EVENTS, str(events), "", "0.5", GEN="2")
    vim.update_unit(_changed(spec, processes=(slow,)))
    after = vim.wait_ready("rolling", timeout=60)
    # Each old replica goes only once the one replaced before it is up.
    assert events.read_text().splitlines()[3:] == [
        "down 0 1",
        "up 0 2",
        "down 1 1",
        "up 1 2",
        "down 2 1",
        "up 2 2",
    ]
    assert [r.addresses for r in after.replicas] == [r.addresses for r in before.replicas]


def test_a_crash_while_waiting_for_a_replaced_replica_keeps_the_order(
    vim: LocalVim, link: NetworkSpec, tmp_path: Path
) -> None:
    events, gate = tmp_path / "events", tmp_path / "gate"
    spec = _unit(
        "gated",
        _python("main", EVENTS, str(events), "", "0", GEN="1"),
        health_check=HealthCheck(tcp_port=8080, period_seconds=0.05),
    )
    vim.ensure_unit(spec, OWNER)
    before = vim.wait_ready("gated", timeout=60)
    untouched = _handle(vim, "gated", 1)
    # The new processes come up only once the gate file exists.
    gated = _python("main", EVENTS, str(events), str(gate), "0.5", GEN="2")
    changed = _changed(spec, processes=(gated,))
    updater = _in_another_process(
        vim,
        "vim.update_unit(UnitSpec.model_validate(args['spec']), lcm_op_id='update-1')",
        spec=changed.model_dump(),
    )
    try:

        def replaced_and_waiting() -> bool:
            replica = vim.store.load().units["gated"].replica(0)
            return (
                replica is not None
                and replica.template == template_digest(changed)
                and replica.rolling
                and replica.complete
            )

        _until(replaced_and_waiting, "replica 0 replaced and awaited")
    finally:
        _kill(updater)
    assert processes.is_alive(untouched)
    assert events.read_text().splitlines()[2:] == ["down 0 1"]

    gate.touch()
    vim.update_unit(changed, lcm_op_id="update-1")
    after = vim.wait_ready("gated", timeout=60)
    assert events.read_text().splitlines()[2:] == ["down 0 1", "up 0 2", "down 1 1", "up 1 2"]
    assert [r.addresses for r in after.replicas] == [r.addresses for r in before.replicas]
    assert not any(r.rolling for r in vim.store.load().units["gated"].replicas)


# Fault injection in a real process: it dies (SIGKILL, no cleanup) at the moment the old
# namespace is to be deleted, after every attachment (and its lease) of it is gone.
_DIE_AT_NETNS_DELETE = (
    "import os, signal\nnetns.delete = lambda name: os.kill(os.getpid(), signal.SIGKILL)\n"
)


@pytest.mark.parametrize("call", ["heal", "update"])
def test_a_crash_after_the_old_attachments_are_gone_keeps_ip_and_mac(
    vim: LocalVim, link: NetworkSpec, call: str
) -> None:
    spec = _unit("keeper", serving(8080), health_check=HealthCheck(tcp_port=8080))
    vim.ensure_unit(spec, OWNER)
    before = vim.wait_ready("keeper", timeout=60)
    changed = _changed(spec, config_files={"vnf.json": "{}"})
    if call == "heal":
        statement = "vim.heal_replica('keeper', 'keeper-0')"
    else:
        statement = "vim.update_unit(UnitSpec.model_validate(args['spec']))"
    crasher = _in_another_process(vim, _DIE_AT_NETNS_DELETE + statement, spec=changed.model_dump())
    assert crasher.wait(timeout=60) == -signal.SIGKILL
    replica = vim.store.load().units["keeper"].replica(0)
    assert replica is not None
    assert replica.attachments == [] and not replica.complete
    assert set(replica.reuse) == {"data0"}
    assert cni.leases(vim.ipam_dir)["data"] == [_address(before.replicas[1])[0]]

    if call == "heal":
        vim.heal_replica("keeper", "keeper-0")
    else:
        vim.update_unit(changed)
    after = vim.wait_ready("keeper", timeout=60)
    assert [_address(r) for r in after.replicas] == [_address(r) for r in before.replicas]
    assert vim.store.load().units["keeper"].replica(0).reuse == {}  # type: ignore[union-attr]


def test_a_half_done_update_keeps_the_old_network_in_use(vim: LocalVim, link: NetworkSpec) -> None:
    other = NetworkSpec(name="other", cidr=next_cidr())
    vim.ensure_network(other, OWNER)
    spec = _unit("mover", serving(8080), health_check=HealthCheck(tcp_port=8080))
    vim.ensure_unit(spec, OWNER)
    vim.wait_ready("mover", timeout=60)
    failing = _python("main", "import sys; sys.exit('no luck')")
    broken = _changed(
        spec,
        processes=(failing,),
        connection_points=(ConnectionPointSpec(name="data0", network="other"),),
    )
    with pytest.raises(VimError, match="no luck"):
        vim.update_unit(broken)
    # Replica 1 still sits on "data", which the spec no longer names.
    with pytest.raises(VimConflict):
        vim.delete_network("data")
    assert vim.leaks() == []
    vim.update_unit(_changed(broken, processes=spec.processes))
    assert vim.wait_ready("mover", timeout=60).ready
    vim.delete_network("data")
    assert vim.leaks() == []
