"""Every link a VnfInstance or VnfLcmOpOcc advertises resolves to a route the NFVO serves.

The routes are those of the real app (`nfvo.app.create_app`, assembled but not started), so
a link to a task nobody implemented (e.g. changeCurrentVnfPkg) or a route that is not registered
fails here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from nfvo.app import create_app
from nfvo.settings import Settings
from vnfm.models import LcmOpOccRow, VnfInstanceRow
from vnfm.opocc_states import OpState
from vnfm.opocc_views import op_occ_view
from vnfm.schemas import InstantiationState, LcmOperationType
from vnfm.views import instance_view

BASE = "http://nfvo.example:8080"
# SOL003: "self" and "vnfInstance" are read, "grant" is the Grant resource, the rest are tasks.
READ_LINKS = {"self", "vnfInstance", "grant", "indicators"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("links"), auth_enabled=False))


def _resolves(app: FastAPI, href: str, method: str) -> bool:
    """Whether a route of the app answers `method` on the path of `href`."""
    url = urlsplit(href)
    assert f"{url.scheme}://{url.netloc}" == BASE, href
    scope = {"type": "http", "path": url.path, "method": method, "root_path": ""}
    return any(route.matches(scope)[0] == Match.FULL for route in app.routes)


def _unresolved(app: FastAPI, links: dict[str, dict[str, str]]) -> list[str]:
    return [
        f"{name} -> {link['href']}"
        for name, link in links.items()
        if not _resolves(app, link["href"], "GET" if name in READ_LINKS else "POST")
    ]


def _instance(state: InstantiationState) -> VnfInstanceRow:
    return VnfInstanceRow(
        id="5d1c3f9e-8a2b-4c7d-9e0f-1a2b3c4d5e6f",
        vnfd_id="vnfd-1",
        vnf_pkg_id="pkg-1",
        vnf_provider="lab",
        vnf_product_name="NAT",
        vnf_software_version="1.0",
        vnfd_version="1.0",
        instantiation_state=state.value,
        instantiated_info={} if state == InstantiationState.INSTANTIATED else None,
        vim_connection_info={},
        vnf_configurable_properties={},
        metadata_={},
        extensions={},
    )


def test_the_check_finds_a_task_without_a_route(app: FastAPI) -> None:
    href = f"{BASE}/vnflcm/v2/vnf_instances/x"
    assert _unresolved(app, {"self": {"href": href}}) == []
    assert _unresolved(app, {"changeCurrentVnfPkg": {"href": f"{href}/change_vnfpkg"}}) == [
        f"changeCurrentVnfPkg -> {href}/change_vnfpkg"
    ]


@pytest.mark.parametrize("state", list(InstantiationState))
def test_instance_links_resolve(app: FastAPI, state: InstantiationState) -> None:
    links = instance_view(_instance(state), BASE)["_links"]
    assert "self" in links
    assert _unresolved(app, links) == []
    if state == InstantiationState.NOT_INSTANTIATED:
        assert set(links) == {"self", "instantiate"}
    else:
        assert {"terminate", "scale", "heal", "operate", "changeExtConn", "changeFlavour"} <= set(
            links
        )


@pytest.mark.parametrize("operation", list(LcmOperationType))
def test_op_occ_links_resolve(app: FastAPI, operation: LcmOperationType) -> None:
    now = datetime.now(UTC)
    for state in OpState:
        row = LcmOpOccRow(
            id="0f9e8d7c-6b5a-4948-8372-615049382716",
            vnf_instance_id="5d1c3f9e-8a2b-4c7d-9e0f-1a2b3c4d5e6f",
            operation=operation.value,
            operation_state=state.value,
            state_entered_time=now,
            start_time=now,
            is_automatic_invocation=False,
            is_cancel_pending=False,
            grant_id="a1b2c3d4-0000-4000-8000-000000000001",
        )
        links = op_occ_view(row, BASE)["_links"]
        assert _unresolved(app, links) == [], (operation, state)
