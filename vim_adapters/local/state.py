"""The local VIM's record of what it made, kept in one JSON file under a lock.

The record is written before the system resource is made (intent first), so
after a crash the state names everything that may exist and the next call
can finish or remove it; nothing the adapter made is ever unknown to it.
Several processes (API replicas, workers) share one state directory, so
every change happens under an exclusive flock and is saved atomically.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from vim_adapters.interface import NetworkSpec, Ownership, UnitSpec
from vim_adapters.local.processes import ProcessHandle


def _now() -> datetime:
    return datetime.now(UTC)


class AttachmentRecord(BaseModel):
    """One CNI attachment of a replica: a connection point on a network."""

    connection_point: str
    network: str
    ifname: str
    ips: list[str] = Field(default_factory=list)
    mac: str | None = None


class ReplicaRecord(BaseModel):
    """One replica: its namespace, attachments and processes."""

    index: int
    netns: str
    workdir: str
    lcm_op_id: str | None = None
    attachments: list[AttachmentRecord] = Field(default_factory=list)
    processes: list[ProcessHandle] = Field(default_factory=list)
    # False until every attachment and process exists; a crash leaves it False.
    # Also False while the processes are being stopped or started (`set_running`).
    complete: bool = False
    # Stopped on request: no processes, and nothing but `set_running` starts them again.
    stopped: bool = False
    # Digest of the processes and config files the replica was built from
    # (`template_digest`); None for records made before it existed.
    template: str | None = None
    # Replaced by `update_unit` and not yet seen ready: the update waits for it
    # before it replaces the next replica, also when repeated after a crash.
    rolling: bool = False
    # Connection point -> the attachment a rebuild (heal, update) must take again, same
    # IP and MAC; recorded before the old attachments go, cleared once rebuilt.
    reuse: dict[str, AttachmentRecord] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=_now)


def template_digest(spec: UnitSpec) -> str:
    """What a replica's processes are made from: a change replaces the replica."""
    made_from = {
        "processes": [p.model_dump(mode="json") for p in spec.processes],
        "config_files": spec.config_files,
    }
    return hashlib.sha256(json.dumps(made_from, sort_keys=True).encode()).hexdigest()


class UnitRecord(BaseModel):
    """A unit: its current spec (replicas as last scaled), owner and replicas."""

    spec: UnitSpec
    owner: Ownership
    replicas: list[ReplicaRecord] = Field(default_factory=list)

    def replica(self, index: int) -> ReplicaRecord | None:
        return next((r for r in self.replicas if r.index == index), None)


class NetworkRecord(BaseModel):
    """A virtual link: its spec, owner and the bridge that carries it."""

    spec: NetworkSpec
    owner: Ownership
    bridge: str
    complete: bool = False


class LocalState(BaseModel):
    """Everything one local VIM owns."""

    version: int = 1
    networks: dict[str, NetworkRecord] = Field(default_factory=dict)
    units: dict[str, UnitRecord] = Field(default_factory=dict)


class StateStore:
    """Loads and saves LocalState; `transaction()` holds the lock for a read-modify-write."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "state.json"
        self._lock_path = directory / "state.lock"
        directory.mkdir(parents=True, exist_ok=True)

    def load(self) -> LocalState:
        try:
            return LocalState.model_validate_json(self.path.read_bytes())
        except FileNotFoundError:
            return LocalState()

    def save(self, state: LocalState) -> None:
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as out:
            out.write(state.model_dump_json(indent=1).encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield Transaction(self, self.load())
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class Transaction:
    """The state under the lock; `save()` after each step keeps intent ahead of the system."""

    def __init__(self, store: StateStore, state: LocalState) -> None:
        self.store = store
        self.state = state

    def save(self) -> None:
        self.store.save(self.state)
