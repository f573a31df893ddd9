"""The NAT slow-path entry point: its logic factory, and configuration errors as exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vnfs.nat.config import NatUnitConfig
from vnfs.nat.slowpath import nat_logic
from vnfs.sdk.config import ConfigError, load

ROOT = Path(__file__).resolve().parents[4]
INSTANCE = "0b7e4a7e-5d0c-4c55-9d39-5a1f2f0c1e11"


def unit_dir(tmp_path: Path, settings: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    config_dir = tmp_path / "unit" / "config"
    config_dir.mkdir(parents=True)
    document = {
        "vnfInstanceId": INSTANCE,
        "flavourId": "default",
        "vdu": "nat_slowpath",
        "additionalParams": {},
        "configurableProperties": {"additional_configurable_properties": settings},
    }
    (config_dir / "vnf-config.json").write_text(json.dumps(document))
    environ = {
        "VNF_INSTANCE_ID": INSTANCE,
        "VNF_UNIT": "nat-slowpath",
        "VNF_REPLICA_INDEX": "0",
        "VNF_CONFIG_DIR": str(config_dir),
        "VNF_CP_PUNT_IFNAME": "punt",
        "VNF_CP_PUNT_ADDRESS": "10.255.0.2/27",
    }
    return config_dir, environ


@pytest.fixture
def sighup_restored() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGHUP)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.usefixtures("sighup_restored")
def test_the_factory_builds_the_logic_with_its_audit_log(tmp_path: Path) -> None:
    _, environ = unit_dir(tmp_path, {"public_pool": {"cidr": "203.0.113.0/26"}})
    before = signal.getsignal(signal.SIGHUP)
    logic = nat_logic(load(NatUnitConfig, environ))
    try:
        assert logic.audit.path == tmp_path / "unit" / "logs" / "nat-mappings.jsonl"
        assert logic.audit.path.exists()
        assert signal.getsignal(signal.SIGHUP) is not before
    finally:
        logic.close()


def test_an_unopenable_audit_log_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    _, environ = unit_dir(
        tmp_path,
        {"public_pool": {"cidr": "203.0.113.0/26"}, "audit": {"path": str(blocker / "a.jsonl")}},
    )
    with pytest.raises(ConfigError, match="cannot open the NAT audit log"):
        nat_logic(load(NatUnitConfig, environ))


def run_module(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vnfs.nat.slowpath"],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **environ},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"public_pool": {"cidr": "203.0.113.0/26", "port_block_size": "big"}},
            "nat.public_pool.port_block_size",
        ),
        ({"public_pool": {"cidr": "203.0.113.0/30"}}, "4 addresses for 8 shards"),
        (
            {"public_pool": {"cidr": "203.0.113.0/26"}, "audit": {"path": "/dev/null/a.jsonl"}},
            "cannot open the NAT audit log /dev/null/a.jsonl",
        ),
    ],
)
def test_the_process_exits_2_with_one_line(
    tmp_path: Path, settings: dict[str, Any], expected: str
) -> None:
    _, environ = unit_dir(tmp_path, settings)
    result = run_module(environ)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: ")
    assert expected in lines[0]
