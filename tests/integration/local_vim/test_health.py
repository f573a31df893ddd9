"""Readiness checks run inside real network namespaces (as root), never on the host's side.

Every namespace is named with a per-test prefix and removed afterwards,
together with anything still running in it.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.local_vim import MakeNetns
from vim_adapters.errors import VimNotFound
from vim_adapters.local import health, netns, processes


@pytest.fixture(params=["setns-thread", "ip-netns-exec"])
def check_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """tcp_ready both ways: in a thread moved into the namespace, and the fallback process."""
    if request.param == "ip-netns-exec":
        monkeypatch.setattr(health, "_libc_setns", lambda: None)
    return str(request.param)


@pytest.fixture
def host_listener() -> Iterator[socket.socket]:
    """A port that accepts on the host's loopback, to be unreachable from the namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _own_netns() -> tuple[int, int]:
    stat = os.stat("/proc/thread-self/ns/net")
    return stat.st_dev, stat.st_ino


def test_tcp_ready_connects_from_inside_the_namespace(
    make_netns: MakeNetns, tmp_path: Path, host_listener: socket.socket, check_mode: str
) -> None:
    ns = make_netns("a")
    port = host_listener.getsockname()[1]
    before = _own_netns()
    threads = threading.active_count()

    # The host's loopback listens on this port, the namespace's does not (yet).
    assert not health.tcp_ready(ns, "127.0.0.1", port, timeout=1.0)

    server = processes.start(
        netns=ns,
        name="web",
        argv=[sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        env={},
        cwd=tmp_path,
        log_path=tmp_path / "web.log",
    )
    try:
        assert _wait_until(lambda: health.tcp_ready(ns, "127.0.0.1", port, timeout=1.0))
        assert processes.is_alive(server)
    finally:
        processes.stop(server, timeout=2.0)
    assert not health.tcp_ready(ns, "127.0.0.1", port, timeout=1.0)

    # The checks left this thread, and every other, where they were.
    assert _own_netns() == before
    assert threading.active_count() == threads
    with socket.create_connection(("127.0.0.1", port), timeout=1.0):
        pass


def test_tcp_ready_on_a_missing_namespace_is_not_found() -> None:
    with pytest.raises(VimNotFound):
        health.tcp_ready("th-no-such-namespace", "127.0.0.1", 80, timeout=0.5)


def test_tcp_ready_wants_an_address_not_a_name(make_netns: MakeNetns) -> None:
    ns = make_netns("a")
    with pytest.raises(ValueError):
        health.tcp_ready(ns, "localhost", 80, timeout=0.5)


def test_command_ready_follows_the_exit_status(make_netns: MakeNetns) -> None:
    ns = make_netns("a")
    assert health.command_ready(ns, ["true"], timeout=5.0)
    assert not health.command_ready(ns, ["false"], timeout=5.0)
    assert not health.command_ready(ns, ["no-such-command-9f3"], timeout=5.0)


def test_command_ready_runs_inside_the_namespace(make_netns: MakeNetns) -> None:
    ns = make_netns("a")
    inode = os.stat(netns.path(ns)).st_ino
    same_netns = f'test "$(readlink /proc/self/ns/net)" = "net:[{inode}]"'
    assert health.command_ready(ns, ["sh", "-c", same_netns], timeout=5.0)
    assert not health.command_ready(ns, ["sh", "-c", same_netns.replace("=", "!=")], timeout=5.0)


def test_command_ready_kills_a_check_that_runs_too_long(make_netns: MakeNetns) -> None:
    ns = make_netns("a")
    started = time.monotonic()
    # The shell's background child must go too, not only the shell.
    assert not health.command_ready(ns, ["sh", "-c", "sleep 60 & sleep 60"], timeout=0.5)
    assert time.monotonic() - started < 3.0
    assert _wait_until(lambda: processes.processes_in_netns(ns) == [], timeout=3.0)


def test_command_ready_on_a_missing_namespace_is_not_found() -> None:
    with pytest.raises(VimNotFound):
        health.command_ready("th-no-such-namespace", ["true"], timeout=0.5)
