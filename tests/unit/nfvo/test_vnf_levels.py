"""Where a VNF of an NS starts so that its NS instantiation level's VNF scale levels hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from descriptors.nsd import VnfProfile
from descriptors.nsd_parse import parse_nsd
from descriptors.tosca import parse_vnfd
from descriptors.vnfd import Vnfd
from nfvo.nslcm.vnf_levels import VnfStart, vnf_start

REPO = Path(__file__).resolve().parents[3]
NAT = REPO / "descriptors" / "packages" / "nat"
EDGE_GATEWAY = REPO / "descriptors" / "nsds" / "edge-gateway"


@pytest.fixture(scope="module")
def nat() -> Vnfd:
    return parse_vnfd(NAT, "Definitions/nat_vnfd_top.yaml")


def _profile(nat: Vnfd, flavour_id: str = "default", level: str | None = "small") -> VnfProfile:
    sample = parse_nsd(EDGE_GATEWAY, "Definitions/edge_gateway_nsd.yaml")
    profile = sample.flavour("default").vnf_profile("nat")
    assert profile.vnfd_id == nat.vnfd_id
    return profile.model_copy(update={"flavour_id": flavour_id, "instantiation_level": level})


def test_no_asked_levels_keep_the_profile_level(nat: Vnfd) -> None:
    assert vnf_start(nat, _profile(nat), {}) == VnfStart("small")
    assert vnf_start(nat, _profile(nat, level=None), {}) == VnfStart(None)


def test_the_profile_level_is_used_when_it_fits(nat: Vnfd) -> None:
    assert vnf_start(nat, _profile(nat), {"fastpath": 0}) == VnfStart("small")


def test_another_level_of_the_flavour_that_fits(nat: Vnfd) -> None:
    # default flavour: small 0, medium 1, large 3.
    assert vnf_start(nat, _profile(nat), {"fastpath": 3}) == VnfStart("large")
    assert vnf_start(nat, _profile(nat), {"fastpath": 1}) == VnfStart("medium")


def test_no_level_fits_then_scale_after(nat: Vnfd) -> None:
    assert vnf_start(nat, _profile(nat), {"fastpath": 2}) == VnfStart("small", {"fastpath": 2})


def test_only_levels_of_the_profile_flavour_count(nat: Vnfd) -> None:
    # Flavour large has xlarge (fastpath 7); default has no level at 7.
    assert vnf_start(nat, _profile(nat), {"fastpath": 7}) == VnfStart("small", {"fastpath": 7})
    large = _profile(nat, flavour_id="large", level="large")
    assert vnf_start(nat, large, {"fastpath": 7}) == VnfStart("xlarge")


def test_unknown_profile_level_is_a_key_error(nat: Vnfd) -> None:
    with pytest.raises(KeyError):
        vnf_start(nat, _profile(nat, level="huge"), {"fastpath": 1})
