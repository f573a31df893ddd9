"""The mapping log: who held which public address and ports, and when.

Operators must be able to answer "which subscriber used 203.0.113.9 port
40123 at 14:02 UTC" long after the flows are gone (lawful intercept, abuse
handling). Like most carrier-grade NATs this logs port *blocks* by default:
one record when a block is handed to a subscriber and one when it comes
back, which is a few records per subscriber per day instead of one per
flow. Per-mapping records can be switched on (`audit.per_mapping`).

Format: JSON Lines (one JSON object per line, UTF-8, compact), appended and
flushed record by record. Fields of every record:

    ts          UTC time of the event, RFC 3339 with microseconds and "Z"
    event       block_allocated | block_released | block_restored |
                mapping_created | mapping_released | mapping_restored
    subscriber  the inside (private) IPv4 address
    public_ip   the public IPv4 address
    port_first  first public port of the block (of a mapping: its port)
    port_last   last public port of the block (of a mapping: its port)
    proto       null for blocks (a block serves TCP, UDP and ICMP alike);
                "tcp" | "udp" | "icmp" for mappings (for ICMP the "port" is
                the echo identifier)
    fastpath    the fast-path instance (shard) the block or mapping belongs to
    reason      releases only: "idle" (its last flow aged out), "fastpath_left"
                (the fast path went away with its flows), "unused" (created
                for a flow that was then refused); null otherwise

Mapping records also carry `inside_port` (the subscriber's port or echo
identifier) and `mapping_id` (the id in the mapping's flow-rule cookies).

`*_restored` records are written when a restarted slow path rebuilds its
state from a fast path's table: the block or mapping was allocated by the
previous run (whose `*_allocated`/`*_created` record is already in the log)
and is still in use. Known gap: a block whose flows aged out while no slow
path was running gets no release record; its holding ends at the latest at
the next `block_restored`/`block_allocated` of that block.

Rotation: with `max_bytes` > 0 the file is renamed to path.1 (path.1 to
path.2 ..., keeping `backups` files) before a record would make it larger.
For external rotation (logrotate), move the file away and send the slow
path SIGHUP (`install_sighup`): the next record reopens the path. A write
error is logged and counted, never raised into packet handling; the next
record tries to reopen the file.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

log = logging.getLogger(__name__)

BLOCK_EVENTS = ("block_allocated", "block_released", "block_restored")
MAPPING_EVENTS = ("mapping_created", "mapping_released", "mapping_restored")
RELEASE_REASONS = ("idle", "fastpath_left", "unused")


def timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """Appends audit records to one file. Not thread-safe: the slow path's logic
    thread is the only writer (`request_reopen` may be called from a signal handler)."""

    def __init__(
        self,
        path: Path,
        *,
        per_mapping: bool = False,
        max_bytes: int = 0,
        backups: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes < 0 or backups < 1:
            raise ValueError("max_bytes must be >= 0 and backups >= 1")
        self.path = path
        self.per_mapping = per_mapping
        self.max_bytes = max_bytes
        self.backups = backups
        self._clock = clock
        self._file: TextIO | None = None
        self._size = 0
        self._reopen = False
        self.records = 0
        self.errors = 0
        self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a", encoding="utf-8")
        self._file = handle
        self._size = os.fstat(handle.fileno()).st_size

    def _close(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            try:
                handle.close()
            except OSError as exc:
                log.error("closing audit log %s failed: %s", self.path, exc)

    def request_reopen(self) -> None:
        """Reopen the path before the next record (async-signal-safe: only sets a flag)."""
        self._reopen = True

    def _rotate(self) -> None:
        self._close()
        for number in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{number}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{number + 1}"))
        if self.path.exists():
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._open()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        size = len(line.encode())
        try:
            if self._reopen or self._file is None:
                self._reopen = False
                self._close()
                self._open()
            if self.max_bytes and self._size and self._size + size > self.max_bytes:
                self._rotate()
            assert self._file is not None
            self._file.write(line)
            self._file.flush()
        except OSError as exc:
            self.errors += 1
            self._close()  # the next record reopens
            log.error("audit log %s: record lost (%s): %s", self.path, exc, line.rstrip())
            return
        self._size += size
        self.records += 1

    def block(
        self,
        event: str,
        *,
        subscriber: IPv4Address,
        public_ip: IPv4Address,
        port_first: int,
        port_last: int,
        fastpath: int,
        reason: str | None = None,
    ) -> None:
        if event not in BLOCK_EVENTS:
            raise ValueError(f"unknown block event {event!r}")
        self.write(
            {
                "ts": timestamp(self._clock()),
                "event": event,
                "subscriber": str(subscriber),
                "public_ip": str(public_ip),
                "port_first": port_first,
                "port_last": port_last,
                "proto": None,
                "fastpath": fastpath,
                "reason": reason,
            }
        )

    def mapping(
        self,
        event: str,
        *,
        subscriber: IPv4Address,
        inside_port: int,
        public_ip: IPv4Address,
        public_port: int,
        proto: str,
        fastpath: int,
        mapping_id: int,
        reason: str | None = None,
    ) -> None:
        """A per-mapping record; written only with `per_mapping`."""
        if event not in MAPPING_EVENTS:
            raise ValueError(f"unknown mapping event {event!r}")
        if not self.per_mapping:
            return
        self.write(
            {
                "ts": timestamp(self._clock()),
                "event": event,
                "subscriber": str(subscriber),
                "public_ip": str(public_ip),
                "port_first": public_port,
                "port_last": public_port,
                "proto": proto,
                "fastpath": fastpath,
                "reason": reason,
                "inside_port": inside_port,
                "mapping_id": mapping_id,
            }
        )

    def close(self) -> None:
        self._close()


def install_sighup(audit: AuditLog) -> None:
    """Reopen `audit` on SIGHUP (after logrotate moved it); call from the main thread.

    A handler installed before keeps being called.
    """
    previous = signal.getsignal(signal.SIGHUP)

    def reopen(signum: int, frame: FrameType | None) -> None:
        audit.request_reopen()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGHUP, reopen)
