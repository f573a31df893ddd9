"""VIM types: their connection parameters, the credentials among them, and their adapters."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.local_vim import name_prefix
from vim_adapters.local.adapter import LocalVim
from vim_adapters.registry import (
    KUBERNETES,
    LOCAL,
    OPENSTACK,
    AdapterUnavailable,
    InvalidVimConnection,
    build_adapter,
    parse_connection,
    secret_fields,
)

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_secret_fields_are_the_credentials() -> None:
    assert secret_fields(LOCAL) == frozenset()
    assert secret_fields(OPENSTACK) == {"password", "applicationCredentialSecret"}
    assert secret_fields(KUBERNETES) == {"bearer_token", "client_key_data"}
    with pytest.raises(InvalidVimConnection, match="not supported"):
        secret_fields("ETSINFV.AZURE.V_1")


@pytest.mark.parametrize(
    ("vim_type", "interface", "access"),
    [
        (LOCAL, {}, {"stateDir": "/srv/vim"}),
        (
            OPENSTACK,
            {"endpoint": "https://ks.example/v3", "trustedCertificates": [PEM]},
            {"username": "u", "password": "p", "projectId": "0123"},
        ),
        (
            OPENSTACK,
            {"endpoint": "http://ks.example/v3"},
            {"applicationCredentialId": "a", "applicationCredentialSecret": "s"},
        ),
        (
            KUBERNETES,
            {"endpoint": "https://192.0.2.1:6443", "ssl_ca_cert": PEM},
            {"bearer_token": "t"},
        ),
        (
            KUBERNETES,
            {"endpoint": "https://k8s.example"},
            {"client_cert_data": PEM, "client_key_data": "k", "namespace": "nfv"},
        ),
    ],
)
def test_valid_connections(
    vim_type: str, interface: dict[str, Any], access: dict[str, Any]
) -> None:
    connection = parse_connection("v1", vim_type, interface, access)
    assert connection.vim_type == vim_type and connection.info.vim_type == vim_type


@pytest.mark.parametrize(
    ("vim_type", "interface", "access", "says"),
    [
        (LOCAL, {}, {}, "accessInfo.stateDir: Field required"),
        (LOCAL, {"endpoint": "x"}, {"stateDir": "/s"}, "interfaceInfo.endpoint: Extra inputs"),
        (LOCAL, {}, {"stateDir": "/s/../etc"}, "accessInfo.stateDir: must be an absolute"),
        (LOCAL, {}, {"stateDir": "/s", "prefix": "too-long-1"}, "accessInfo.prefix: must be 1-8"),
        (
            OPENSTACK,
            {},
            {"username": "u", "password": "p", "project": "x"},
            "interfaceInfo.endpoint",
        ),
        (
            OPENSTACK,
            {"endpoint": "https://ks/v3"},
            {"username": "u", "password": "p"},
            "a password login needs project or projectId",
        ),
        (
            OPENSTACK,
            {"endpoint": "https://ks/v3"},
            {"username": "u", "password": "p", "project": "x", "applicationCredentialId": "a"},
            "give either username and password, or applicationCredentialId",
        ),
        (
            OPENSTACK,
            {"endpoint": "https://ks/v3", "trustedCertificates": ["not pem"]},
            {"applicationCredentialId": "a", "applicationCredentialSecret": "s"},
            "interfaceInfo.trustedCertificates: must be a PEM certificate",
        ),
        (KUBERNETES, {"endpoint": "https://k"}, {}, "give either bearer_token"),
        (
            KUBERNETES,
            {"endpoint": "https://k"},
            {"client_cert_data": PEM},
            "client_cert_data and client_key_data go together",
        ),
    ],
)
def test_invalid_connections_name_the_attribute(
    vim_type: str, interface: dict[str, Any], access: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidVimConnection) as refused:
        parse_connection("v1", vim_type, interface, access)
    assert says in refused.value.detail
    assert refused.value.detail.startswith(f"{vim_type}: ")


def test_problems_of_both_parts_are_reported_together() -> None:
    with pytest.raises(InvalidVimConnection) as refused:
        parse_connection("v1", OPENSTACK, {"endpoint": "ftp://x"}, {"username": "u"})
    assert "interfaceInfo.endpoint" in refused.value.detail
    assert "accessInfo: username and password go together" in refused.value.detail


def test_local_adapter_from_its_registration(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "the local VIM needs root, as the whole suite does"
    prefix = name_prefix("f")
    adapter = build_adapter(
        parse_connection("lab", LOCAL, {}, {"stateDir": str(tmp_path / "s"), "prefix": prefix})
    )
    assert isinstance(adapter, LocalVim)
    assert adapter.prefix == prefix and adapter.state_dir == tmp_path / "s"
    assert adapter.list_owned() == [] and adapter.leaks() == []


@pytest.mark.parametrize(
    ("vim_type", "interface", "access"),
    [
        (KUBERNETES, {"endpoint": "https://192.0.2.1:6443"}, {"bearer_token": "t"}),
        (
            OPENSTACK,
            {"endpoint": "https://ks.example/v3"},
            {"username": "u", "password": "p", "project": "x"},
        ),
    ],
)
def test_types_without_an_adapter_yet(
    vim_type: str, interface: dict[str, Any], access: dict[str, Any]
) -> None:
    connection = parse_connection("dc-7", vim_type, interface, access)
    with pytest.raises(AdapterUnavailable, match=f"VIM dc-7 is of type {vim_type}") as refused:
        build_adapter(connection)
    assert not refused.value.retryable
