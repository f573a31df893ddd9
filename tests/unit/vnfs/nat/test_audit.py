"""The mapping log: record format, flushing, rotation by size and on SIGHUP, write errors."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from tests.unit.vnfs.nat.factory import REMOTE, config, fastpath, outbound, public_of
from vnfs.nat.audit import AuditLog, install_sighup, timestamp
from vnfs.nat.logic import NatLogic
from vnfs.sdk.flow import ExpiredRule, RuleCounters

SUBSCRIBER = IPv4Address("10.10.0.5")
PUBLIC = IPv4Address("203.0.113.9")
T0 = datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=UTC).timestamp()


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def block(audit: AuditLog, event: str = "block_allocated", reason: str | None = None) -> None:
    audit.block(
        event,
        subscriber=SUBSCRIBER,
        public_ip=PUBLIC,
        port_first=1536,
        port_last=2047,
        fastpath=3,
        reason=reason,
    )


def test_block_and_mapping_records(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, per_mapping=True, clock=lambda: T0)
    block(audit)
    audit.mapping(
        "mapping_released",
        subscriber=SUBSCRIBER,
        inside_port=40000,
        public_ip=PUBLIC,
        public_port=1600,
        proto="tcp",
        fastpath=3,
        mapping_id=42,
        reason="idle",
    )
    # Flushed per record: readable while the log is open.
    assert lines(path) == [
        {
            "ts": "2024-05-01T12:30:15.250000Z",
            "event": "block_allocated",
            "subscriber": "10.10.0.5",
            "public_ip": "203.0.113.9",
            "port_first": 1536,
            "port_last": 2047,
            "proto": None,
            "fastpath": 3,
            "reason": None,
        },
        {
            "ts": "2024-05-01T12:30:15.250000Z",
            "event": "mapping_released",
            "subscriber": "10.10.0.5",
            "public_ip": "203.0.113.9",
            "port_first": 1600,
            "port_last": 1600,
            "proto": "tcp",
            "fastpath": 3,
            "reason": "idle",
            "inside_port": 40000,
            "mapping_id": 42,
        },
    ]
    assert audit.records == 2
    with pytest.raises(ValueError, match="unknown block event"):
        block(audit, "block_stolen")
    audit.close()


def test_mapping_records_are_off_by_default(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    audit.mapping(
        "mapping_created",
        subscriber=SUBSCRIBER,
        inside_port=1,
        public_ip=PUBLIC,
        public_port=1600,
        proto="udp",
        fastpath=0,
        mapping_id=1,
    )
    assert (tmp_path / "audit.jsonl").read_text() == ""
    assert audit.records == 0


def test_timestamps_are_utc_with_microseconds() -> None:
    stamp = timestamp(T0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() == T0


def test_size_rotation_keeps_the_newest_backups(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    probe = AuditLog(tmp_path / "probe.jsonl")
    block(probe)
    record_size = (tmp_path / "probe.jsonl").stat().st_size
    audit = AuditLog(path, max_bytes=3 * record_size, backups=2)
    for _ in range(10):
        block(audit)
    # 10 records, 3 per file: 1 in the live file, 3 in .1, 3 in .2, the oldest 3 gone.
    assert len(lines(path)) == 1
    assert len(lines(tmp_path / "audit.jsonl.1")) == 3
    assert len(lines(tmp_path / "audit.jsonl.2")) == 3
    assert not (tmp_path / "audit.jsonl.3").exists()
    assert all(f.stat().st_size <= 3 * record_size for f in tmp_path.glob("audit.jsonl*"))


def test_an_existing_log_is_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    block(AuditLog(path))
    block(AuditLog(path))
    assert len(lines(path)) == 2


@pytest.fixture
def sighup_restored() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGHUP)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.usefixtures("sighup_restored")
def test_sighup_reopens_after_logrotate_moved_the_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    calls: list[int] = []
    signal.signal(signal.SIGHUP, lambda signum, frame: calls.append(signum))
    audit = AuditLog(path)
    install_sighup(audit)
    block(audit)
    path.rename(tmp_path / "audit.jsonl.rotated")
    block(audit)  # still the old (moved) file until told
    os.kill(os.getpid(), signal.SIGHUP)
    block(audit)
    assert len(lines(tmp_path / "audit.jsonl.rotated")) == 2
    assert len(lines(path)) == 1
    assert calls == [signal.SIGHUP]  # the handler installed before still runs


def test_write_errors_are_counted_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audit = AuditLog(Path("/dev/full"))
    with caplog.at_level(logging.ERROR, logger="vnfs.nat.audit"):
        block(audit)
    assert (audit.errors, audit.records) == (1, 0)
    assert "record lost" in caplog.text and '"subscriber":"10.10.0.5"' in caplog.text
    # A log whose directory became unusable recovers once it is usable again.
    path = tmp_path / "logs" / "audit.jsonl"
    audit = AuditLog(path)
    path.unlink()
    path.parent.rmdir()
    path.parent.write_text("not a directory")
    audit.request_reopen()
    block(audit)
    assert audit.errors == 1
    path.parent.unlink()
    block(audit)
    assert audit.errors == 1 and audit.records == 1
    assert len(lines(path)) == 1


def test_the_logic_writes_its_configured_log(tmp_path: Path) -> None:
    path = tmp_path / "var" / "nat.jsonl"
    nat = NatLogic(config(audit={"path": str(path), "per_mapping": True}))
    out, back = outbound(nat, "10.10.0.5", 5000, REMOTE, 53, fp=fastpath(1))
    nat.on_rules_expired(fastpath(1), [ExpiredRule(r, RuleCounters()) for r in (out, back)])
    nat.close()
    events = [(r["event"], r["fastpath"], r["reason"]) for r in lines(path)]
    assert events == [
        ("block_allocated", 1, None),
        ("mapping_created", 1, None),
        ("mapping_released", 1, "idle"),
        ("block_released", 1, "idle"),
    ]
    mapping_record = lines(path)[1]
    assert mapping_record["inside_port"] == 5000
    assert mapping_record["proto"] == "udp"
    public_ip, public_port = public_of(out)
    assert (mapping_record["public_ip"], mapping_record["port_first"]) == (
        str(public_ip),
        public_port,
    )
