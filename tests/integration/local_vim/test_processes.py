"""Detached replica processes in real network namespaces: start, watch, stop, re-attach.

Runs as root. Every namespace is named with a per-test prefix and removed
afterwards, together with anything still running in it; a test that leaves a
process behind fails in teardown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.local_vim import MakeNetns
from vim_adapters.errors import VimFatalError, VimNotFound
from vim_adapters.local import netns, processes
from vim_adapters.local.processes import ProcessHandle

REPO = Path(__file__).resolve().parents[3]


def _start(ns: str, argv: list[str], tmp_path: Path, **env: str) -> ProcessHandle:
    return processes.start(
        netns=ns,
        name="unit",
        argv=argv,
        env=env,
        cwd=tmp_path,
        log_path=tmp_path / "logs" / "unit.log",
    )


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _stopped(handle: ProcessHandle) -> None:
    processes.stop(handle, timeout=2.0)


def test_the_command_itself_runs_in_the_namespace_in_its_own_session(
    make_netns: MakeNetns, tmp_path: Path
) -> None:
    ns = make_netns("a")
    handle = _start(ns, ["sleep", "60"], tmp_path)
    try:
        # `ip netns exec` exec'd the command: the pid we got is sleep's own.
        assert Path(f"/proc/{handle.pid}/comm").read_text().strip() == "sleep"
        assert Path(f"/proc/{handle.pid}/cmdline").read_bytes() == b"sleep\x0060\x00"
        ns_of_pid = os.stat(f"/proc/{handle.pid}/ns/net")
        ns_file = os.stat(netns.path(ns))
        assert (ns_of_pid.st_dev, ns_of_pid.st_ino) == (ns_file.st_dev, ns_file.st_ino)
        assert processes.processes_in_netns(ns) == [handle.pid]
        assert os.getsid(handle.pid) == handle.pid
        assert os.getpgid(handle.pid) == handle.pid
        assert processes.is_alive(handle)
        assert ProcessHandle.model_validate_json(handle.model_dump_json()) == handle
    finally:
        _stopped(handle)
    assert not processes.is_alive(handle)
    assert processes.processes_in_netns(ns) == []
    assert processes.exit_status(handle) == -signal.SIGTERM


def test_output_goes_to_the_log_and_the_environment_is_only_path_and_the_given_one(
    make_netns: MakeNetns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MANO_TEST_SECRET", "must-not-leak")
    ns = make_netns("a")
    log = tmp_path / "logs" / "unit.log"
    log.parent.mkdir()
    log.write_text("earlier run\n")

    handle = _start(ns, ["env"], tmp_path, VDU_SETTING="on")
    assert _wait_until(lambda: not processes.is_alive(handle))
    assert processes.exit_status(handle) == 0
    shown = _start(ns, ["sh", "-c", "pwd; echo to-stdout; echo to-stderr >&2"], tmp_path)
    assert _wait_until(lambda: not processes.is_alive(shown))

    lines = log.read_text().splitlines()
    assert lines[0] == "earlier run"  # appended, never truncated
    environment = dict(line.split("=", 1) for line in lines[1:3])
    assert environment == {"PATH": processes.DEFAULT_PATH, "VDU_SETTING": "on"}
    assert lines[3:] == [str(tmp_path), "to-stdout", "to-stderr"]


def test_a_process_killed_from_outside_is_dead_and_reaped(
    make_netns: MakeNetns, tmp_path: Path
) -> None:
    ns = make_netns("a")
    handle = _start(ns, ["sleep", "60"], tmp_path)
    try:
        assert processes.is_alive(handle)
        subprocess.run(["kill", "-KILL", str(handle.pid)], check=True, timeout=10)
        assert _wait_until(lambda: not processes.is_alive(handle))
        assert not Path(f"/proc/{handle.pid}").exists(), "the zombie was not reaped"
        assert processes.exit_status(handle) == -signal.SIGKILL
    finally:
        _stopped(handle)


def test_a_recycled_pid_is_neither_alive_nor_signalled(
    make_netns: MakeNetns, tmp_path: Path
) -> None:
    ns = make_netns("a")
    handle = _start(ns, ["sleep", "60"], tmp_path)
    try:
        impostor = handle.model_copy(update={"start_time": handle.start_time + 1})
        assert not processes.is_alive(impostor)
        processes.stop(impostor, timeout=0.5)
        assert processes.is_alive(handle)
        assert processes.exit_status(impostor) is None
    finally:
        _stopped(handle)


def test_stop_ends_the_whole_group_and_is_idempotent(make_netns: MakeNetns, tmp_path: Path) -> None:
    ns = make_netns("a")
    handle = _start(ns, ["sh", "-c", "sleep 60 & wait"], tmp_path)
    try:
        assert _wait_until(lambda: len(processes.processes_in_netns(ns)) == 2)
        started = time.monotonic()
        processes.stop(handle, timeout=5.0)
        assert time.monotonic() - started < 2.0  # SIGTERM was enough
        assert processes.processes_in_netns(ns) == []
        assert not processes.is_alive(handle)
        processes.stop(handle)
        processes.stop(handle, timeout=0.1)
    finally:
        _stopped(handle)


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(
    make_netns: MakeNetns, tmp_path: Path
) -> None:
    ns = make_netns("a")
    # `trap ""` makes TERM ignored, which sleep inherits too.
    handle = _start(ns, ["sh", "-c", 'trap "" TERM; sleep 60'], tmp_path)
    try:
        assert _wait_until(lambda: len(processes.processes_in_netns(ns)) == 2)
        started = time.monotonic()
        processes.stop(handle, timeout=0.5)
        elapsed = time.monotonic() - started
        assert 0.5 <= elapsed < 3.0
        assert processes.processes_in_netns(ns) == []
        assert processes.exit_status(handle) == -signal.SIGKILL
    finally:
        _stopped(handle)


_START_AND_EXIT = """
import sys
from pathlib import Path
from vim_adapters.local import processes
handle = processes.start(
    netns=sys.argv[1], name="unit", argv=["sleep", "60"], env={},
    cwd=Path(sys.argv[2]), log_path=Path(sys.argv[2]) / "unit.log",
)
print(handle.model_dump_json())
"""


def test_a_process_started_before_a_restart_is_seen_and_stopped(
    make_netns: MakeNetns, tmp_path: Path
) -> None:
    """A service that started the process and exited; the test process plays the new one."""
    ns = make_netns("a")
    starter = subprocess.run(
        [sys.executable, "-c", _START_AND_EXIT, ns, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert starter.returncode == 0, starter.stderr.decode()
    handle = ProcessHandle.model_validate(json.loads(starter.stdout))
    try:
        stat = processes.read_stat(handle.pid)
        assert stat is not None
        assert stat.ppid != os.getpid()
        assert processes.is_alive(handle)
        processes.stop(handle, timeout=2.0)
        assert not processes.is_alive(handle)
        assert processes.processes_in_netns(ns) == []
        assert processes.exit_status(handle) is None  # not ours to know
    finally:
        _stopped(handle)


@pytest.mark.parametrize("command", ["no-such-command-9f3", "/opt/no/such-command-9f3"])
def test_a_missing_executable_is_a_fatal_error_naming_it(
    make_netns: MakeNetns, tmp_path: Path, command: str
) -> None:
    ns = make_netns("a")
    with pytest.raises(VimFatalError) as caught:
        _start(ns, [command, "--flag"], tmp_path)
    assert command in caught.value.detail
    assert "No such file or directory" in caught.value.detail
    assert processes.processes_in_netns(ns) == []


def test_a_missing_namespace_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(VimNotFound):
        _start("tp-no-such-namespace", ["sleep", "60"], tmp_path)
    assert processes.processes_in_netns("tp-no-such-namespace") == []
