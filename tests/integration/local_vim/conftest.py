"""Integration fixtures for the local VIM: real namespaces and bridges, so root is required.

Every test gets its own short name prefix; whatever carries it is removed afterwards,
also when the test fails, and the test fails if anything with it survives the cleanup.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.local_vim import MakeNetns
from vim_adapters.local import bridges, netns, processes, system


def _host_links(prefix: str) -> list[str]:
    completed = system.run(["ip", "-j", "link", "show"])
    return sorted(
        link["ifname"]
        for link in json.loads(completed.stdout or b"[]")
        if link["ifname"].startswith(prefix)
    )


@dataclass(frozen=True)
class Scope:
    """Names for one test's resources, all starting with `prefix`."""

    prefix: str
    subnet_octet: int  # 10.231.<octet>.0/24, so concurrent runs rarely share a subnet

    def ns(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def bridge(self, network: str = "net") -> str:
        return bridges.bridge_name(network, self.prefix)

    def cidr(self) -> str:
        return f"10.231.{self.subnet_octet}.0/24"

    def address(self, host: int) -> str:
        return f"10.231.{self.subnet_octet}.{host}"

    def leftovers(self) -> list[str]:
        return netns.list_names(self.prefix) + _host_links(self.prefix)

    def cleanup(self) -> None:
        # Namespaces first: their veth ends take the host ends with them.
        for name in netns.list_names(self.prefix):
            netns.delete(name)
        for bridge in bridges.list_names(self.prefix):
            for port in bridges.ports(bridge):
                system.run(["ip", "link", "delete", "dev", port], check=False)
            bridges.delete(bridge)
        for link in _host_links(self.prefix):
            system.run(["ip", "link", "delete", "dev", link], check=False)


@pytest.fixture
def scope() -> Iterator[Scope]:
    current = Scope(prefix="tv" + secrets.token_hex(2), subnet_octet=secrets.randbelow(250) + 1)
    try:
        yield current
    finally:
        current.cleanup()
        assert current.leftovers() == [], f"left behind: {current.leftovers()}"


@pytest.fixture
def make_netns(scope: Scope) -> Iterator[MakeNetns]:
    """Makes namespaces in the test's scope; the test fails if it leaves a process in one."""

    def make(suffix: str) -> str:
        name = scope.ns(suffix)
        netns.create(name)
        return name

    yield make
    strays: dict[str, list[int]] = {}
    for name in netns.list_names(scope.prefix):
        pids = processes.processes_in_netns(name)
        if pids:
            strays[name] = pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert not strays, f"processes left running: {strays}"
