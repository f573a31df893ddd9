"""Run a piece of code in another network namespace, in the calling thread only.

setns(2) moves just the calling thread, so a driver can pin the namespace it
was started in and re-enter it for every netlink or ioctl call, whichever
thread calls it; sockets made inside stay in that namespace afterwards.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vnfs.sdk.driver import DriverError

CLONE_NEWNET = 0x40000000
NAMED_DIR = Path("/var/run/netns")
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise DriverError(f"setns into a network namespace: {os.strerror(code)}")


def current_path() -> str:
    # thread-self, not self: after setns the thread and the process may differ.
    return "/proc/thread-self/ns/net"


def inode(fd: int) -> int:
    return os.fstat(fd).st_ino


def open_current() -> int:
    """A descriptor of the calling thread's network namespace (caller closes it)."""
    return os.open(current_path(), os.O_RDONLY | os.O_CLOEXEC)


def open_named(name: str) -> int:
    """A descriptor of an `ip netns` namespace (caller closes it)."""
    try:
        return os.open(NAMED_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise DriverError(f"network namespace {name!r}: {exc.strerror}") from None


@contextmanager
def entered(fd: int) -> Iterator[None]:
    """Run the block with the calling thread in the namespace `fd` refers to."""
    if os.stat(current_path()).st_ino == inode(fd):
        yield
        return
    home = open_current()
    try:
        _setns(fd)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


@contextmanager
def entered_named(name: str) -> Iterator[None]:
    fd = open_named(name)
    try:
        with entered(fd):
            yield
    finally:
        os.close(fd)
