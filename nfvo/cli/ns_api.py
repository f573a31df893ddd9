"""The NSD management and NS lifecycle calls of nfvctl and the demo (SOL005 /nsd/v2, /nslcm/v2)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nfvo.cli.client import ApiClient, CliError
from nfvo.nsd.schemas import API_VERSION as NSD_VERSION
from nfvo.nslcm.schemas import API_VERSION as NSLCM_VERSION

NSDS = "/nsd/v2/ns_descriptors"
NS_INSTANCES = "/nslcm/v2/ns_instances"
NS_OP_OCCS = "/nslcm/v2/ns_lcm_op_occs"
NSD_HEADERS = {"Version": NSD_VERSION}
NSLCM_HEADERS = {"Version": NSLCM_VERSION}
MERGE_PATCH = "application/merge-patch+json"
FINAL_STATES = frozenset(
    {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"}
)


def _all_pages(client: ApiClient, path: str, headers: dict[str, str], **params: str) -> list[Any]:
    found: list[Any] = []
    url: str | None = path
    while url:
        resp = client.request("GET", url, params=params if url == path else None, headers=headers)
        found.extend(resp.json())
        url = resp.links.get("next", {}).get("url")
    return found


def _json(client: ApiClient, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    return client.request(method, path, headers=headers, **kw).json()


# -- NSDs ----------------------------------------------------------------------------------


def list_nsds(
    client: ApiClient, filter_expr: str | None = None, *, all_fields: bool = False
) -> list[Any]:
    """NSDs; `all_fields` includes what SOL005 leaves out of lists by default (userDefinedData)."""
    params = {"filter": filter_expr} if filter_expr else {}
    if all_fields:
        params["all_fields"] = ""
    return _all_pages(client, NSDS, NSD_HEADERS, **params)


def show_nsd(client: ApiClient, nsd_info_id: str) -> dict[str, Any]:
    found: dict[str, Any] = _json(client, "GET", f"{NSDS}/{nsd_info_id}", NSD_HEADERS)
    return found


def onboard_nsd(
    client: ApiClient, archive: Path, *, user_data: dict[str, Any] | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:  # fmt: skip
    """Create an NSD resource, upload the archive (zip) or single YAML file, wait until
    ONBOARDED; the NsdInfo. CliError with the NFVO's reason if onboarding fails."""
    body = {"userDefinedData": user_data} if user_data else {}
    nsd_info_id = str(_json(client, "POST", NSDS, NSD_HEADERS, json=body)["id"])
    media = "text/plain" if archive.suffix in (".yaml", ".yml") else "application/zip"
    with archive.open("rb") as content:
        client.request(
            "PUT",
            f"{NSDS}/{nsd_info_id}/nsd_content",
            content=content,
            headers={**NSD_HEADERS, "Content-Type": media},
        )
    deadline = time.monotonic() + timeout
    while True:
        info = show_nsd(client, nsd_info_id)
        if info["nsdOnboardingState"] == "ONBOARDED":
            return info
        failure = info.get("onboardingFailureDetails")
        if failure:
            raise CliError(f"NSD onboarding failed: {failure.get('detail', failure)}")
        if time.monotonic() > deadline:
            state = info["nsdOnboardingState"]
            raise CliError(f"NSD {nsd_info_id} still {state} after {timeout:.0f}s")
        time.sleep(0.2)


def set_nsd_state(client: ApiClient, nsd_info_id: str, state: str) -> None:
    client.request(
        "PATCH",
        f"{NSDS}/{nsd_info_id}",
        json={"nsdOperationalState": state},
        headers={**NSD_HEADERS, "Content-Type": MERGE_PATCH},
    )


def delete_nsd(client: ApiClient, nsd_info_id: str) -> None:
    client.request("DELETE", f"{NSDS}/{nsd_info_id}", headers=NSD_HEADERS)


# -- NS instances ----------------------------------------------------------------------------


def list_ns(
    client: ApiClient, filter_expr: str | None = None, *, all_fields: bool = False
) -> list[Any]:
    """NS instances; `all_fields` includes what SOL005 leaves out of lists by default
    (their VNF instances, among others)."""
    params = {"filter": filter_expr} if filter_expr else {}
    if all_fields:
        params["all_fields"] = ""
    return _all_pages(client, NS_INSTANCES, NSLCM_HEADERS, **params)


def show_ns(client: ApiClient, ns_id: str) -> dict[str, Any]:
    found: dict[str, Any] = _json(client, "GET", f"{NS_INSTANCES}/{ns_id}", NSLCM_HEADERS)
    return found


def create_ns(client: ApiClient, nsd_id: str, name: str, description: str = "") -> dict[str, Any]:
    body = {"nsdId": nsd_id, "nsName": name, "nsDescription": description or name}
    created: dict[str, Any] = _json(client, "POST", NS_INSTANCES, NSLCM_HEADERS, json=body)
    return created


def delete_ns(client: ApiClient, ns_id: str) -> None:
    client.request("DELETE", f"{NS_INSTANCES}/{ns_id}", headers=NSLCM_HEADERS)


def start_ns_task(client: ApiClient, ns_id: str, task: str, body: dict[str, Any]) -> str:
    """POST an NS LCM task (instantiate, scale, heal, update, terminate); the occurrence id."""
    resp = client.request(
        "POST", f"{NS_INSTANCES}/{ns_id}/{task}", json=body, headers=NSLCM_HEADERS
    )
    return resp.headers["Location"].rstrip("/").rsplit("/", 1)[1]


def show_ns_op(client: ApiClient, op_id: str) -> dict[str, Any]:
    found: dict[str, Any] = _json(client, "GET", f"{NS_OP_OCCS}/{op_id}", NSLCM_HEADERS)
    return found


def wait_ns_op(client: ApiClient, op_id: str, *, timeout: float = 600.0) -> dict[str, Any]:
    """The occurrence once it is final; CliError naming its state and error otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        occurrence = show_ns_op(client, op_id)
        state = occurrence["operationState"]
        if state == "COMPLETED":
            return occurrence
        if state in FINAL_STATES:
            error = occurrence.get("error") or {}
            raise CliError(
                f"{occurrence['lcmOperationType']} {op_id} ended {state}: "
                f"{error.get('detail', 'no detail')}"
            )
        if time.monotonic() > deadline:
            operation = occurrence["lcmOperationType"]
            raise CliError(f"{operation} {op_id} still {state} after {timeout:.0f}s")
        time.sleep(0.25)
