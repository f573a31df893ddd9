"""Starting, reporting and closing the datapath: nothing may stay attached or loaded."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.fastpath.conftest import program_exists
from tests.integration.fastpath.topology import FP_INSIDE, Lab, run, wait_for
from vnfs.sdk.bpf import netns
from vnfs.sdk.bpf.driver import BpfDriver
from vnfs.sdk.driver import DriverError


def tc_filters(lab: Lab, device: str) -> list[dict[str, Any]]:
    listing = lab.exec(lab.fastpath, "tc", "-j", "filter", "show", "dev", device, "ingress")
    return json.loads(listing.stdout or "[]")  # type: ignore[no-any-return]


def qdiscs(lab: Lab, device: str) -> list[str]:
    listing = lab.exec(lab.fastpath, "tc", "-j", "qdisc", "show", "dev", device)
    return [qdisc["kind"] for qdisc in json.loads(listing.stdout or "[]")]


def map_ids(program_id: int) -> list[int]:
    shown = json.loads(run("bpftool", "-j", "prog", "show", "id", str(program_id)).stdout)
    return list(shown["map_ids"])


def map_exists(map_id: int) -> bool:
    return run("bpftool", "map", "show", "id", str(map_id), check=False).returncode == 0


def test_start_attaches_and_close_detaches_everything(
    lab: Lab, make_driver: Callable[..., BpfDriver]
):
    driver = make_driver()
    with netns.entered_named(lab.fastpath):
        driver.start(lab.data_interfaces(), lab.punt_target())
    program_id = driver.program_id
    maps = map_ids(program_id)
    assert len(maps) == 4
    for device in ("in0", "out0", "punt0"):
        attached = [f for f in tc_filters(lab, device) if f.get("options", {}).get("bpf_name")]
        assert len(attached) == 1 and "clsact" in qdiscs(lab, device)
        assert attached[0]["options"]["prog"]["id"] == program_id

    driver.close()
    for device in ("in0", "out0", "punt0"):
        assert tc_filters(lab, device) == []
        assert "clsact" not in qdiscs(lab, device)
    assert wait_for(lambda: not program_exists(program_id))
    assert wait_for(lambda: not any(map_exists(map_id) for map_id in maps))
    driver.close()  # idempotent
    assert driver.health().healthy is False
    with pytest.raises(DriverError, match="not started"):
        driver.install([])


def test_health_and_interfaces(lab: Lab, driver: BpfDriver):
    assert wait_for(lambda: driver.health().healthy)
    health = driver.health()
    assert health.interfaces == {"in0": True, "out0": True, "punt0": True}
    assert (health.table_entries, health.table_capacity, health.detail) == (0, 4096, "")
    interfaces = {interface.name: interface for interface in driver.interfaces()}
    assert {name: i.role for name, i in interfaces.items()} == {
        "in0": "inside",
        "out0": "outside",
        "punt0": "punt",
    }
    assert interfaces["in0"].address == f"{FP_INSIDE}/24"
    assert interfaces["in0"].ifindex == lab.link(lab.fastpath, "in0").ifindex
    assert interfaces["in0"].mac == lab.link(lab.fastpath, "in0").mac

    # Someone removes our filter: health says so.
    lab.exec(lab.fastpath, "tc", "filter", "del", "dev", "out0", "ingress")
    health = driver.health()
    assert not health.healthy and health.interfaces["out0"] is False
    assert "out0: program not attached" in health.detail
    # start() again repairs it.
    with netns.entered_named(lab.fastpath):
        driver.start(lab.data_interfaces(), lab.punt_target())
    assert driver.health().healthy
    # Without IPv4 forwarding in the namespace bpf_fib_lookup routes nothing.
    lab.exec(lab.fastpath, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    health = driver.health()
    assert not health.healthy and "IPv4 forwarding is off" in health.detail


def test_restarting_with_fewer_interfaces_detaches_the_others(lab: Lab, driver: BpfDriver):
    driver.start(lab.data_interfaces()[:1], None)  # called from outside the namespace
    assert [f for f in tc_filters(lab, "out0") if "options" in f] == []
    assert [f for f in tc_filters(lab, "punt0") if "options" in f] == []
    assert [i.name for i in driver.interfaces()] == ["in0"]
    assert "no punt target" in driver.health().detail


def test_missing_object_says_how_to_build_it(tmp_path):
    with pytest.raises(DriverError, match="run make bpf"):
        BpfDriver(object_path=tmp_path / "flowtable.o")
