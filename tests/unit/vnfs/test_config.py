"""Loading a unit's environment and vnf-config.json into typed settings."""

from __future__ import annotations

import json
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from vnfs.sdk.config import (
    ConfigError,
    Seconds,
    UnitConfig,
    VnfParams,
    VnfProperties,
    load,
)


def write_config(directory: Path, **overrides: Any) -> None:
    document = {
        "vnfInstanceId": "vnf-1",
        "flavourId": "default",
        "vdu": "nat_fastpath",
        "additionalParams": {},
        "configurableProperties": {
            "is_autoscale_enabled": True,
            "additional_configurable_properties": {
                "is_writable_anytime": False,
                "public_pool": {"cidr": "203.0.113.0/26", "port_block_size": 512},
                "flow_idle_timeout": "300 s",
            },
        },
    }
    document.update(overrides)
    (directory / "vnf-config.json").write_text(json.dumps(document))


def environment(directory: Path, **extra: str) -> dict[str, str]:
    return {
        "VNF_INSTANCE_ID": "vnf-1",
        "VNF_UNIT": "fastpath",
        "VNF_VDU_ID": "nat_fastpath",
        "VNF_REPLICA_INDEX": "3",
        "VNF_CONFIG_DIR": str(directory),
        "VNF_CP_INSIDE_IFNAME": "inside",
        "VNF_CP_INSIDE_ADDRESS": "10.10.0.5/24",
        "VNF_CP_OUTSIDE_IFNAME": "outside",
        "VNF_CP_OUTSIDE_ADDRESS": "198.51.100.5/24",
        "VNF_CP_PUNT_IFNAME": "punt",
        "VNF_CP_PUNT_ADDRESS": "10.255.0.3/27",
        "VNF_CP_MGMT_IFNAME": "mgmt",
        "PATH": "/usr/bin",
        **extra,
    }


