"""The local lab VIM: VNF units as network namespaces with processes, linked by CNI plugins.

A virtual link is a Linux bridge; a replica is a network namespace holding
the unit's processes, attached to its links by Debian's CNI plugins (bridge
plus host-local IPAM) exactly as Multus would attach a pod, so a virtual link
means the same here as on Kubernetes. Processes run detached and outlive the
MANO service; the adapter finds them again from its state file (pid plus
start time) after a restart and reports those that died.

Nothing here routes a namespace to the host's uplink: bridges are made by
the adapter and enslave only its own veths; the host takes an address on a
bridge only when a NetworkSpec names a gateway, and there is no NAT.

The runtime ("image"). A container VIM runs a VDU's command inside its image,
which brings the interpreter and libraries the command needs. Here processes
share the host's filesystem, so the project's own Python environment plays
the image: `runtime_bin_dir` (default: the directory of `sys.executable`,
i.e. the service's virtualenv `bin`) comes first on every process's PATH.
`python -m vnfs.nat.fastpath` thus runs the interpreter, and the installed
`vnfs` package, of the MANO service itself, not whatever `python` the host
has (often none). A VDU that sets PATH in its environment overrides this.

Stopped replicas (`set_running(False)`) keep their namespace, attachments,
files and their share of the inventory, but have no processes. The intent is
in the state file, so nothing but `set_running(True)` starts them again: not
`ensure_unit`, `wait_ready` (which counts them as settled), `scale_unit` (it
only adds running replicas), a new adapter after a restart, nor
`heal_replica`, which rebuilds a stopped replica (same addresses) and leaves
it stopped: heal repairs, operate starts.

`update_unit` is a rolling replacement: the new spec is recorded first, then
one replica at a time is rebuilt (same index; same IP and MAC on links that
stay) and awaited ready before the next; a replica records the digest of the
processes and files it was made from, so a repeated call knows what is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import shutil
import signal
import sys
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from vim_adapters.errors import (
    VimConflict,
    VimError,
    VimFatalError,
    VimNotFound,
    VimRetryableError,
    VimTimeout,
)
from vim_adapters.interface import (
    Address,
    Inventory,
    Network,
    NetworkSpec,
    OwnedResource,
    Ownership,
    Replica,
    ReplicaState,
    Unit,
    UnitSpec,
    VimAdapter,
)
from vim_adapters.local import bridges, cni, health, netns, processes
from vim_adapters.local.state import (
    AttachmentRecord,
    LocalState,
    NetworkRecord,
    ReplicaRecord,
    StateStore,
    Transaction,
    UnitRecord,
    template_digest,
)

DEFAULT_CNI_PATH = Path("/usr/lib/cni")
LOG_TAIL_BYTES = 2000
# Without a health check, a replica is ready once its processes have stayed up
# this long, so a command that crashes at start-up is not reported ready.
MIN_READY_SECONDS = 1.0
POLL_SECONDS = 0.1


def _short_hash(text: str, length: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _log_tail(path: str) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - LOG_TAIL_BYTES))
            return log.read().decode(errors="replace").strip()
    except OSError:
        return ""


class LocalVim(VimAdapter):
    """VimAdapter on this Linux host; needs root."""

    vim_type = "local"

    def __init__(
        self,
        state_dir: Path,
        *,
        prefix: str = "nfv",
        cni_path: Path = DEFAULT_CNI_PATH,
        stop_timeout: float = 5.0,
        runtime_bin_dir: Path | None = None,
        update_ready_timeout: float = 120.0,
    ) -> None:
        """`stop_timeout`: SIGTERM to SIGKILL when a replica is removed or replaced.
        `runtime_bin_dir`: first on the processes' PATH (see the module docstring);
        None means the directory of `sys.executable`.
        `update_ready_timeout`: how long `update_unit` waits for a replaced replica
        to be ready before it replaces the next one.
        """
        if os.geteuid() != 0:
            raise VimFatalError(
                "the local VIM needs root (network namespaces, bridges, CNI plugins); "
                "run the service as root or register another VIM"
            )
        if not (cni_path / "bridge").is_file() or not (cni_path / "host-local").is_file():
            raise VimFatalError(
                f"CNI plugins not found in {cni_path}: install Debian's containernetworking-plugins"
            )
        if not prefix.isalnum() or len(prefix) > 8:
            raise VimFatalError(f"prefix {prefix!r} must be 1-8 letters or digits")
        if runtime_bin_dir is None and sys.executable:
            runtime_bin_dir = Path(sys.executable).parent
        if runtime_bin_dir is not None and not runtime_bin_dir.is_dir():
            raise VimFatalError(f"runtime_bin_dir {runtime_bin_dir} is not a directory")
        self.runtime_bin_dir = runtime_bin_dir
        self._bin_dirs = (runtime_bin_dir,) if runtime_bin_dir is not None else ()
        self.update_ready_timeout = update_ready_timeout
        self.prefix = prefix
        self.cni_path = cni_path
        self.stop_timeout = stop_timeout
        self.state_dir = state_dir
        self.ipam_dir = state_dir / "ipam"
        self.units_dir = state_dir / "units"
        self.store = StateStore(state_dir)

    # -- names ---------------------------------------------------------------------------

    def _netns_name(self, unit: str, index: int) -> str:
        return f"{self.prefix}-{_short_hash(unit)}-{index}"

    def _replica_id(self, unit: str, index: int) -> str:
        return f"{unit}-{index}"

    def _bridge_name(self, network: str) -> str:
        return bridges.bridge_name(network, self.prefix)

    # -- networks ------------------------------------------------------------------------

    def ensure_network(self, spec: NetworkSpec, owner: Ownership) -> Network:
        with self.store.transaction() as txn:
            record = txn.state.networks.get(spec.name)
            if record is not None and (record.spec != spec or record.owner != owner):
                raise VimConflict(
                    f"network {spec.name} exists with another spec or owner "
                    f"(vnf instance {record.owner.vnf_instance_id})"
                )
            if record is None:
                record = NetworkRecord(spec=spec, owner=owner, bridge=self._bridge_name(spec.name))
                txn.state.networks[spec.name] = record
                txn.save()
            if not record.complete:
                bridges.ensure(record.bridge, mtu=spec.mtu, vlan_filtering=spec.vlan is not None)
                if spec.gateway is not None:
                    prefix_len = ipaddress.ip_network(spec.cidr).prefixlen
                    bridges.set_address(record.bridge, f"{spec.gateway}/{prefix_len}")
                record.complete = True
                txn.save()
            return self._network(spec.name, record)

    def _network(self, name: str, record: NetworkRecord) -> Network:
        return Network(name=name, spec=record.spec, owner=record.owner, vim_id=record.bridge)

    def get_network(self, name: str) -> Network | None:
        record = self.store.load().networks.get(name)
        if record is None or not record.complete:
            return None
        return self._network(name, record)

    def delete_network(self, name: str) -> None:
        with self.store.transaction() as txn:
            record = txn.state.networks.get(name)
            if record is None:
                return
            # The replicas' attachments count too: an update that stopped half way
            # leaves replicas on a network the spec no longer names.
            users = sorted(
                unit_name
                for unit_name, unit in txn.state.units.items()
                if any(cp.network == name for cp in unit.spec.connection_points)
                or any(a.network == name for r in unit.replicas for a in r.attachments)
            )
            if users:
                raise VimConflict(f"network {name} is still used by unit(s) {', '.join(users)}")
            bridges.delete(record.bridge)
            shutil.rmtree(self.ipam_dir / name, ignore_errors=True)
            del txn.state.networks[name]
            txn.save()

    # -- units ----------------------------------------------------------------------------

    def ensure_unit(self, spec: UnitSpec, owner: Ownership) -> Unit:
        with self.store.transaction() as txn:
            record = txn.state.units.get(spec.name)
            if record is not None and (record.spec != spec or record.owner != owner):
                raise VimConflict(
                    f"unit {spec.name} exists with another spec or owner "
                    f"(vnf instance {record.owner.vnf_instance_id})"
                )
            self._check_networks(txn, spec)
            if record is None:
                record = UnitRecord(spec=spec, owner=owner)
                txn.state.units[spec.name] = record
                txn.save()
            self._converge(txn, record, lcm_op_id=owner.lcm_op_id)
        return self._require_unit(spec.name)

    def _check_networks(self, txn: Transaction, spec: UnitSpec) -> None:
        for cp in spec.connection_points:
            network = txn.state.networks.get(cp.network)
            if network is None or not network.complete:
                raise VimNotFound(
                    f"unit {spec.name}: connection point {cp.name} names network "
                    f"{cp.network}, which does not exist"
                )
            for address in cp.fixed_addresses:
                if ipaddress.ip_address(address) not in ipaddress.ip_network(network.spec.cidr):
                    raise VimFatalError(
                        f"unit {spec.name}: fixed address {address} of {cp.name} is outside "
                        f"{network.spec.cidr}"
                    )

    def _converge(self, txn: Transaction, record: UnitRecord, *, lcm_op_id: str | None) -> None:
        """Make the replicas match record.spec.replicas: finish, add or remove."""
        wanted = record.spec.replicas
        for extra in sorted(record.replicas, key=lambda r: r.index, reverse=True):
            if extra.index >= wanted:
                self._teardown(txn, record, extra)
        for index in range(wanted):
            replica = record.replica(index)
            if replica is None:
                replica = self._new_replica(record, index, lcm_op_id=lcm_op_id)
                record.replicas.append(replica)
                txn.save()
            if not replica.complete:
                self._build(txn, record, replica)

    def _new_replica(
        self, record: UnitRecord, index: int, *, lcm_op_id: str | None
    ) -> ReplicaRecord:
        return ReplicaRecord(
            index=index,
            netns=self._netns_name(record.spec.name, index),
            workdir=str(self.units_dir / record.spec.name / str(index)),
            lcm_op_id=lcm_op_id,
            template=template_digest(record.spec),
        )

    def _build(self, txn: Transaction, record: UnitRecord, replica: ReplicaRecord) -> None:
        """Create whatever of the replica is missing; every step is recorded before the next.

        A connection point in `replica.reuse` (heal, update) gets the IP and MAC it
        had, so peers' ARP caches and flow rules stay right. A stopped replica gets
        everything but its processes.
        """
        spec = record.spec
        try:
            netns.create(replica.netns)
            workdir = Path(replica.workdir)
            config_dir = workdir / "config"
            config_dir.mkdir(parents=True, exist_ok=True)
            (workdir / "logs").mkdir(exist_ok=True)
            for file_name, content in spec.config_files.items():
                (config_dir / file_name).write_text(content)
            done = {a.connection_point for a in replica.attachments}
            present = set(netns.addresses(replica.netns))
            for cp in spec.connection_points:
                if cp.name in done:
                    continue
                network = txn.state.networks[cp.network]
                config = self._cni_config(network)
                if cp.name in present:
                    # A crash came between the plugin's ADD and our record of it.
                    cni.delete(
                        config,
                        container_id=replica.netns,
                        netns=netns.path(replica.netns),
                        ifname=cp.name,
                        cni_path=self.cni_path,
                    )
                before = replica.reuse.get(cp.name)
                if before is not None and (before.network != cp.network or not before.ips):
                    before = None
                fixed = (
                    before.ips[0].split("/")[0]
                    if before and before.ips
                    else (cp.fixed_addresses[replica.index] if cp.fixed_addresses else None)
                )
                if fixed is None:
                    # Not an address another replica is to get (`_reserved`).
                    config = self._cni_config(network, reserved=_reserved(txn.state, cp.network))
                result = cni.add(
                    config,
                    container_id=replica.netns,
                    netns=netns.path(replica.netns),
                    ifname=cp.name,
                    ip=fixed,
                    mac=before.mac if before else None,
                    cni_path=self.cni_path,
                )
                replica.attachments.append(
                    AttachmentRecord(
                        connection_point=cp.name,
                        network=cp.network,
                        ifname=cp.name,
                        ips=list(result.ips),
                        mac=result.mac,
                    )
                )
                txn.save()
            if replica.stopped:
                self._stop_processes(txn, replica, grace=self.stop_timeout)
            else:
                self._start_processes(txn, record, replica)
            replica.complete = True
            replica.reuse = {}
            txn.save()
        except VimError:
            txn.save()
            raise

    def _start_processes(
        self, txn: Transaction, record: UnitRecord, replica: ReplicaRecord
    ) -> None:
        """Start every process of the spec that does not run; keep those that do."""
        workdir = Path(replica.workdir)
        env = self._environment(record, replica)
        running = {p.name for p in replica.processes if processes.is_alive(p)}
        replica.processes = [p for p in replica.processes if p.name in running]
        # A crash between starting a process and recording it leaves one we do not
        # know; it would hold the ports the new one needs.
        _kill_strays(replica.netns, keep={p.pid for p in replica.processes})
        for proc in record.spec.processes:
            if proc.name in running:
                continue
            handle = processes.start(
                netns=replica.netns,
                name=proc.name,
                argv=proc.command,
                env={**env, **proc.env},
                cwd=workdir,
                log_path=workdir / "logs" / f"{proc.name}.log",
                bin_dirs=self._bin_dirs,
            )
            replica.processes.append(handle)
            txn.save()

    def _stop_processes(self, txn: Transaction, replica: ReplicaRecord, *, grace: float) -> None:
        """Stop the replica's processes and anything else left in its namespace."""
        if replica.processes:
            processes.stop_all(replica.processes, grace=grace)
            replica.processes = []
            txn.save()
        if netns.exists(replica.netns):
            # Anything else still in the namespace (a forked daemon) must not outlive it.
            _kill_strays(replica.netns, keep=set())

    def _environment(self, record: UnitRecord, replica: ReplicaRecord) -> dict[str, str]:
        """What every process of a replica learns about where it runs."""
        env = {
            "VNF_INSTANCE_ID": record.owner.vnf_instance_id,
            "VNF_UNIT": record.spec.name,
            "VNF_REPLICA_INDEX": str(replica.index),
            "VNF_CONFIG_DIR": str(Path(replica.workdir) / "config"),
        }
        if record.owner.vdu_id:
            env["VNF_VDU_ID"] = record.owner.vdu_id
        for attachment in replica.attachments:
            key = attachment.connection_point.upper()
            env[f"VNF_CP_{key}_IFNAME"] = attachment.ifname
            if attachment.ips:
                env[f"VNF_CP_{key}_ADDRESS"] = attachment.ips[0]
        return env

    def _cni_config(
        self, network: NetworkRecord, *, reserved: Collection[str] = ()
    ) -> dict[str, object]:
        return cni.network_config(
            network.spec, bridge=network.bridge, ipam_dir=self.ipam_dir, reserved=reserved
        )

    def _teardown(
        self, txn: Transaction, record: UnitRecord, replica: ReplicaRecord, *, keep: bool = False
    ) -> None:
        """Remove a replica: processes, attachments (leases), namespace, files."""
        replica.complete = False
        txn.save()
        self._stop_processes(txn, replica, grace=self.stop_timeout)
        for attachment in list(replica.attachments):
            network = txn.state.networks.get(attachment.network)
            if network is not None:
                cni.delete(
                    self._cni_config(network),
                    container_id=replica.netns,
                    netns=netns.path(replica.netns) if netns.exists(replica.netns) else None,
                    ifname=attachment.ifname,
                    cni_path=self.cni_path,
                )
            replica.attachments.remove(attachment)
            txn.save()
        netns.delete(replica.netns)
        if not keep:
            shutil.rmtree(replica.workdir, ignore_errors=True)
            record.replicas.remove(replica)
            txn.save()

    def get_unit(self, name: str) -> Unit | None:
        record = self.store.load().units.get(name)
        if record is None:
            return None
        return self._unit(name, record)

    def _require_unit(self, name: str) -> Unit:
        unit = self.get_unit(name)
        if unit is None:
            raise VimNotFound(f"unit {name} does not exist")
        return unit

    def _unit(self, name: str, record: UnitRecord) -> Unit:
        replicas = tuple(
            self._replica(record, replica)
            for replica in sorted(record.replicas, key=lambda r: r.index)
        )
        return Unit(name=name, spec=record.spec, owner=record.owner, replicas=replicas)

    def _replica(self, record: UnitRecord, replica: ReplicaRecord) -> Replica:
        addresses = tuple(
            Address(
                connection_point=a.connection_point,
                network=a.network,
                ip=ip.split("/")[0],
                mac=a.mac,
            )
            for a in replica.attachments
            for ip in a.ips
        )
        state, detail = self._observe(record, replica)
        return Replica(
            id=self._replica_id(record.spec.name, replica.index),
            index=replica.index,
            state=state,
            addresses=addresses,
            detail=detail,
        )

    def _observe(
        self, record: UnitRecord, replica: ReplicaRecord
    ) -> tuple[ReplicaState, str | None]:
        """The replica's state as the system shows it now."""
        if not replica.complete:
            return ReplicaState.PENDING, "being stopped" if replica.stopped else "being created"
        if not netns.exists(replica.netns):
            return ReplicaState.FAILED, f"namespace {replica.netns} is gone"
        if replica.stopped:
            return ReplicaState.STOPPED, "stopped on request"
        for handle in replica.processes:
            if not processes.is_alive(handle):
                tail = _log_tail(handle.log_path).splitlines()[-3:]
                last = f": {' | '.join(tail)}" if tail else ""
                return ReplicaState.FAILED, f"process {handle.name} exited{last}"
        check = record.spec.health_check
        if check is None:
            youngest = min((processes.uptime_seconds(h) for h in replica.processes), default=0.0)
            if youngest < MIN_READY_SECONDS:
                return ReplicaState.RUNNING, "processes just started"
            return ReplicaState.READY, None
        if check.tcp_port is not None:
            host = next((a.ips[0].split("/")[0] for a in replica.attachments if a.ips), "127.0.0.1")
            ok = health.tcp_ready(
                replica.netns, host, check.tcp_port, timeout=check.timeout_seconds
            )
        else:
            assert check.command is not None
            ok = health.command_ready(
                replica.netns, check.command, timeout=check.timeout_seconds, bin_dirs=self._bin_dirs
            )
        if ok:
            return ReplicaState.READY, None
        return ReplicaState.RUNNING, "health check not passing yet"

    def scale_unit(self, name: str, replicas: int, *, lcm_op_id: str | None = None) -> Unit:
        if replicas < 0:
            raise VimFatalError(f"cannot scale unit {name} to {replicas} replicas")
        with self.store.transaction() as txn:
            record = txn.state.units.get(name)
            if record is None:
                raise VimNotFound(f"unit {name} does not exist")
            scaled = record.spec.model_copy(update={"replicas": replicas})
            # Re-validate: fixed addresses must cover the new replica count.
            record.spec = UnitSpec.model_validate(scaled.model_dump())
            txn.save()
            self._converge(txn, record, lcm_op_id=lcm_op_id)
        return self._require_unit(name)

    def heal_replica(self, unit: str, replica_id: str) -> Unit:
        """Rebuild the replica from the unit's spec: same index, IP and MAC addresses.

        A stopped replica is rebuilt stopped (namespace, attachments, files, no
        processes): heal repairs what the VIM provides, `set_running` decides
        whether the VNFC runs.
        """
        with self.store.transaction() as txn:
            record = self._unit_record(txn, unit)
            (replica,) = self._select(record, [replica_id])
            self._replace(txn, record, replica, lcm_op_id=None)
        return self._require_unit(unit)

    def _unit_record(self, txn: Transaction, name: str) -> UnitRecord:
        record = txn.state.units.get(name)
        if record is None:
            raise VimNotFound(f"unit {name} does not exist")
        return record

    def _select(self, record: UnitRecord, replica_ids: Sequence[str] | None) -> list[ReplicaRecord]:
        """The named replicas (each once, in the order given), or all of them by index."""
        ordered = sorted(record.replicas, key=lambda r: r.index)
        if replica_ids is None:
            return ordered
        # A lone string is a Sequence[str] too, of its characters.
        wanted = [replica_ids] if isinstance(replica_ids, str) else list(replica_ids)
        by_id = {self._replica_id(record.spec.name, r.index): r for r in ordered}
        unknown = [i for i in wanted if i not in by_id]
        if unknown:
            raise VimNotFound(
                f"unit {record.spec.name} has no replica {', '.join(unknown)} "
                f"(it has: {', '.join(by_id) or 'none'})"
            )
        return [by_id[i] for i in dict.fromkeys(wanted)]

    def _replace(
        self, txn: Transaction, record: UnitRecord, replica: ReplicaRecord, *, lcm_op_id: str | None
    ) -> None:
        """Tear the replica down and build it again from record.spec, with the same index.

        Connection points whose network (and fixed address) the spec keeps get
        their IP and MAC again: peers and flow rules refer to them. Which ones is
        recorded before anything is removed, so a crash in between loses nothing.
        """
        known = {a.connection_point: a for a in replica.attachments}
        known.update(replica.reuse)
        replica.reuse = {
            cp: attachment
            for cp, attachment in known.items()
            if _still_valid(record.spec, replica.index, cp, attachment)
        }
        txn.save()
        self._teardown(txn, record, replica, keep=True)
        # Fresh config files (one the new spec drops must not linger); the logs stay.
        shutil.rmtree(Path(replica.workdir) / "config", ignore_errors=True)
        replica.template = template_digest(record.spec)
        if lcm_op_id is not None:
            replica.lcm_op_id = lcm_op_id
        txn.save()
        self._build(txn, record, replica)

    def _up_to_date(self, spec: UnitSpec, replica: ReplicaRecord) -> bool:
        """Whether the replica is complete and made from `spec` (processes, files, CPs)."""
        if not replica.complete or replica.template != template_digest(spec):
            return False
        attached = {a.connection_point: a for a in replica.attachments}
        if set(attached) != {cp.name for cp in spec.connection_points}:
            return False
        return all(
            _still_valid(spec, replica.index, cp.name, attached[cp.name])
            for cp in spec.connection_points
        )

    # -- update ---------------------------------------------------------------------------

    def update_unit(self, spec: UnitSpec, *, lcm_op_id: str | None = None) -> Unit:
        """Rolling replacement: one replica at a time, each ready before the next goes.

        The new spec is recorded first; replicas then compare themselves with it
        (`_up_to_date`), so a repeated call, also after a crash, replaces only
        what is left. A replaced replica carries `lcm_op_id` (when given), so
        `list_owned` tells which replicas the operation made anew. Changing only
        cpu, memory or the health check replaces nothing. A replaced replica that
        fails stops the update (VimFatalError): update back, or heal and repeat.
        A stopped replica is replaced stopped.
        """
        with self.store.transaction() as txn:
            record = self._unit_record(txn, spec.name)
            if spec.replicas != record.spec.replicas:
                raise VimFatalError(
                    f"unit {spec.name} has {record.spec.replicas} replicas, the update asks "
                    f"for {spec.replicas}: update_unit keeps the count, scale_unit changes it"
                )
            self._check_networks(txn, spec)
            # Records made before templates existed were made from the spec being left.
            unstamped = [r for r in record.replicas if r.template is None]
            for replica in unstamped:
                replica.template = template_digest(record.spec)
            if unstamped or record.spec != spec:
                record.spec = spec
                txn.save()
        while True:
            with self.store.transaction() as txn:
                record = self._unit_record(txn, spec.name)
                if record.spec != spec:
                    raise VimConflict(f"unit {spec.name} was changed by another call meanwhile")
                index = self._update_step(txn, record, lcm_op_id=lcm_op_id)
            if index is None:
                return self._require_unit(spec.name)
            self._await_replaced(spec.name, index)

    def _update_step(
        self, txn: Transaction, record: UnitRecord, *, lcm_op_id: str | None
    ) -> int | None:
        """Replace (or finish) the next replica that differs from the spec; its index."""
        for extra in sorted(record.replicas, key=lambda r: r.index, reverse=True):
            if extra.index >= record.spec.replicas:  # a scale-in cut short by a crash
                self._teardown(txn, record, extra)
        # The replica replaced last, if it was never seen ready, comes first.
        pending = next((r for r in record.replicas if r.rolling), None)
        if pending is not None:
            if not self._up_to_date(record.spec, pending):
                self._replace(txn, record, pending, lcm_op_id=lcm_op_id)
            return pending.index
        for index in range(record.spec.replicas):
            replica = record.replica(index)
            if replica is None:
                replica = self._new_replica(record, index, lcm_op_id=lcm_op_id)
                replica.rolling = True
                record.replicas.append(replica)
                txn.save()
                self._build(txn, record, replica)
                return index
            if not self._up_to_date(record.spec, replica):
                replica.rolling = not replica.stopped
                self._replace(txn, record, replica, lcm_op_id=lcm_op_id)
                return index
        return None

    def _await_replaced(self, name: str, index: int) -> None:
        """Wait until the replaced replica is ready (or stopped), then clear its mark."""
        deadline = time.monotonic() + self.update_ready_timeout
        while True:
            record = self.store.load().units.get(name)
            if record is None:
                raise VimNotFound(f"unit {name} was deleted while it was being updated")
            replica = record.replica(index)
            if replica is None:
                return  # scaled in meanwhile: nothing to wait for
            state, detail = self._observe(record, replica)
            if state in (ReplicaState.READY, ReplicaState.STOPPED):
                break
            replica_id = self._replica_id(name, index)
            if state is ReplicaState.FAILED:
                raise VimFatalError(
                    f"unit {name}: replaced replica {replica_id} failed ({detail}); the update "
                    "stops here: update back, or heal it and repeat the update"
                )
            if time.monotonic() >= deadline:
                raise VimTimeout(
                    f"unit {name}: replaced replica {replica_id} not ready after "
                    f"{self.update_ready_timeout:.0f}s ({state.value}: {detail})"
                )
            time.sleep(POLL_SECONDS)
        with self.store.transaction() as txn:
            record = txn.state.units.get(name)
            replica = record.replica(index) if record is not None else None
            if replica is not None and replica.rolling:
                replica.rolling = False
                txn.save()

    # -- start and stop -------------------------------------------------------------------

    def set_running(
        self,
        unit: str,
        running: bool,
        *,
        replica_ids: Sequence[str] | None = None,
        graceful_timeout: float = 0.0,
    ) -> Unit:
        """Stop (SIGTERM, then SIGKILL after `graceful_timeout`) or start the replicas' processes.

        All the replicas' processes get SIGTERM at once and share one grace period.
        Starting also restarts processes that died, in the same namespace with the
        same addresses. A replica whose namespace is gone cannot be started or
        stopped: it is FAILED, heal it.
        """
        if graceful_timeout < 0:
            raise VimFatalError(f"graceful_timeout cannot be negative ({graceful_timeout})")
        with self.store.transaction() as txn:
            record = self._unit_record(txn, unit)
            targets = self._select(record, replica_ids)
            for replica in targets:
                if (replica.attachments or replica.processes) and not netns.exists(replica.netns):
                    raise VimFatalError(
                        f"replica {self._replica_id(unit, replica.index)} has lost its "
                        f"namespace {replica.netns}: heal it first"
                    )
            if running:
                self._start(txn, record, targets)
            else:
                self._stop(txn, record, targets, grace=graceful_timeout)
        return self._require_unit(unit)

    def _stop(
        self, txn: Transaction, record: UnitRecord, targets: list[ReplicaRecord], *, grace: float
    ) -> None:
        changing = [r for r in targets if not (r.stopped and r.complete and not r.processes)]
        if not changing:
            return
        for replica in changing:
            replica.stopped = True
            replica.complete = False
        txn.save()
        # All at once: N replicas take one grace period, not N.
        processes.stop_all([h for r in changing for h in r.processes], grace=grace)
        for replica in changing:
            replica.processes = []
            txn.save()
            self._build(txn, record, replica)

    def _start(self, txn: Transaction, record: UnitRecord, targets: list[ReplicaRecord]) -> None:
        wanted = {p.name for p in record.spec.processes}
        changing = [
            r
            for r in targets
            if r.stopped
            or not r.complete
            or not wanted <= {p.name for p in r.processes if processes.is_alive(p)}
        ]
        if not changing:
            return
        for replica in changing:
            replica.stopped = False
            replica.complete = False
        txn.save()
        for replica in changing:
            self._build(txn, record, replica)

    def delete_unit(self, name: str) -> None:
        with self.store.transaction() as txn:
            record = txn.state.units.get(name)
            if record is None:
                return
            for replica in sorted(record.replicas, key=lambda r: r.index, reverse=True):
                self._teardown(txn, record, replica)
            shutil.rmtree(self.units_dir / name, ignore_errors=True)
            del txn.state.units[name]
            txn.save()

    def wait_ready(self, name: str, *, timeout: float) -> Unit:
        """Until every replica is READY or STOPPED: a stopped replica is as asked."""
        deadline = time.monotonic() + timeout
        while True:
            unit = self._require_unit(name)
            settled = (ReplicaState.READY, ReplicaState.STOPPED)
            if len(unit.replicas) == unit.spec.replicas and all(
                r.state in settled for r in unit.replicas
            ):
                return unit
            failed = [r for r in unit.replicas if r.state is ReplicaState.FAILED]
            if failed:
                problems = "; ".join(f"{r.id}: {r.detail}" for r in failed)
                raise VimFatalError(f"unit {name} has failed replicas: {problems}")
            if time.monotonic() >= deadline:
                waiting = "; ".join(
                    f"{r.id} {r.state.value} ({r.detail})"
                    for r in unit.replicas
                    if r.state not in settled
                )
                raise VimTimeout(f"unit {name} not ready after {timeout:.0f}s: {waiting}")
            check = unit.spec.health_check
            time.sleep(min(POLL_SECONDS, check.period_seconds) if check else POLL_SECONDS)

    # -- ownership, inventory, leaks --------------------------------------------------------

    def list_owned(self, vnf_instance_id: str | None = None) -> list[OwnedResource]:
        state = self.store.load()
        owned: list[OwnedResource] = []

        def mine(owner: Ownership) -> bool:
            return vnf_instance_id is None or owner.vnf_instance_id == vnf_instance_id

        for name, network in sorted(state.networks.items()):
            if mine(network.owner):
                owned.append(OwnedResource(kind="network", name=name, owner=network.owner))
        for name, unit in sorted(state.units.items()):
            if not mine(unit.owner):
                continue
            owned.append(OwnedResource(kind="unit", name=name, owner=unit.owner))
            for replica in sorted(unit.replicas, key=lambda r: r.index):
                owner = unit.owner.model_copy(update={"lcm_op_id": replica.lcm_op_id})
                owned.append(
                    OwnedResource(
                        kind="replica", name=self._replica_id(name, replica.index), owner=owner
                    )
                )
        return owned

    def inventory(self) -> Inventory:
        state = self.store.load()
        replicas = [(u.spec, len(u.replicas)) for u in state.units.values()]
        return Inventory(
            vim_type=self.vim_type,
            cpu_total=float(os.cpu_count() or 1),
            cpu_allocated=sum(spec.cpu * count for spec, count in replicas),
            memory_mib_total=_memory_mib(),
            memory_mib_allocated=sum(spec.memory_mib * count for spec, count in replicas),
            networks=len(state.networks),
            replicas=sum(count for _, count in replicas),
        )

    def leaks(self) -> list[str]:
        """Differences between what the state records and what the system has, both ways.

        Empty means: every namespace, bridge, IPAM lease and process with this
        adapter's prefix is recorded, and everything recorded exists.
        """
        state = self.store.load()
        problems: list[str] = []
        recorded_ns = {r.netns for u in state.units.values() for r in u.replicas}
        recorded_bridges = {n.bridge for n in state.networks.values()}
        system_ns = set(netns.list_names(f"{self.prefix}-"))
        system_bridges = set(bridges.list_names(self.prefix))
        problems += [f"namespace {n} is not recorded" for n in sorted(system_ns - recorded_ns)]
        problems += [f"namespace {n} is missing" for n in sorted(recorded_ns - system_ns)]
        problems += [
            f"bridge {b} is not recorded" for b in sorted(system_bridges - recorded_bridges)
        ]
        problems += [f"bridge {b} is missing" for b in sorted(recorded_bridges - system_bridges)]
        recorded_ips = {
            (a.network, ip.split("/")[0])
            for u in state.units.values()
            for r in u.replicas
            for a in r.attachments
            for ip in a.ips
        }
        for network, addresses in cni.leases(self.ipam_dir).items():
            for address in addresses:
                if (network, address) not in recorded_ips:
                    problems.append(f"IPAM lease {address} on {network} is not recorded")
        recorded_pids = {
            p.pid for u in state.units.values() for r in u.replicas for p in r.processes
        }
        for name in sorted(system_ns & recorded_ns):
            for pid in processes.processes_in_netns(name):
                if pid not in recorded_pids:
                    problems.append(f"process {pid} in namespace {name} is not recorded")
        return problems


