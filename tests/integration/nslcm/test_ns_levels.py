"""NS instantiation levels with real LCM workers on a local VIM: an NS instantiated at a
level starts its VNFs at the VNF scale levels that level asks for, and stands at the
matching NS scale level, so NS scaling goes on from there.

- The sample edge-gateway NSD's level ``large`` puts the NAT's fastpath aspect at 3, which
  the NAT's own VNF instantiation level ``large`` gives: the VNF is instantiated there
  directly (one VNF operation).
- A variant asks for fastpath 2 at ``large``, which no NAT instantiation level gives: the
  VNF starts at its profile's level and is scaled to level 2 (a second VNF operation).

The NAT package is the runnable variant (its VDUs are plain HTTP servers): no traffic.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from descriptors.nsd_build import build_nsd_archive
from tests.support.celery_worker import LcmLab
from tests.support.local_vim import name_prefix
from tests.support.ns_lab import (
    EDGE_GATEWAY,
    NsApi,
    edge_gateway_variant,
    onboard_nsd,
    single_nat_lab,
)

AT_LARGE = {"nsFlavourId": "default", "nsInstantiationLevelId": "large"}


def fastpath_two_at_large(tmp: Path) -> Path:
    """The edge-gateway NSD whose level ``large`` asks for NAT fastpath level 2."""
    levels = "          small: 0\n          large: {}\n"
    return edge_gateway_variant(
        tmp, "edge-gateway-l2", levels.format(3), levels.format(2), nsd_id=str(uuid.uuid4())
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LcmLab]:
    with single_nat_lab(tmp_path_factory.mktemp("nslevels"), name_prefix("hl")) as made:
        yield made


@pytest.fixture(scope="module")
def sample(lab: LcmLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsApi]:
    archive = build_nsd_archive(EDGE_GATEWAY, tmp_path_factory.mktemp("nsd") / "eg.zip")
    made = NsApi(lab, onboard_nsd(lab, archive))
    yield made
    made.close()


@pytest.fixture(scope="module")
def variant(lab: LcmLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsApi]:
    made = NsApi(lab, onboard_nsd(lab, fastpath_two_at_large(tmp_path_factory.mktemp("nsd"))))
    yield made
    made.close()


def _fastpath_units(vnf: dict[str, Any]) -> int:
    return sum(
        1 for c in vnf["instantiatedVnfInfo"]["vnfcResourceInfo"] if c["vduId"] == "nat_fastpath"
    )


def _fastpath_level(vnf: dict[str, Any]) -> int:
    status = vnf["instantiatedVnfInfo"]["scaleStatus"]
    return int(next(s["scaleLevel"] for s in status if s["aspectId"] == "fastpath"))


def _vnf_operations(lab: LcmLab, vnf_id: str) -> list[str]:
    resp = lab.http.get(
        "/vnflcm/v2/vnf_lcm_op_occs", params={"filter": f"(eq,vnfInstanceId,{vnf_id})"}
    )
    assert resp.status_code == 200, resp.text
    return sorted(str(op["operation"]) for op in resp.json())


def _instantiated_at_large(api: NsApi, name: str) -> tuple[str, dict[str, Any]]:
    ns_id = api.create(name)
    done = api.wait(api.task(ns_id, "instantiate", AT_LARGE), "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done.get("error")
    ns = api.ns(ns_id)
    assert ns["nsInstantiationLevelId"] == "large"
    return ns_id, ns


def _terminate(lab: LcmLab, api: NsApi, ns_id: str) -> None:
    term = api.task(ns_id, "terminate", {})
    assert api.wait(term, "COMPLETED", "FAILED_TEMP")["operationState"] == "COMPLETED"
    assert list(lab.vim.list_owned(ns_id)) == []
    assert lab.vim.leaks() == []


def test_a_level_a_vnf_level_gives_is_instantiated_directly(lab: LcmLab, sample: NsApi) -> None:
    ns_id, ns = _instantiated_at_large(sample, "hl-direct")
    (vnf,) = ns["vnfInstance"]
    assert (_fastpath_level(vnf), _fastpath_units(vnf)) == (3, 4)
    assert _vnf_operations(lab, str(vnf["id"])) == ["INSTANTIATE"]
    # nat_capacity level 3 deploys what level large deploys: the NS stands there.
    assert ns["nsScaleStatus"] == [{"nsScalingAspectId": "nat_capacity", "nsScaleLevelId": "3"}]

    scale_in = {
        "scaleType": "SCALE_NS",
        "scaleNsData": {
            "scaleNsByStepsData": {"scalingDirection": "SCALE_IN", "aspectId": "nat_capacity"}
        },
    }
    done = sample.wait(sample.task(ns_id, "scale", scale_in), "COMPLETED", "FAILED_TEMP")
    assert done["operationState"] == "COMPLETED", done.get("error")
    ns = sample.ns(ns_id)
    assert ns["nsScaleStatus"] == [{"nsScalingAspectId": "nat_capacity", "nsScaleLevelId": "2"}]
    (vnf,) = ns["vnfInstance"]
    assert (_fastpath_level(vnf), _fastpath_units(vnf)) == (2, 3)
    _terminate(lab, sample, ns_id)


def test_a_level_no_vnf_level_gives_is_reached_by_scaling(lab: LcmLab, variant: NsApi) -> None:
    ns_id, ns = _instantiated_at_large(variant, "hl-scaled")
    (vnf,) = ns["vnfInstance"]
    assert (_fastpath_level(vnf), _fastpath_units(vnf)) == (2, 3)
    assert _vnf_operations(lab, str(vnf["id"])) == ["INSTANTIATE", "SCALE_TO_LEVEL"]
    assert ns["nsScaleStatus"] == [{"nsScalingAspectId": "nat_capacity", "nsScaleLevelId": "2"}]
    _terminate(lab, variant, ns_id)