class Pool(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    cidr: str
    port_block_size: int


class NatProperties(VnfProperties):
    public_pool: Pool
    flow_idle_timeout: Seconds = 300


class NatParams(VnfParams):
    log_sessions: bool = False


class NatConfig(UnitConfig):
    properties: NatProperties
    params: NatParams


def test_the_generic_model_reads_everything(tmp_path: Path) -> None:
    write_config(tmp_path)
    config = load(UnitConfig, environment(tmp_path))
    assert (config.vnf_instance_id, config.unit, config.vdu_id) == (
        "vnf-1",
        "fastpath",
        "nat_fastpath",
    )
    assert config.replica_index == 3 and config.flavour_id == "default"
    assert config.cp("punt").address == IPv4Interface("10.255.0.3/27")
    assert config.cp("MGMT").ifname == "mgmt" and config.cp("mgmt").address is None
    assert [cp.name for cp in config.data_cps()] == ["inside", "outside"]
    assert config.configurable_properties["is_autoscale_enabled"] is True
    # Unknown properties stay readable on the generic model.
    assert config.properties.model_extra == {
        "public_pool": {"cidr": "203.0.113.0/26", "port_block_size": 512},
        "flow_idle_timeout": "300 s",
    }
    assert config.sdk.datapath == "bpf" and config.sdk.metrics_port == 9100


def test_a_vnf_types_its_own_properties_and_params(tmp_path: Path) -> None:
    write_config(tmp_path, additionalParams={"log_sessions": True})
    config = load(NatConfig, environment(tmp_path))
    assert config.properties.public_pool == Pool(cidr="203.0.113.0/26", port_block_size=512)
    assert config.properties.flow_idle_timeout == 300.0
    assert config.params.log_sessions is True


@pytest.mark.parametrize(
    ("text", "seconds"), [("300 s", 300), ("5 m", 300), ("2 h", 7200), ("250 ms", 0.25), (42, 42)]
)
def test_durations_take_tosca_units(tmp_path: Path, text: object, seconds: float) -> None:
    properties = {"public_pool": {"cidr": "x", "port_block_size": 1}, "flow_idle_timeout": text}
    write_config(
        tmp_path, configurableProperties={"additional_configurable_properties": properties}
    )
    assert load(NatConfig, environment(tmp_path)).properties.flow_idle_timeout == seconds


def test_sdk_settings_from_the_vnfd_environment_and_the_instantiate_request(tmp_path: Path) -> None:
    write_config(
        tmp_path, additionalParams={"sdk": {"slowpathAddress": "10.255.0.2", "metricsPort": 9200}}
    )
    env = environment(
        tmp_path,
        VNF_SDK_DATA_CPS="inside",
        VNF_SDK_METRICS_PORT="9300",
        VNF_SDK_PUSH_DELAY="200 us",
        VNF_SDK_VRFS="Inside=7",
    )
    config = load(UnitConfig, env)
    assert config.sdk.vrfs == {"inside": 7}
    assert config.sdk.slowpath_address == IPv4Address("10.255.0.2")
    assert config.sdk.metrics_port == 9200  # the instance's request wins over the VNFD
    assert config.sdk.push_delay == pytest.approx(200e-6)
    assert [cp.name for cp in config.data_cps()] == ["inside"]
    assert "sdk" not in (config.params.model_extra or {})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"env_drop": "VNF_INSTANCE_ID"}, "environment variable VNF_INSTANCE_ID is not set"),
        ({"env": {"VNF_REPLICA_INDEX": "-1"}}, "VNF_REPLICA_INDEX must be a non-negative integer"),
        ({"env": {"VNF_REPLICA_INDEX": "70000"}}, "replica_index: Input should be less than"),
        ({"env": {"VNF_INSTANCE_ID": "vnf-2"}}, "is for VNF instance 'vnf-1'"),
        ({"env": {"VNF_VDU_ID": "other"}}, "is for VDU 'nat_fastpath'"),
        ({"env": {"VNF_SDK_PUNT_PORTT": "1"}}, "unknown setting VNF_SDK_PUNT_PORTT"),
        ({"env": {"VNF_SDK_PUNT_PORT": "0"}}, "puntPort: Input should be greater than or equal"),
        (
            {"env": {"VNF_SDK_DATA_CPS": "inside,wan"}},
            "data connection point 'wan' is not attached",
        ),
        ({"env": {"VNF_CP_WAN_ADDRESS": "10.0.0.1/24"}}, "VNF_CP_WAN_IFNAME is not"),
        ({"env": {"VNF_CP_WAN_IFNAME": "x" * 16}}, "connection_points.wan.ifname"),
        ({"env": {"VNF_CP_WAN_IFNAME": "w", "VNF_CP_WAN_ADDRESS": "10.0.0.1"}}, "address"),
        ({"doc": {"additionalParams": {"sdk": {"pushBatch": 0}}}}, "pushBatch"),
        ({"env": {"VNF_SDK_VRFS": "inside"}}, "is not a list of <connection point>=<vrf>"),
        ({"env": {"VNF_SDK_VRFS": "inside=70000"}}, "vrfs.inside: Input should be less than"),
        ({"doc": {"additionalParams": {"sdk": {"vrfs": {"inside": -1}}}}}, "vrfs.inside"),
        ({"doc": {"additionalParams": []}}, "additionalParams must be an object"),
        ({"doc": {"flavourId": None}}, "flavourId is missing"),
        (
            {"doc": {"configurableProperties": {"additional_configurable_properties": {}}}},
            "additional_configurable_properties: public_pool: Field required",
        ),
    ],
)
def test_errors_are_one_clear_line(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    write_config(tmp_path, **change.get("doc", {}))
    env = environment(tmp_path, **change.get("env", {}))
    env.pop(change.get("env_drop", ""), None)
    with pytest.raises(ConfigError) as caught:
        load(NatConfig, env)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"vnf-config\.json does not exist"):
        load(UnitConfig, environment(tmp_path))
    (tmp_path / "vnf-config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load(UnitConfig, environment(tmp_path))
    (tmp_path / "vnf-config.json").write_text("[]")
    with pytest.raises(ConfigError, match="must hold a JSON object"):
        load(UnitConfig, environment(tmp_path))


def test_cp_lookup_names_what_is_attached(tmp_path: Path) -> None:
    write_config(tmp_path)
    config = load(UnitConfig, environment(tmp_path))
    with pytest.raises(ConfigError, match=r"no connection point 'wan' \(attached: inside, mgmt"):
        config.cp("wan")
    with pytest.raises(ConfigError, match="'mgmt' \\(mgmt\\) has no IPv4 address"):
        config.addressed_cp("mgmt")


def test_a_process_with_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    write_config(tmp_path, flavourId="")
    completed = subprocess.run(
        [sys.executable, "-c", "from vnfs.sdk.config import *; load_or_exit(UnitConfig)"],
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        f"configuration error: {tmp_path}/vnf-config.json: flavourId is missing"
    ]