def _reserved(state: LocalState, network: str) -> set[str]:
    """Addresses on ``network`` that replicas are to get by name, never to be allocated.

    The fixed addresses of every connection point on it, and the addresses rebuilt replicas
    take back (`ReplicaRecord.reuse`): between the release of such an address and its
    rebuild (longer after a crash) an allocation must not take it.
    """
    reserved: set[str] = set()
    for record in state.units.values():
        for cp in record.spec.connection_points:
            if cp.network == network:
                reserved.update(cp.fixed_addresses)
        for replica in record.replicas:
            for attachment in replica.reuse.values():
                if attachment.network == network:
                    reserved.update(ip.split("/")[0] for ip in attachment.ips)
    return reserved


def _still_valid(spec: UnitSpec, index: int, cp_name: str, attachment: AttachmentRecord) -> bool:
    """Whether an attachment fits the spec's connection point: same network, right address."""
    cp = next((c for c in spec.connection_points if c.name == cp_name), None)
    if cp is None or cp.network != attachment.network or not attachment.ips:
        return False
    if not cp.fixed_addresses:
        return True
    have = ipaddress.ip_interface(attachment.ips[0]).ip
    return have == ipaddress.ip_address(cp.fixed_addresses[index])


def _kill_strays(name: str, *, keep: set[int], timeout: float = 5.0) -> None:
    """SIGKILL every process in the namespace but `keep`, and wait until they are gone."""
    deadline = time.monotonic() + timeout
    while True:
        strays = [pid for pid in processes.processes_in_netns(name) if pid not in keep]
        if not strays:
            return
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise VimRetryableError(f"processes {strays} in namespace {name} did not exit")
        time.sleep(0.02)


def _memory_mib() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0
