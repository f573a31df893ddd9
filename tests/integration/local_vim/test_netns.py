"""Named network namespaces: idempotent create/delete, listing, loopback, exec."""

from __future__ import annotations

import json

import pytest

from tests.integration.local_vim.conftest import Scope
from vim_adapters.errors import VimFatalError
from vim_adapters.local import netns, system

pytestmark = pytest.mark.timeout(60)


def _link_flags(name: str, ifname: str) -> list[str]:
    completed = system.run(["ip", "-n", name, "-j", "link", "show", "dev", ifname])
    flags: list[str] = json.loads(completed.stdout)[0]["flags"]
    return flags


def test_create_list_delete_are_idempotent(scope: Scope) -> None:
    a, b = scope.ns("a"), scope.ns("b")
    try:
        assert not netns.exists(a)
        netns.create(a)
        netns.create(a)
        netns.create(b)
        assert netns.exists(a)
        assert netns.path(a).exists()
        assert netns.list_names(scope.prefix) == [a, b]

        netns.delete(a)
        netns.delete(a)
        assert not netns.exists(a)
        assert netns.list_names(scope.prefix) == [b]
    finally:
        netns.delete(a)
        netns.delete(b)
    assert scope.leftovers() == []


def test_loopback_is_up_and_commands_run_inside(scope: Scope) -> None:
    name = scope.ns("lo")
    try:
        netns.create(name)
        assert "UP" in _link_flags(name, "lo")
        assert "127.0.0.1/8" in netns.addresses(name)["lo"]

        argv = netns.exec_argv(name, ["ip", "-j", "link", "show"])
        assert argv[:4] == ["ip", "netns", "exec", name]
        inside = json.loads(system.run(argv).stdout)
        assert [link["ifname"] for link in inside] == ["lo"]
    finally:
        netns.delete(name)
    assert scope.leftovers() == []


def test_recreating_keeps_loopback_up(scope: Scope) -> None:
    name = scope.ns("re")
    try:
        netns.create(name)
        system.run(["ip", "-n", name, "link", "set", "dev", "lo", "down"])
        netns.create(name)  # the repair path: create() after a partial setup
        assert "UP" in _link_flags(name, "lo")
    finally:
        netns.delete(name)
    assert scope.leftovers() == []


@pytest.mark.parametrize("bad", ["", "Upper", "under_score", "a/b", "x" * 33, "sp ace"])
def test_invalid_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        netns.path(bad)
    with pytest.raises(ValueError):
        netns.create(bad)


def test_addresses_of_missing_namespace_is_an_error() -> None:
    with pytest.raises(VimFatalError):
        netns.addresses("tv-surely-not-there")
