"""nfvctl nsd and nfvctl ns against a running NFVO: NSDs onboarded, listed, shown, disabled,
enabled and deleted; NS instances created, listed, shown and deleted; one-line errors. (NS
operations themselves run on workers: tests/integration/nslcm and `make demo` drive them.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nfvo.cli.main import app
from tests.api.conftest import Nfvo

runner = CliRunner()


@pytest.fixture
def cli_env(
    nfvo: Nfvo, nat_package: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Nfvo:
    monkeypatch.setenv("NFVCTL_CONFIG", str(tmp_path / "nfvctl.json"))
    monkeypatch.setenv("NFVCTL_URL", nfvo.url)
    monkeypatch.setenv("NFVCTL_CLIENT_ID", "ns-operator")
    monkeypatch.setenv("NFVCTL_CLIENT_SECRET", nfvo.secrets["ns-operator"])
    return nfvo


def nfvctl(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def one_line_error(code: int, out: str, *says: str) -> None:
    assert code == 1 and out.startswith("error:") and out.count("\n") == 1, out
    for text in says:
        assert text in out, out


def test_nsds_and_ns_instances_through_nfvctl(cli_env: Nfvo, nsd_archives: dict[str, Path]) -> None:
    code, out = nfvctl("nsd", "onboard", str(nsd_archives["edge-gateway"]))
    assert code == 0, out
    match = re.match(r"(\S+) ONBOARDED: .*\(nsdId (\S+)\)", out)
    assert match, out
    nsd_info_id, nsd_id = match.groups()
    code, out = nfvctl("nsd", "list", "--json")
    listed = json.loads(out)
    assert [(n["id"], n["nsdOperationalState"]) for n in listed] == [(nsd_info_id, "ENABLED")]
    code, out = nfvctl("nsd", "list")
    assert code == 0 and nsd_info_id in out and "ONBOARDED" in out, out
    assert json.loads(nfvctl("nsd", "show", nsd_info_id)[1])["nsdId"] == nsd_id

    code, out = nfvctl("ns", "create", nsd_id, "--name", "edge-1", "--description", "cli")
    assert code == 0, out
    ns_id = out.split()[0]
    shown = json.loads(nfvctl("ns", "show", ns_id)[1])
    assert (shown["nsInstanceName"], shown["nsState"]) == ("edge-1", "NOT_INSTANTIATED")
    assert shown["nsdId"] == nsd_id
    code, out = nfvctl("ns", "list", "--filter", "(eq,nsInstanceName,edge-1)")
    assert code == 0 and ns_id in out and "NOT_INSTANTIATED" in out, out
    # In use by an instance: it cannot be deleted, and the NFVO says why.
    assert nfvctl("nsd", "disable", nsd_info_id) == (0, f"{nsd_info_id} DISABLED\n")
    one_line_error(*nfvctl("nsd", "delete", nsd_info_id), "409")
    one_line_error(*nfvctl("ns", "terminate", ns_id), "409")  # never instantiated

    assert nfvctl("ns", "delete", ns_id) == (0, f"{ns_id} deleted\n")
    assert nfvctl("nsd", "delete", nsd_info_id) == (0, f"{nsd_info_id} deleted\n")
    assert json.loads(nfvctl("nsd", "list", "--json")[1]) == []


def test_errors_are_one_line(cli_env: Nfvo, tmp_path: Path) -> None:
    one_line_error(*nfvctl("nsd", "onboard", str(tmp_path / "missing.zip")), "neither a file")
    broken = tmp_path / "broken.yaml"
    broken.write_text("tosca_definitions_version: tosca_simple_yaml_1_3\nnode_types: [\n")
    one_line_error(*nfvctl("nsd", "onboard", str(broken)), "NSD onboarding failed")
    one_line_error(*nfvctl("ns", "create", "no-such-nsd", "--name", "x"), "422")
    one_line_error(*nfvctl("ns", "show", "no-such-ns"), "404")
    one_line_error(*nfvctl("ns", "instantiate", "no-such-ns"), "404")
