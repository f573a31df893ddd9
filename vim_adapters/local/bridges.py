"""Linux bridges on the host, one per virtual link, named within the kernel's 15-char limit."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from typing import Any

from vim_adapters.errors import VimConflict, VimFatalError, VimNotFound
from vim_adapters.local import system

IFNAMSIZ = 15  # the kernel's limit on interface names, without the trailing NUL
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,14}$")
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Fewer hex digits than this make hash collisions between network names plausible.
_MIN_HASH_CHARS = 6


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"bridge name {name!r} must be 1-{IFNAMSIZ} of [a-z0-9_-]")
    return name


def bridge_name(network_name: str, prefix: str) -> str:
    """A stable bridge name for a network: the network name itself may be up to 63 chars."""
    if not _PREFIX.match(prefix) or len(prefix) > IFNAMSIZ - _MIN_HASH_CHARS:
        raise ValueError(
            f"bridge prefix {prefix!r} must be 1-{IFNAMSIZ - _MIN_HASH_CHARS} of [a-z0-9_-]"
        )
    digest = hashlib.sha256(network_name.encode()).hexdigest()
    return prefix + digest[: IFNAMSIZ - len(prefix)]


def _stable_mac(name: str) -> str:
    """A locally administered unicast MAC that is the same whenever the bridge is made."""
    digest = hashlib.sha256(b"bridge-mac:" + name.encode()).digest()
    return ":".join(f"{octet:02x}" for octet in (0x02, *digest[:5]))


def _link(name: str) -> dict[str, Any] | None:
    """The interface's `ip -d` details, or None if no interface has that name."""
    completed = system.run(["ip", "-j", "-d", "link", "show", "dev", name], check=False)
    if completed.returncode != 0:
        stderr = completed.stderr.decode(errors="replace").strip()
        if "does not exist" in stderr:
            return None
        raise VimFatalError(f"ip link show {name} failed: {stderr}")
    links: list[dict[str, Any]] = json.loads(completed.stdout)
    return links[0] if links else None


def _is_bridge(link: dict[str, Any]) -> bool:
    return bool(link.get("linkinfo", {}).get("info_kind") == "bridge")


def _require_bridge(name: str) -> dict[str, Any]:
    link = _link(check_name(name))
    if link is None:
        raise VimNotFound(f"bridge {name} does not exist")
    if not _is_bridge(link):
        raise VimConflict(f"interface {name} exists but is not a bridge")
    return link


def exists(name: str) -> bool:
    link = _link(check_name(name))
    return link is not None and _is_bridge(link)


def ensure(name: str, *, mtu: int | None, vlan_filtering: bool) -> None:
    """Create the bridge, or bring an existing one to the given settings; then set it up."""
    check_name(name)
    link = _link(name)
    if link is None:
        argv = ["ip", "link", "add", "name", name]
        if mtu is not None:
            argv += ["mtu", str(mtu)]
        completed = system.run([*argv, "type", "bridge"], check=False)
        link = _link(name)
        if link is None:
            stderr = completed.stderr.decode(errors="replace").strip()
            raise VimFatalError(f"cannot create bridge {name}: {stderr}")
    if _is_bridge(link) and "UP" not in link.get("flags", []):
        # Never up yet, so made here (perhaps by a run that died halfway). A bridge left
        # alone takes the lowest MAC of its ports, which changes as replicas come and go,
        # and the bridge plugin's CHECK then reports a mismatch: pin a stable one.
        system.run(["ip", "link", "set", "dev", name, "address", _stable_mac(name)])
        # No IPv6 link-local either: without a gateway the host must have no address on
        # the link, or it could reach the replicas' link-local addresses. This only takes
        # effect before the first up.
        system.run(["ip", "link", "set", "dev", name, "addrgenmode", "none"])
    if not _is_bridge(link):
        raise VimConflict(f"interface {name} exists but is not a bridge")
    current = link.get("linkinfo", {}).get("info_data", {}).get("vlan_filtering", 0)
    if bool(current) != vlan_filtering:
        _set_vlan_filtering(name, vlan_filtering)
    if mtu is not None and link.get("mtu") != mtu:
        system.run(["ip", "link", "set", "dev", name, "mtu", str(mtu)])
    system.run(["ip", "link", "set", "dev", name, "up"])


def _set_vlan_filtering(name: str, enabled: bool) -> None:
    argv = ["ip", "link", "set", "dev", name, "type", "bridge", "vlan_filtering"]
    completed = system.run([*argv, "1" if enabled else "0"], check=False)
    if completed.returncode != 0:
        stderr = completed.stderr.decode(errors="replace").strip()
        # Kernels built without CONFIG_BRIDGE_VLAN_FILTERING refuse even "0".
        raise VimFatalError(f"cannot set vlan_filtering on bridge {name}: {stderr}")


def delete(name: str) -> None:
    """Remove the bridge (its ports are released, not deleted). Nothing happens if it is gone."""
    link = _link(check_name(name))
    if link is None:
        return
    if not _is_bridge(link):
        raise VimConflict(f"refusing to delete {name}: it is not a bridge")
    completed = system.run(["ip", "link", "delete", "dev", name], check=False)
    if completed.returncode != 0 and _link(name) is not None:
        stderr = completed.stderr.decode(errors="replace").strip()
        raise VimFatalError(f"cannot delete bridge {name}: {stderr}")


def list_names(prefix: str) -> list[str]:
    completed = system.run(["ip", "-j", "link", "show", "type", "bridge"])
    links: list[dict[str, Any]] = json.loads(completed.stdout or b"[]")
    return sorted(link["ifname"] for link in links if link["ifname"].startswith(prefix))


def ports(name: str) -> list[str]:
    """The interfaces enslaved to the bridge (the host ends of the replicas' veths)."""
    _require_bridge(name)
    completed = system.run(["ip", "-j", "link", "show", "master", name])
    links: list[dict[str, Any]] = json.loads(completed.stdout or b"[]")
    return sorted(link["ifname"] for link in links)


def addresses(name: str) -> list[str]:
    """The host's addresses on the bridge, in CIDR form; empty for an isolated link."""
    _require_bridge(name)
    completed = system.run(["ip", "-j", "address", "show", "dev", name])
    links: list[dict[str, Any]] = json.loads(completed.stdout or b"[]")
    return [f"{a['local']}/{a['prefixlen']}" for link in links for a in link.get("addr_info", [])]


def set_address(name: str, cidr_address: str) -> None:
    """Give the host an address on the bridge: only for a link with an explicit gateway."""
    try:
        interface = ipaddress.ip_interface(cidr_address)
    except ValueError as exc:
        raise VimFatalError(f"bad gateway address {cidr_address!r}: {exc}") from None
    if "/" not in cidr_address:
        raise VimFatalError(f"gateway address {cidr_address!r} needs a prefix length")
    _require_bridge(name)
    system.run(["ip", "address", "replace", str(interface), "dev", name])
