"""Named Linux network namespaces (the `ip netns` kind, bind-mounted under /var/run/netns)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from vim_adapters.errors import VimFatalError
from vim_adapters.local import system

NETNS_DIR = Path("/var/run/netns")
_NAME = re.compile(r"^[a-z0-9-]{1,32}$")


def check_name(name: str) -> str:
    # Names end up in paths and argv; a strict charset keeps both unambiguous.
    if not _NAME.match(name):
        raise ValueError(f"namespace name {name!r} must be 1-32 of [a-z0-9-]")
    return name


def path(name: str) -> Path:
    return NETNS_DIR / check_name(name)


def exists(name: str) -> bool:
    return path(name).exists()


def create(name: str) -> None:
    """Create the namespace if missing and make sure its loopback is up."""
    if not exists(name):
        completed = system.run(["ip", "netns", "add", name], check=False)
        # Another caller may have won the race; only an absent namespace is a failure.
        if completed.returncode != 0 and not exists(name):
            detail = completed.stderr.decode(errors="replace").strip()
            raise VimFatalError(f"ip netns add {name} failed: {detail}")
    # Processes expect 127.0.0.1 to work; a fresh namespace has lo down.
    system.run(["ip", "-n", name, "link", "set", "dev", "lo", "up"])


def delete(name: str) -> None:
    """Remove the namespace; its veth ends go with it. Nothing happens if it is gone."""
    if not exists(name):
        return
    completed = system.run(["ip", "netns", "delete", name], check=False)
    if completed.returncode != 0 and exists(name):
        detail = completed.stderr.decode(errors="replace").strip()
        raise VimFatalError(f"ip netns delete {name} failed: {detail}")


def list_names(prefix: str) -> list[str]:
    # `ip netns list` reads this same directory; reading it directly spares a process.
    if not NETNS_DIR.is_dir():
        return []
    return sorted(entry.name for entry in NETNS_DIR.iterdir() if entry.name.startswith(prefix))


def exec_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs `argv` inside the namespace."""
    return ["ip", "netns", "exec", check_name(name), *argv]


def addresses(name: str) -> dict[str, list[str]]:
    """Interface name -> its addresses in CIDR form, for every interface in the namespace."""
    completed = system.run(["ip", "-n", check_name(name), "-j", "address", "show"])
    links = json.loads(completed.stdout or b"[]")
    return {
        link["ifname"]: [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])]
        for link in links
    }
