"""Onboarding benchmark: time from upload to ONBOARDED, per package (not a test).

Starts the NFVO as its own process on loopback (SQLite, embedded defaults),
then for each of the project's four packages and a generated 50-VDU package
uploads the CSAR RUNS times to fresh package resources and measures, from the
start of the PUT to the first GET that shows ONBOARDED (polled every 5 ms).

    .venv/bin/python bench/onboarding.py [--runs 7]
"""

from __future__ import annotations

import argparse
import copy
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from descriptors.build import build_csar  # noqa: E402
from descriptors.lab_pki import make_pki  # noqa: E402
from nfvo.admin import create_api_client  # noqa: E402
from nfvo.process import free_port, start_service, wait_ready  # noqa: E402
from nfvo.settings import Settings  # noqa: E402

PKGS = "/vnfpkgm/v2/vnf_packages"
SAMPLES = REPO / "descriptors" / "packages"
POLL = 0.005


def synthetic_50_vdu(work: Path, signer: tuple[Path, Path]) -> Path:
    """The VPN package with its fast path VDU cloned until the flavour has 50 VDUs."""
    tree = work / "synthetic50"
    shutil.copytree(SAMPLES / "vpn", tree)
    vnfd_file = tree / "Definitions" / "vpn_vnfd.yaml"
    doc: dict[str, Any] = yaml.safe_load(vnfd_file.read_text())
    nodes: dict[str, Any] = doc["topology_template"]["node_templates"]
    vdus = [name for name, node in nodes.items() if "Vdu.Compute" in node["type"]]
    template = "vpn_fastpath"
    cps = {
        name: node
        for name, node in nodes.items()
        if any(
            isinstance(req, dict) and req.get("virtual_binding") == template
            for req in node.get("requirements", [])
        )
    }
    for i in range(50 - len(vdus)):
        vdu_name = f"{template}_{i:02d}"
        clone = copy.deepcopy(nodes[template])
        clone["properties"]["name"] = f"vpn-fastpath-{i:02d}"
        nodes[vdu_name] = clone
        for cp_name, cp in cps.items():
            cp_clone = copy.deepcopy(cp)
            cp_clone["requirements"] = [
                {"virtual_binding": vdu_name} if "virtual_binding" in req else req
                for req in cp_clone["requirements"]
            ]
            nodes[f"{cp_name}_{i:02d}"] = cp_clone
    vnfd_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    return build_csar(tree, work / "synthetic50.csar", sign_with=signer)


def onboard_once(http: httpx.Client, content: bytes) -> float:
    pkg_id = http.post(PKGS, json={}).json()["id"]
    start = time.perf_counter()
    resp = http.put(
        f"{PKGS}/{pkg_id}/package_content",
        content=content,
        headers={"Content-Type": "application/zip"},
    )
    resp.raise_for_status()
    while True:
        info = http.get(f"{PKGS}/{pkg_id}").json()
        if info["onboardingState"] == "ONBOARDED":
            elapsed = time.perf_counter() - start
            break
        if info.get("onboardingFailureDetails"):
            raise SystemExit(f"onboarding failed: {info['onboardingFailureDetails']}")
        time.sleep(POLL)
    http.delete(f"{PKGS}/{pkg_id}").raise_for_status()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-onboarding-") as tmp:
        work = Path(tmp)
        # Signed as a provider ships them, so signature verification is part of the time.
        pki = make_pki(work / "pki")
        signer = (pki.signer_cert, pki.signer_key)
        csars = {
            name: build_csar(SAMPLES / name, work / f"{name}.csar", sign_with=signer)
            for name in ("nat", "slb", "cen", "vpn")
        }
        csars["synthetic-50-vdu"] = synthetic_50_vdu(work, signer)
        settings = Settings(data_dir=work / "data", trust_anchor=pki.ca_cert)
        secret = create_api_client("bench", ["vnfpkgm:v2:all"], settings=settings)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_service(settings, port, work / "nfvo.log")
        try:
            wait_ready(url, proc)
            token = httpx.post(
                f"{url}/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=("bench", secret),
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}", "Version": "2.4.0"}
            rows = []
            with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
                for name, csar in csars.items():
                    content = csar.read_bytes()
                    onboard_once(http, content)  # warm-up
                    times = [onboard_once(http, content) for _ in range(args.runs)]
                    rows.append((name, len(content), times))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"onboarding, upload to ONBOARDED, {args.runs} runs each (SQLite, one NFVO process)")
    print("| package | CSAR size | median | min | max |")
    print("|---|---:|---:|---:|---:|")
    for name, size, times in rows:
        print(
            f"| {name} | {size / 1024:.1f} KiB | {statistics.median(times) * 1000:.0f} ms "
            f"| {min(times) * 1000:.0f} ms | {max(times) * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
