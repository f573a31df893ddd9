"""The VIM registry (/vims/v1) over HTTP, on SQLite and PostgreSQL: every endpoint and error."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.api.conftest import Nfvo, NfvoFactory
from tests.support.local_vim import local_vim, name_prefix
from vim_adapters.interface import NetworkSpec, Ownership

VIMS = "/vims/v1/vims"
VERSION = "1.0.0"
LOCAL = "NFVMANO.LOCAL.V_1"
OPENSTACK = "ETSINFV.OPENSTACK_KEYSTONE.V_3"
KUBERNETES = "ETSINFV.KUBERNETES.V_1"
PASSWORD = "pa55-0f-the-0penstack-admin"
MERGE = {"Content-Type": "application/merge-patch+json"}


def vims(nfvo: Nfvo, client_id: str | None = "vims") -> httpx.Client:
    return nfvo.client(client_id, version=VERSION)


def openstack(name: str = "dc-1", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "vimType": OPENSTACK,
        "interfaceInfo": {"endpoint": "https://keystone.example:5000/v3"},
        "accessInfo": {
            "username": "admin",
            "password": PASSWORD,
            "project": "nfv",
            "projectDomain": "Default",
            "userDomain": "Default",
            "region": "RegionOne",
        },
        **extra,
    }


def local(name: str, state_dir: Path, prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "vimType": LOCAL,
        "accessInfo": {"stateDir": str(state_dir), "prefix": prefix},
        **extra,
    }


def raw_rows(nfvo: Nfvo, table: str) -> str:
    """Every stored value of a table, as one string (what a database dump would show)."""
    with nfvo.app.state.session_factory() as session:
        rows = session.execute(text(f"SELECT * FROM {table}")).all()
    return repr([tuple(row) for row in rows])


def detail(resp: httpx.Response) -> str:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    body = resp.json()
    assert body["status"] == resp.status_code
    return str(body["detail"])


def test_register_read_and_list(nfvo_factory: NfvoFactory, tmp_path: Path) -> None:
    nfvo = nfvo_factory(page_size=2)
    http = vims(nfvo)
    resp = http.post(VIMS, json=openstack(extra={"zone": "paris", "labels": {"tier": "core"}}))
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert resp.headers["Location"] == created["_links"]["self"]["href"]
    assert resp.headers["Version"] == VERSION and resp.headers["ETag"]
    assert created["vimType"] == OPENSTACK and created["isDefault"] is False
    assert created["accessInfo"] == {
        "password": "<redacted>",
        "project": "nfv",
        "projectDomain": "Default",
        "region": "RegionOne",
        "userDomain": "Default",
        "username": "admin",
    }
    assert created["extra"] == {"zone": "paris", "labels": {"tier": "core"}}
    # The credential is in no column in clear; the rest of accessInfo is.
    stored = raw_rows(nfvo, "vims")
    assert PASSWORD not in stored and "RegionOne" in stored
    # ... but the service can still open it for the adapter.
    registry = nfvo.app.state.vims.registry
    with registry.sessions() as session:
        row = registry.get(session, created["id"])
    assert registry.access_info(row)["password"] == PASSWORD

    one = http.get(created["_links"]["self"]["href"])
    assert one.status_code == 200 and one.json() == created
    assert one.headers["ETag"] == resp.headers["ETag"]
    assert http.get(f"{VIMS}/no-such-vim").status_code == 404

    http.post(VIMS, json=openstack("dc-2", extra={"zone": "lyon"}))
    # The default VIM is the settings' local VIM, registered at start-up.
    listed = http.get(VIMS)
    page = listed.json()
    assert [v["name"] for v in page] == ["local", "dc-1"]
    assert page[0]["id"] == "local" and page[0]["isDefault"] is True
    assert "accessInfo" not in page[1] and "interfaceInfo" not in page[1]
    following = http.get(listed.links["next"]["url"])
    assert [v["name"] for v in following.json()] == ["dc-2"]
    assert "next" not in following.links
    full = http.get(VIMS, params={"all_fields": "", "filter": "(eq,extra/zone,paris)"}).json()
    assert [(v["name"], v["accessInfo"]["password"]) for v in full] == [("dc-1", "<redacted>")]
    by_type = http.get(VIMS, params={"filter": f"(eq,vimType,{LOCAL})"}).json()
    assert [v["id"] for v in by_type] == ["local"]
    labelled = http.get(VIMS, params={"filter": "(eq,extra/labels/tier,core)"}).json()
    assert [v["name"] for v in labelled] == ["dc-1"]
    bad = http.get(VIMS, params={"filter": "(eq,colour,red)"})
    assert bad.status_code == 400 and "colour" in detail(bad)

    default = http.get(f"{VIMS}/local").json()
    assert default["accessInfo"] == {
        "prefix": "nfv",
        "stateDir": str((nfvo.settings.data_dir / "local-vim").resolve()),
    }


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"vimType": LOCAL}, 400, "name"),
        ({**openstack(), "colour": "red"}, 400, "colour"),
        ({**openstack(), "vimType": "ETSINFV.AZURE.V_1"}, 422, "not supported"),
        (
            {**openstack(), "accessInfo": {"username": "admin", "project": "nfv"}},
            422,
            "username and password go together",
        ),
        (
            {**openstack(), "interfaceInfo": {"endpoint": "keystone:5000"}},
            422,
            "interfaceInfo.endpoint",
        ),
        ({"name": "x", "vimType": LOCAL, "accessInfo": {"prefix": "lab"}}, 422, "stateDir"),
        (
            {"name": "x", "vimType": LOCAL, "accessInfo": {"stateDir": "relative/dir"}},
            422,
            "accessInfo.stateDir: must be an absolute path",
        ),
        (
            {**openstack(), "accessInfo": {**openstack()["accessInfo"], "password": "<redacted>"}},
            422,
            "accessInfo.password: give the credential itself",
        ),
        (
            {
                "name": "k8s",
                "vimType": KUBERNETES,
                "interfaceInfo": {"endpoint": "http://10.0.0.1:6443"},
                "accessInfo": {"bearer_token": "t"},
            },
            422,
            "interfaceInfo.endpoint: must be an https URL",
        ),
        ({**openstack(), "extra": {"capacity": {"vcpu": -1}}}, 400, "vcpu"),
    ],
)
def test_registration_refused(nfvo: Nfvo, body: dict[str, Any], status: int, says: str) -> None:
    resp = vims(nfvo).post(VIMS, json=body)
    assert resp.status_code == status, resp.text
    assert says in detail(resp)


def test_conflicts_auth_and_versions(nfvo: Nfvo, tmp_path: Path) -> None:
    http = vims(nfvo)
    assert http.post(VIMS, json=openstack()).status_code == 201
    dup = http.post(VIMS, json=openstack())
    assert dup.status_code == 409 and "dc-1" in detail(dup)
    default_dir = nfvo.settings.data_dir / "local-vim"
    same_dir = http.post(VIMS, json=local("lab-b", default_dir.resolve(), "labb"))
    assert same_dir.status_code == 409 and "accessInfo.stateDir" in detail(same_dir)
    same_prefix = http.post(VIMS, json=local("lab-b", tmp_path / "b", "nfv"))
    assert same_prefix.status_code == 409 and "accessInfo.prefix" in detail(same_prefix)

    anonymous = vims(nfvo, None).get(VIMS)
    assert anonymous.status_code == 401 and "Bearer" in anonymous.headers["WWW-Authenticate"]
    reader = vims(nfvo, "vims-reader")
    assert reader.get(VIMS).status_code == 200
    refused = reader.post(VIMS, json=openstack("dc-9"))
    assert refused.status_code == 403 and "vims:v1:all" in detail(refused)
    assert vims(nfvo, "lcm").get(VIMS).status_code == 403

    versions = httpx.get(f"{nfvo.url}/vims/v1/api_versions")
    assert versions.status_code == 200
    assert versions.json() == {"uriPrefix": "/vims/v1", "apiVersions": [{"version": VERSION}]}
    assert httpx.get(f"{nfvo.url}/vims/api_versions").status_code == 200
    unsupported = nfvo.client("vims", version="9.0.0").get(VIMS)
    assert unsupported.status_code == 406 and unsupported.headers["Version"] == VERSION


def test_modify(nfvo: Nfvo) -> None:
    http = vims(nfvo)
    created = http.post(VIMS, json=openstack(extra={"labels": {"tier": "core"}}))
    vim_id, etag = created.json()["id"], created.headers["ETag"]
    href = f"{VIMS}/{vim_id}"

    resp = http.patch(
        href,
        json={
            "name": "dc-paris",
            "extra": {"zone": "paris", "labels": {"site": "p1"}},
            "accessInfo": {"password": "n3w-pa55", "region": None},
        },
        headers={**MERGE, "If-Match": etag},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "name": "dc-paris",
        "extra": {"zone": "paris", "labels": {"site": "p1"}},
        "accessInfo": {"password": "<redacted>", "region": None},
    }
    assert resp.headers["ETag"] != etag
    after = http.get(href).json()
    assert after["name"] == "dc-paris"
    assert after["extra"] == {"zone": "paris", "labels": {"tier": "core", "site": "p1"}}
    assert "region" not in after["accessInfo"]
    assert after["accessInfo"]["password"] == "<redacted>"
    stored = raw_rows(nfvo, "vims")
    assert "n3w-pa55" not in stored and PASSWORD not in stored
    registry = nfvo.app.state.vims.registry
    with registry.sessions() as session:
        assert registry.access_info(registry.get(session, vim_id))["password"] == "n3w-pa55"

    stale = http.patch(href, json={"name": "x"}, headers={**MERGE, "If-Match": etag})
    assert stale.status_code == 412 and "ETag" in detail(stale)
    plain_json = http.patch(href, json={"description": "Paris DC"})
    assert plain_json.status_code == 200
    assert http.get(href).json()["description"] == "Paris DC"
    wrong_media = http.patch(href, content=b"{}", headers={"Content-Type": "text/plain"})
    assert wrong_media.status_code == 415
    for body, status, says in (
        ({"vimType": LOCAL}, 422, "vimType cannot be changed"),
        ({"name": None}, 422, "name"),
        ({"accessInfo": {"password": None}}, 422, "username and password go together"),
        ({"accessInfo": {"password": "<redacted>"}}, 422, "accessInfo.password"),
        ({"interfaceInfo": {"endpoint": "ftp://x"}}, 422, "interfaceInfo.endpoint"),
        ({"extra": {"capacity": {"memoryMib": 0}}}, 422, "extra.capacity.memoryMib"),
        ({"extra": {"colour": "red"}}, 422, "extra.colour"),
        ({"name": "local"}, 409, "local"),
    ):
        refused = http.patch(href, json=body, headers=MERGE)
        assert refused.status_code == status, (body, refused.text)
        assert says in detail(refused), body
    assert http.patch(f"{VIMS}/nope", json={"name": "x"}, headers=MERGE).status_code == 404

    # The default VIM's access comes from the settings; the rest of it is the user's.
    moved = http.patch(f"{VIMS}/local", json={"accessInfo": {"prefix": "x"}}, headers=MERGE)
    assert moved.status_code == 409 and "settings" in detail(moved)
    zoned = http.patch(f"{VIMS}/local", json={"extra": {"zone": "lab"}}, headers=MERGE)
    assert zoned.status_code == 200
    assert http.get(f"{VIMS}/local").json()["extra"]["zone"] == "lab"


def test_delete(nfvo: Nfvo, tmp_path: Path) -> None:
    http = vims(nfvo)
    k8s = http.post(
        VIMS,
        json={
            "name": "k8s",
            "vimType": KUBERNETES,
            "interfaceInfo": {"endpoint": "https://192.0.2.10:6443"},
            "accessInfo": {"bearer_token": "tok3n", "namespace": "nfv"},
        },
    ).json()
    assert k8s["accessInfo"] == {"bearer_token": "<redacted>", "namespace": "nfv"}
    assert "tok3n" not in raw_rows(nfvo, "vims")
    # No adapter exists for it yet, so nothing can be on it: it goes.
    assert http.delete(f"{VIMS}/{k8s['id']}").status_code == 204
    assert http.delete(f"{VIMS}/{k8s['id']}").status_code == 404
    assert http.get(f"{VIMS}/{k8s['id']}").status_code == 404

    default = http.delete(f"{VIMS}/local")
    assert default.status_code == 409 and "default VIM" in detail(default)

    prefix = name_prefix("r")
    with local_vim(tmp_path / "lab-b", prefix=prefix) as lab_b:
        registered = http.post(VIMS, json=local("lab-b", tmp_path / "lab-b", prefix)).json()
        lab_b.ensure_network(
            NetworkSpec(name="busy", cidr="10.231.250.0/24"), Ownership(vnf_instance_id="inst-7")
        )
        busy = http.delete(f"{VIMS}/{registered['id']}")
        assert busy.status_code == 409 and "inst-7" in detail(busy)
        lab_b.delete_network("busy")
        assert http.delete(f"{VIMS}/{registered['id']}").status_code == 204
        assert vims(nfvo, "vims-reader").delete(f"{VIMS}/local").status_code == 403


# A refused start-up ends uvicorn's thread with an exception, as it should.
START_REFUSED = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


@START_REFUSED
def test_key_file_made_once_private_and_required_private(nfvo_factory: NfvoFactory) -> None:
    first = nfvo_factory()
    key_file = first.settings.data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    created = vims(first).post(VIMS, json=openstack()).json()
    key = key_file.read_bytes()

    # A restart on the same data directory and database opens what the first one sealed.
    second = nfvo_factory()
    assert key_file.read_bytes() == key
    registry = second.app.state.vims.registry
    with registry.sessions() as session:
        assert registry.access_info(registry.get(session, created["id"]))["password"] == PASSWORD

    key_file.chmod(0o644)
    with pytest.raises(RuntimeError, match="start-up"):
        nfvo_factory()
    key_file.chmod(0o600)


@START_REFUSED
def test_configured_key_and_a_wrong_one(nfvo_factory: NfvoFactory, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    nfvo = nfvo_factory(secret_key=key)
    assert not (nfvo.settings.data_dir / "secret.key").exists()
    created = vims(nfvo).post(VIMS, json=openstack()).json()
    # Another key cannot open what this one sealed: the VIM is unusable, not silently empty.
    other = nfvo_factory(secret_key=Fernet.generate_key().decode())
    directory = other.app.state.vims
    with pytest.raises(Exception, match="sealed with another key"):
        directory.registry.connection(directory.registry.find(created["id"]))
    # Rotation: the new key first, the old one still opens the stored secrets.
    rotated = nfvo_factory(secret_key=f"{Fernet.generate_key().decode()},{key}")
    registry = rotated.app.state.vims.registry
    assert registry.access_info(registry.find(created["id"]))["password"] == PASSWORD
    with pytest.raises(RuntimeError, match="start-up"):
        nfvo_factory(secret_key="not-a-fernet-key")
