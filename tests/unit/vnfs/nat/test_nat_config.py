"""NatConfig: the VNFD's values as the planner writes them, overrides, and one-line errors."""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from descriptors.tosca import parse_vnfd
from descriptors.vnfd import Vnfd
from vnfm.planner import CONFIG_FILE, plan_instantiation, unit_name
from vnfs.nat.config import NatConfig, NatUnitConfig, from_vnf_config
from vnfs.sdk.config import ConfigError, load

PACKAGE = Path(__file__).resolve().parents[4] / "descriptors" / "packages" / "nat"
INSTANCE = "0b7e4a7e-5d0c-4c55-9d39-5a1f2f0c1e11"


@pytest.fixture(scope="module")
def vnfd() -> Vnfd:
    return parse_vnfd(PACKAGE, "Definitions/nat_vnfd_top.yaml")


def planned_config(vnfd: Vnfd, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The slow path's vnf-config.json exactly as the VNFM's planner writes it."""
    plan = plan_instantiation(
        vnfd,
        flavour_id="default",
        instantiation_level_id=None,
        vnf_instance_id=INSTANCE,
        additional_params=params or {},
    )
    (slowpath,) = [u for u in plan.units if u.name == unit_name(INSTANCE, "nat_slowpath")]
    document: dict[str, Any] = json.loads(slowpath.config_files[CONFIG_FILE])
    return document


def test_the_vnfds_values_parse(vnfd: Vnfd) -> None:
    config = from_vnf_config(planned_config(vnfd))
    pool = vnfd.configurable_properties["additional_configurable_properties"]["public_pool"]
    assert config.public_pool.cidr == (IPv4Network(pool["cidr"]),)
    assert config.public_pool.port_block_size == pool["port_block_size"] == 512
    assert config.public_pool.first_port == pool["first_port"] == 1024
    assert config.public_pool.last_port == 65535
    # flow_idle_timeout is the TOSCA scalar "300 s" and becomes the UDP timeout.
    assert (
        vnfd.configurable_properties["additional_configurable_properties"]["flow_idle_timeout"]
        == "300 s"
    )
    assert config.flow_idle_timeout == 300
    assert config.timeouts.udp == 300
    assert config.timeouts.tcp_established == 7440
    assert config.timeouts.tcp_transitory == 240
    assert config.timeouts.icmp == 60
    assert config.filtering == "address-dependent"
    assert config.hairpinning is True
    assert config.shards == 8  # the fast path VDU's max_number_of_instances


def test_additional_params_override_key_by_key(vnfd: Vnfd) -> None:
    params = {
        "public_pool": {"cidr": "198.51.100.0/28, 203.0.113.64/29", "port_block_size": 1024},
        "timeouts": {"udp": "10 m"},
        "filtering": "endpoint-independent",
        "shards": 4,
        "sdk": {"slowpathAddress": "10.255.0.2"},
        "owner": "ops team",  # unknown top-level keys belong to other units: ignored
    }
    config = from_vnf_config(planned_config(vnfd, params))
    assert config.public_pool.cidr == (
        IPv4Network("198.51.100.0/28"),
        IPv4Network("203.0.113.64/29"),
    )
    assert config.public_pool.port_block_size == 1024
    assert config.public_pool.first_port == 1024  # kept from the VNFD
    assert config.timeouts.udp == 600  # timeouts.udp wins over flow_idle_timeout
    assert config.filtering == "endpoint-independent"
    assert config.shards == 4


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("300 s", 300), ("5 m", 300), ("2 h", 7200), ("1 d", 86400), ("4000 ms", 4), (300, 300)],
)
def test_durations_accept_tosca_scalars(value: object, seconds: int) -> None:
    config = NatConfig.model_validate(
        {
            "public_pool": {"cidr": "203.0.113.0/29"},
            "shards": 1,
            "flow_idle_timeout": value,
            "rfc_minimum_timeouts": False,
        }
    )
    assert config.timeouts.udp == seconds


def test_flow_idle_timeout_is_the_udp_timeout_unless_udp_is_given() -> None:
    pool = {"cidr": "203.0.113.0/29"}
    assert (
        NatConfig.model_validate(
            {"public_pool": pool, "shards": 1, "flow_idle_timeout": "200 s"}
        ).timeouts
        == NatConfig.model_validate(
            {"public_pool": pool, "shards": 1, "timeouts": {"udp": 200}}
        ).timeouts
    )
    both = NatConfig.model_validate(
        {"public_pool": pool, "shards": 1, "flow_idle_timeout": 200, "timeouts": {"udp": 400}}
    )
    assert both.timeouts.udp == 400


def error_of(settings: dict[str, Any]) -> str:
    document = {"configurableProperties": {"additional_configurable_properties": settings}}
    with pytest.raises(ConfigError) as caught:
        from_vnf_config(document)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, "public_pool: Field required"),
        ({"public_pool": {"cidr": "203.0.113.1/24"}}, "has host bits set"),
        ({"public_pool": {"cidr": "2001:db8::/64"}}, "'2001:db8::/64' is not an IPv4 CIDR"),
        ({"public_pool": {"cidr": ""}}, "public_pool.cidr"),
        ({"public_pool": {"cidr": "203.0.113.0/24, 203.0.113.128/25"}}, "overlap"),
        ({"public_pool": {"cidr": "203.0.113.0/24", "first_port": 80}}, "first_port"),
        ({"public_pool": {"cidr": "203.0.113.0/24", "port_block_size": 16}}, "port_block_size"),
        (
            {"public_pool": {"cidr": "203.0.113.0/24", "first_port": 65100}},
            "ports 65100-65535 hold no block of 512 ports",
        ),
        ({"public_pool": {"cidr": "203.0.113.0/24", "size": 1}}, "public_pool.size"),
        ({"public_pool": {"cidr": "203.0.113.0/30"}}, "4 addresses for 8 shards"),
        (
            {"public_pool": {"cidr": "203.0.113.0/24"}, "flow_idle_timeout": "1.5 s"},
            "not a whole number of seconds",
        ),
        (
            {"public_pool": {"cidr": "203.0.113.0/24"}, "flow_idle_timeout": "5 parsecs"},
            "not a time",
        ),
        (
            {"public_pool": {"cidr": "203.0.113.0/24"}, "timeouts": {"udp": 30}},
            "timeouts.udp 30 s is below the RFC minimum of 120 s",
        ),
        (
            {"public_pool": {"cidr": "203.0.113.0/24"}, "timeouts": {"tcp_established": "1 h"}},
            "tcp_established 3600 s is below the RFC minimum of 7440 s",
        ),
        ({"public_pool": {"cidr": "203.0.113.0/24"}, "filtering": "symmetric"}, "filtering"),
        ({"public_pool": {"cidr": "203.0.113.0/24"}, "shards": 0}, "shards"),
        (
            {"public_pool": {"cidr": "203.0.113.0/24"}, "max_blocks_per_subscriber": 0},
            "max_blocks_per_subscriber",
        ),
        ({"public_pool": {"cidr": "203.0.113.0/24"}, "audit": {"pth": "x"}}, "audit.pth"),
    ],
)
def test_invalid_settings_fail_with_one_line(settings: dict[str, Any], expected: str) -> None:
    message = error_of(settings)
    assert message.startswith("NAT settings: ")
    assert expected in message


def test_rfc_minimums_can_be_waived_for_labs() -> None:
    config = NatConfig.model_validate(
        {
            "public_pool": {"cidr": "203.0.113.0/29"},
            "shards": 1,
            "rfc_minimum_timeouts": False,
            "timeouts": {"tcp_established": 5, "tcp_transitory": 2, "udp": 3, "icmp": 1},
        }
    )
    assert config.timeouts.tcp_established == 5


def test_pool_geometry() -> None:
    config = NatConfig.model_validate(
        {
            "public_pool": {
                "cidr": ["203.0.113.0/29", "198.51.100.16/30"],
                "first_port": 2000,
                "last_port": 2999,
                "port_block_size": 300,
            },
            "shards": 3,
        }
    )
    assert config.public_pool.addresses == 12
    assert config.public_pool.blocks_per_address == 3  # 1000 ports: 3 blocks, 100 unused


def unit_environment(config_dir: Path) -> dict[str, str]:
    return {
        "VNF_INSTANCE_ID": INSTANCE,
        "VNF_UNIT": "nat-slowpath",
        "VNF_REPLICA_INDEX": "0",
        "VNF_CONFIG_DIR": str(config_dir),
        "VNF_CP_PUNT_IFNAME": "punt",
        "VNF_CP_PUNT_ADDRESS": "10.255.0.2/27",
    }


def test_the_unit_config_carries_the_nat_settings(vnfd: Vnfd, tmp_path: Path) -> None:
    config_dir = tmp_path / "replica" / "config"
    config_dir.mkdir(parents=True)
    document = planned_config(vnfd, {"max_blocks_per_subscriber": 2})
    (config_dir / CONFIG_FILE).write_text(json.dumps(document))
    unit = load(NatUnitConfig, unit_environment(config_dir))
    assert unit.nat.public_pool.cidr == (IPv4Network("203.0.113.0/26"),)
    assert unit.nat.max_blocks_per_subscriber == 2
    assert unit.nat == from_vnf_config(document, config_dir.parent)
    # A relative audit path lands in the unit's directory, next to its logs.
    assert unit.nat.audit.path == tmp_path / "replica" / "logs" / "nat-mappings.jsonl"


def test_the_unit_config_names_a_bad_nat_field(vnfd: Vnfd, tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    document = planned_config(vnfd, {"public_pool": {"port_block_size": "big"}})
    (config_dir / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.raises(ConfigError) as caught:
        load(NatUnitConfig, unit_environment(config_dir))
    message = str(caught.value)
    assert "\n" not in message
    assert "nat.public_pool.port_block_size" in message


def test_an_absolute_audit_path_is_kept(vnfd: Vnfd) -> None:
    document = planned_config(vnfd, {"audit": {"path": "/var/log/nat/mappings.jsonl"}})
    config = from_vnf_config(document, Path("/srv/unit"))
    assert config.audit.path == Path("/var/log/nat/mappings.jsonl")
