"""Readiness checks run from inside a replica's network namespace."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import ipaddress
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vim_adapters.errors import VimFatalError, VimNotFound
from vim_adapters.local import netns as namespaces
from vim_adapters.local import processes

_CLONE_NEWNET = 0x40000000
# Extra time for a thread or helper process beyond the connect timeout itself.
_GRACE = 2.0

# Used when libc has no setns: the same connect, in a process `ip netns exec` runs.
_CONNECT_SCRIPT = """
import socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
with socket.socket(family, socket.SOCK_STREAM) as sock:
    sock.settimeout(timeout)
    sys.exit(sock.connect_ex((host, port)) != 0)
"""


@functools.cache
def _libc_setns() -> Callable[[int, int], None] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).setns
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int)
    function.restype = ctypes.c_int

    def setns(fd: int, nstype: int) -> None:
        if function(fd, nstype) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns: {os.strerror(errno)}")

    return setns


@dataclass
class _Outcome:
    connected: bool = False
    error: OSError | None = None


def _connect_in_thread(
    setns: Callable[[int, int], None],
    netns_fd: int,
    family: socket.AddressFamily,
    address: tuple[str, int],
    timeout: float,
    outcome: _Outcome,
) -> None:
    # Why this is safe: a network namespace is a per-thread attribute, and
    # setns(CLONE_NEWNET) changes only the calling thread. This thread is new,
    # runs nothing but this function and ends with it, so no other code of the
    # service ever runs in the foreign namespace; the socket, made here, belongs
    # to the namespace it was created in. Returning to the original namespace
    # before the thread ends also covers anything Python might run in it during
    # teardown (a finalizer triggered by garbage collection).
    try:
        own_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(netns_fd, _CLONE_NEWNET)
            try:
                with socket.socket(family, socket.SOCK_STREAM) as sock:
                    sock.settimeout(timeout)
                    outcome.connected = sock.connect_ex(address) == 0
            finally:
                setns(own_fd, _CLONE_NEWNET)
        finally:
            os.close(own_fd)
    except OSError as exc:
        outcome.error = exc
    finally:
        # The thread owns the fd: the caller may have stopped waiting for it.
        os.close(netns_fd)


def _open_netns(netns: str) -> int:
    try:
        return os.open(namespaces.path(netns), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise VimNotFound(f"network namespace {netns!r} does not exist") from None


def tcp_ready(netns: str, host: str, port: int, *, timeout: float) -> bool:
    """Whether a TCP connection to host:port opens from inside the namespace.

    `host` must be an IP address: a name would be resolved with the host's
    /etc/hosts, not the namespace's.
    """
    ip = ipaddress.ip_address(host)
    setns = _libc_setns()
    if setns is None:
        script = [sys.executable, "-I", "-c", _CONNECT_SCRIPT, host, str(port), str(timeout)]
        return command_ready(netns, script, timeout=timeout + _GRACE)

    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    outcome = _Outcome()
    netns_fd = _open_netns(netns)
    thread = threading.Thread(
        target=_connect_in_thread,
        args=(setns, netns_fd, family, (host, port), timeout, outcome),
        name=f"tcp-ready-{netns}",
        daemon=True,
    )
    try:
        thread.start()
    except RuntimeError:
        os.close(netns_fd)
        raise
    thread.join(timeout + _GRACE)
    if thread.is_alive():
        return False  # not expected, connect() honours its timeout
    if outcome.error is not None:
        raise VimFatalError(f"cannot check {host}:{port} inside {netns!r}: {outcome.error}")
    return outcome.connected


def command_ready(
    netns: str, argv: Sequence[str], *, timeout: float, bin_dirs: Sequence[Path] = ()
) -> bool:
    """Whether argv, run inside the namespace, exits 0 within `timeout` seconds.

    It gets the environment the unit's processes get (`processes.child_environment`),
    so a check finds the same commands they do.
    """
    if not argv:
        raise VimFatalError("a health check command must not be empty")
    if not namespaces.exists(netns):
        raise VimNotFound(f"network namespace {netns!r} does not exist")
    try:
        child = subprocess.Popen(
            namespaces.exec_argv(netns, argv),
            executable=processes.ip_binary(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=processes.child_environment({}, bin_dirs),
            # Its own group, so whatever the check forks is killed with it.
            start_new_session=True,
        )
    except OSError as exc:
        raise VimFatalError(f"cannot run health check {argv[0]!r}: {exc}") from exc
    try:
        pidfd = os.pidfd_open(child.pid)
        try:
            # Readable once the child exits; unlike waitpid this does not reap it,
            # so its pid (the group id) cannot be reused before the killpg below.
            exited = bool(select.select([pidfd], [], [], timeout)[0])
        finally:
            os.close(pidfd)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=_GRACE)
    return exited and child.returncode == 0
