"""nfvctl vim against a running NFVO: register, list, show, update, delete; one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nfvo.cli.main import app
from tests.api.conftest import Nfvo

runner = CliRunner()
PASSWORD = "cl1-pa55"


@pytest.fixture
def cli_env(nfvo: Nfvo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Nfvo:
    monkeypatch.setenv("NFVCTL_CONFIG", str(tmp_path / "nfvctl.json"))
    monkeypatch.setenv("NFVCTL_URL", nfvo.url)
    monkeypatch.setenv("NFVCTL_CLIENT_ID", "vims")
    monkeypatch.setenv("NFVCTL_CLIENT_SECRET", nfvo.secrets["vims"])
    return nfvo


def nfvctl(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def one_line_error(code: int, out: str, *says: str) -> None:
    assert code == 1 and out.startswith("error:") and out.count("\n") == 1, out
    for text in says:
        assert text in out, out


def test_register_list_show_update_delete(cli_env: Nfvo, tmp_path: Path) -> None:
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"username": "admin", "password": PASSWORD}))
    code, out = nfvctl(
        "vim", "register", "dc-1", "--type", "openstack",
        "--interface", "endpoint=https://keystone.example:5000/v3",
        "--interface", "skipCertificateVerification=true",
        "--access-file", str(creds), "--access", "project=nfv",
        "--zone", "paris", "--label", "tier=core", "--vcpu", "32",
    )  # fmt: skip
    assert code == 0, out
    match = re.match(r"(\S+) registered: dc-1 \(ETSINFV.OPENSTACK_KEYSTONE.V_3\)", out)
    assert match, out
    vim_id = match.group(1)

    code, out = nfvctl("vim", "show", vim_id)
    shown = json.loads(out)
    assert shown["accessInfo"]["password"] == "<redacted>" and PASSWORD not in out
    assert shown["interfaceInfo"]["skipCertificateVerification"] is True
    assert shown["extra"] == {"zone": "paris", "labels": {"tier": "core"}, "capacity": {"vcpu": 32}}

    code, out = nfvctl("vim", "list")
    assert code == 0 and "dc-1" in out and "paris" in out and "tier=core" in out, out
    code, out = nfvctl("vim", "list", "--json", "--filter", "(eq,extra/zone,paris)")
    assert [v["id"] for v in json.loads(out)] == [vim_id]

    code, out = nfvctl(
        "vim", "update", vim_id, "--name", "dc-paris", "--zone", "", "--label", "tier=",
        "--label", "site=p1", "--access", "password=n3w",
    )  # fmt: skip
    assert code == 0 and f"{vim_id} updated" in out, out
    shown = json.loads(nfvctl("vim", "show", vim_id)[1])
    assert shown["name"] == "dc-paris"
    assert shown["extra"] == {"labels": {"site": "p1"}, "capacity": {"vcpu": 32}}

    code, out = nfvctl("vim", "delete", vim_id)
    assert code == 0 and f"{vim_id} deleted" in out
    one_line_error(*nfvctl("vim", "show", vim_id), "404")


def test_errors_are_one_line(cli_env: Nfvo, tmp_path: Path) -> None:
    one_line_error(*nfvctl("vim", "register", "x", "--type", "local"), "422", "stateDir")
    one_line_error(
        *nfvctl("vim", "register", "x", "--type", "local", "--access", "stateDir"),
        "--access 'stateDir' is not KEY=VALUE",
    )
    one_line_error(*nfvctl("vim", "delete", "local"), "409", "default VIM")
    one_line_error(*nfvctl("vim", "update", "local"), "nothing to change")
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    one_line_error(
        *nfvctl("vim", "register", "x", "--type", "local", "--access-file", str(bad)),
        "must hold a JSON object",
    )
    one_line_error(
        *nfvctl("vim", "register", "x", "--type", "local", "--access-file", str(tmp_path / "no")),
        "No such file",
    )
