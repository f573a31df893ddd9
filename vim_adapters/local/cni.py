"""Attach network namespaces to virtual links by running the real CNI plugins.

Plugins are invoked as the CNI spec (https://www.cni.dev/docs/spec/) says a container
runtime must: parameters in CNI_* environment variables, the network configuration as JSON
on stdin, the result or a structured error as JSON on stdout. The configuration is the one
a Multus NetworkAttachmentDefinition would carry, so a link means the same thing here as
on Kubernetes.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vim_adapters.errors import VimConflict, VimError, VimFatalError, VimNotFound, VimRetryableError
from vim_adapters.interface import NetworkSpec
from vim_adapters.local import system

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CNI_VERSION = "1.0.0"
DEFAULT_CNI_PATH = Path("/usr/lib/cni")
# The spec's "try again later": the only well-known code that promises a retry can work.
_TRY_AGAIN_LATER = 11
_DEFAULT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_FORWARDING_SYSCTLS = (
    Path("/proc/sys/net/ipv4/ip_forward"),
    Path("/proc/sys/net/ipv6/conf/all/forwarding"),
)


@dataclass(frozen=True)
class CniResult:
    """What ADD reports for the interface it put into the namespace."""

    interface: str
    mac: str | None
    ips: list[str]
    host_interface: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def network_config(
    spec: NetworkSpec, *, bridge: str, ipam_dir: Path, reserved: Collection[str] = ()
) -> dict[str, Any]:
    """The `bridge` plugin configuration (with `host-local` IPAM) for a virtual link.

    ``reserved``: addresses that connection points with fixed addresses (and rebuilt
    replicas taking theirs back) will ask for. The configuration for an allocated address
    leaves them out of host-local's ranges, so an allocation never takes one; the leases
    are per network whatever the ranges, so the two configurations share them.
    """
    subnet = ipaddress.ip_network(spec.cidr)
    # IPv4 loses the network and broadcast addresses; IPv6 only the subnet-router anycast.
    spare = 2 if subnet.version == 4 else 1
    if subnet.num_addresses - spare < 1 + (spec.gateway is not None):
        raise VimFatalError(f"network {spec.name}: subnet {subnet} has no room for replicas")
    first = subnet.network_address + 1
    last = subnet.broadcast_address - (1 if subnet.version == 4 else 0)
    if spec.gateway is not None:
        gateway = ipaddress.ip_address(spec.gateway)
        if not int(first) <= int(gateway) <= int(last):
            raise VimFatalError(f"network {spec.name}: gateway {gateway} is not a host address")
    else:
        # host-local treats a missing gateway as ".1" and never hands that address out,
        # although no one holds it on an isolated link. Naming the network address, which
        # lies outside the range anyway, keeps every host address assignable.
        gateway = subnet.network_address
    runs = _free_runs(first, last, reserved)
    if not runs:
        raise VimFatalError(
            f"network {spec.name}: every host address of {subnet} is reserved for fixed "
            "addresses; none is left to allocate"
        )
    ranges = [
        {"subnet": str(subnet), "rangeStart": str(a), "rangeEnd": str(b), "gateway": str(gateway)}
        for a, b in runs
    ]
    # One range is written the plain way; several make one host-local range set.
    ipam: dict[str, Any] = (
        {"type": "host-local", **ranges[0]}
        if len(ranges) == 1
        else {
            "type": "host-local",
            "ranges": [ranges],
        }
    )
    ipam["dataDir"] = str(ipam_dir)
    config: dict[str, Any] = {
        "cniVersion": CNI_VERSION,
        "name": spec.name,
        "type": "bridge",
        "bridge": bridge,
        "isGateway": spec.gateway is not None,
        "isDefaultGateway": False,
        "ipMasq": False,
        "ipam": ipam,
    }
    if spec.mtu is not None:
        config["mtu"] = spec.mtu
    if spec.vlan is not None:
        config["vlan"] = spec.vlan
    return config


def _free_runs(
    first: IpAddress, last: IpAddress, reserved: Collection[str]
) -> list[tuple[IpAddress, IpAddress]]:
    """The runs of addresses from ``first`` to ``last`` (one family) that are not reserved."""
    family = type(first)
    low, high = int(first), int(last)
    taken = sorted(
        {
            int(address)
            for address in map(ipaddress.ip_address, reserved)
            if isinstance(address, family) and low <= int(address) <= high
        }
    )
    runs: list[tuple[IpAddress, IpAddress]] = []
    start = low
    for address in [*taken, high + 1]:
        if address > start:
            runs.append((family(start), family(address - 1)))
        start = address + 1
    return runs


def add(
    config: dict[str, Any],
    *,
    container_id: str,
    netns: Path,
    ifname: str,
    ip: str | None = None,
    mac: str | None = None,
    cni_path: Path = DEFAULT_CNI_PATH,
    timeout: float = 30,
) -> CniResult:
    """Create `ifname` in the namespace, attached to the network, with an address from IPAM.

    `mac` asks the bridge plugin for that MAC address: a replaced replica keeps
    its MAC so peers' neighbour caches stay right.

    A failed ADD is followed by DEL, because the bridge plugin leaves its veth behind
    when IPAM fails and a killed plugin may hold a lease.
    """
    if not netns.exists():
        raise VimNotFound(f"network namespace {netns} does not exist")
    if _interface_exists(netns, ifname):
        # DEL on failure would tear down the attachment that already owns the name.
        raise VimConflict(
            f"interface {ifname} already exists in {netns}; delete the attachment first"
        )
    address = _plain_address(ip) if ip is not None else None
    args = [f"IP={address}"] if address is not None else []
    if mac is not None:
        args.append(f"MAC={mac}")
    cni_args = ";".join(["IgnoreUnknown=1", *args]) if args else None
    try:
        with _host_forwarding_kept(enabled=bool(config.get("isGateway"))):
            output = _invoke(
                "ADD",
                config,
                container_id=container_id,
                netns=str(netns),
                ifname=ifname,
                cni_args=cni_args,
                cni_path=cni_path,
                timeout=timeout,
                requested_ip=address,
            )
        return _parse_result(output, ifname=ifname, bridge=config.get("bridge"))
    except VimError as exc:
        try:
            delete(
                config,
                container_id=container_id,
                netns=netns,
                ifname=ifname,
                cni_path=cni_path,
                timeout=timeout,
            )
        except VimError as cleanup:
            exc.detail += f" (and the cleanup DEL failed: {cleanup.detail})"
            exc.args = (exc.detail,)
        raise


def delete(
    config: dict[str, Any],
    *,
    container_id: str,
    netns: Path | None,
    ifname: str,
    prev_result: CniResult | None = None,
    cni_path: Path = DEFAULT_CNI_PATH,
    timeout: float = 30,
) -> None:
    """Release the lease and remove the interface; succeeds if either is already gone.

    With `netns` None (the namespace is gone, taking the veth with it) the plugin only
    releases the IPAM lease, as the spec allows.
    """
    _invoke(
        "DEL",
        _with_prev_result(config, prev_result),
        container_id=container_id,
        netns=str(netns) if netns is not None else "",
        ifname=ifname,
        cni_args=None,
        cni_path=cni_path,
        timeout=timeout,
    )


def check(
    config: dict[str, Any],
    *,
    container_id: str,
    netns: Path,
    ifname: str,
    prev_result: CniResult,
    cni_path: Path = DEFAULT_CNI_PATH,
    timeout: float = 30,
) -> None:
    """Ask the plugin whether the attachment is still as ADD made it; raises if not."""
    _invoke(
        "CHECK",
        _with_prev_result(config, prev_result),
        container_id=container_id,
        netns=str(netns),
        ifname=ifname,
        cni_args=None,
        cni_path=cni_path,
        timeout=timeout,
    )


def leases(ipam_dir: Path) -> dict[str, list[str]]:
    """Network name -> addresses host-local has leased there (one file per address)."""
    found: dict[str, list[str]] = {}
    if not ipam_dir.is_dir():
        return found
    for network_dir in sorted(p for p in ipam_dir.iterdir() if p.is_dir()):
        addresses = []
        for entry in network_dir.iterdir():
            # Besides the leases the directory holds "lock" and "last_reserved_ip.N".
            try:
                addresses.append(ipaddress.ip_address(entry.name))
            except ValueError:
                continue
        if addresses:
            found[network_dir.name] = [str(a) for a in sorted(addresses)]
    return found


@contextmanager
def _host_forwarding_kept(*, enabled: bool) -> Iterator[None]:
    """Undo the host-wide forwarding switch the bridge plugin flips for isGateway links.

    A gateway here only makes the host reachable on the link; routing between links and
    the host's other interfaces is not ours to turn on (and IPv6 forwarding would also
    stop the host from accepting router advertisements).
    """
    if not enabled:
        yield
        return
    before = {path: _read_sysctl(path) for path in _FORWARDING_SYSCTLS}
    try:
        yield
    finally:
        for path, value in before.items():
            if value is not None and _read_sysctl(path) != value:
                path.write_text(value)


def _read_sysctl(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _plain_address(ip: str) -> str:
    try:
        return str(ipaddress.ip_interface(ip).ip)
    except ValueError as exc:
        raise VimFatalError(f"requested address {ip!r} is not an IP address: {exc}") from None


def _with_prev_result(config: dict[str, Any], prev: CniResult | None) -> dict[str, Any]:
    # The spec has the runtime insert the ADD result into the config for CHECK and DEL.
    return {**config, "prevResult": prev.raw} if prev is not None and prev.raw else config


def _interface_exists(netns: Path, ifname: str) -> bool:
    # `ip -n` only takes names under /var/run/netns; nsenter takes any namespace path.
    argv = ["nsenter", f"--net={netns}", "ip", "-j", "link", "show", "dev", ifname]
    completed = system.run(argv, check=False)
    if completed.returncode == 0:
        return True
    stderr = completed.stderr.decode(errors="replace").strip()
    if "does not exist" in stderr:
        return False
    raise VimFatalError(f"cannot inspect {netns}: {stderr}")


def _invoke(
    command: str,
    config: dict[str, Any],
    *,
    container_id: str,
    netns: str,
    ifname: str,
    cni_args: str | None,
    cni_path: Path,
    timeout: float,
    requested_ip: str | None = None,
) -> dict[str, Any]:
    plugin_type = config.get("type")
    if not isinstance(plugin_type, str) or not plugin_type or "/" in plugin_type:
        raise VimFatalError(f"network config has no valid plugin type: {plugin_type!r}")
    plugin = cni_path / plugin_type
    if not plugin.is_file():
        raise VimFatalError(
            f"CNI plugin {plugin_type} not found in {cni_path} "
            "(install the Debian package containernetworking-plugins)"
        )
    env = {
        # Plugins may run helpers (iptables, ...); nothing else of ours should leak in.
        "PATH": os.environ.get("PATH", _DEFAULT_PATH),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": str(cni_path),
    }
    if cni_args is not None:
        env["CNI_ARGS"] = cni_args
    completed = system.run(
        [str(plugin)],
        input=json.dumps(config).encode(),
        env=env,
        timeout=timeout,
        check=False,
    )
    where = f"CNI {command} of {ifname} on network {config.get('name')!r}"
    if completed.returncode != 0:
        raise _plugin_error(where, completed.stdout, completed.stderr, requested_ip)
    if not completed.stdout.strip():
        return {}
    try:
        result = json.loads(completed.stdout)
    except json.JSONDecodeError as exc:
        raise VimFatalError(f"{where}: plugin printed no JSON result: {exc}") from None
    if not isinstance(result, dict):
        raise VimFatalError(f"{where}: plugin result is not a JSON object")
    return result


def _plugin_error(where: str, stdout: bytes, stderr: bytes, requested_ip: str | None) -> VimError:
    try:
        error = json.loads(stdout)
    except json.JSONDecodeError:
        error = None
    if not isinstance(error, dict):
        text = (stderr or stdout).decode(errors="replace").strip() or "(no output)"
        return VimFatalError(f"{where} failed without a CNI error: {text}")
    code = error.get("code")
    msg = str(error.get("msg", "")).strip() or "(no message)"
    detail = f"{where} failed (code {code}): {msg}"
    if error.get("details"):
        detail += f"; details: {error['details']}"
    if code == _TRY_AGAIN_LATER:
        return VimRetryableError(detail)
    if requested_ip is not None and requested_ip in msg:
        # host-local reports an address in use (or the gateway) with the generic code 999.
        detail = f"requested address {requested_ip} cannot be assigned: {detail}"
    return VimFatalError(detail)


def _parse_result(result: dict[str, Any], *, ifname: str, bridge: object) -> CniResult:
    interfaces = result.get("interfaces") or []
    container_index: int | None = None
    mac: str | None = None
    host_interface: str | None = None
    for index, entry in enumerate(interfaces):
        if entry.get("sandbox") and entry.get("name") == ifname:
            container_index, mac = index, entry.get("mac")
        elif not entry.get("sandbox") and entry.get("name") != bridge:
            host_interface = entry.get("name")
    ips = [
        str(entry["address"])
        for entry in result.get("ips") or []
        # An address without an interface index belongs to the only interface there is.
        if entry.get("interface") in (None, container_index)
    ]
    return CniResult(interface=ifname, mac=mac, ips=ips, host_interface=host_interface, raw=result)
