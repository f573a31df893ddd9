"""A LocalVim per test, with its own name prefix and state directory, fully removed afterwards."""

from __future__ import annotations

import itertools
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vim_adapters.interface import ProcessSpec
from vim_adapters.local import bridges, netns
from vim_adapters.local.adapter import LocalVim

# Test links live in 10.231.0.0/16, inside the namespaces the tests make.
_subnets = itertools.count(1)


def next_cidr() -> str:
    return f"10.231.{next(_subnets) % 250 + 1}.0/24"


def serving(port: int) -> ProcessSpec:
    return ProcessSpec(
        name="server",
        command=(sys.executable, "-m", "http.server", "--bind", "0.0.0.0", str(port)),
    )


def failing() -> ProcessSpec:
    return ProcessSpec(
        name="crasher",
        command=(sys.executable, "-c", "import sys; sys.exit('boom')"),
    )


def remove_everything(vim: LocalVim) -> None:
    """Delete every unit then every network the adapter owns, then check nothing is left."""
    state = vim.store.load()
    for unit in list(state.units):
        vim.delete_unit(unit)
    for network in list(state.networks):
        vim.delete_network(network)


def leftovers(prefix: str) -> list[str]:
    return [
        *(f"namespace {n}" for n in netns.list_names(f"{prefix}-")),
        *(f"bridge {b}" for b in bridges.list_names(prefix)),
    ]


def name_prefix(start: str = "t") -> str:
    """A random name prefix for one test's namespaces and bridges, starting with `start`."""
    return start + secrets.token_hex(2)


@contextmanager
def local_vim(state_dir: Path, *, prefix: str | None = None, **options: Any) -> Iterator[LocalVim]:
    """A LocalVim (stop timeout 2 s unless given) whose every resource goes at the end."""
    prefix = prefix or name_prefix()
    vim = LocalVim(state_dir, prefix=prefix, **{"stop_timeout": 2.0, **options})
    try:
        yield vim
    finally:
        try:
            remove_everything(vim)
        finally:
            # Last resort if the adapter itself failed: remove by prefix.
            for name in netns.list_names(f"{prefix}-"):
                netns.delete(name)
            for name in bridges.list_names(prefix):
                bridges.delete(name)


CidrFactory = Callable[[], str]
# Makes a network namespace named after the test's prefix plus a suffix.
MakeNetns = Callable[[str], str]
