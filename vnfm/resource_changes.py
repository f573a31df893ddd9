"""The ResourceChanges of an operation occurrence, collected while the operation runs.

Entries are keyed by resource id, so a step that is repeated (a retry, a re-run after a
crash) records a resource once, with the last change type it was given.
"""

from __future__ import annotations

from typing import Any

from vim_adapters.interface import VimAdapter
from vnfm.instantiated_info import compute_handle
from vnfm.schemas import ResourceChanges

__all__ = ["ChangeLog"]


class ChangeLog:
    """ResourceChanges being collected, deduplicated by resource id."""

    def __init__(self) -> None:
        self.vnfcs: dict[str, dict[str, Any]] = {}
        self.links: dict[str, dict[str, Any]] = {}

    def vnfc(self, change: str, replica_id: str, vdu_id: str, handle: dict[str, str]) -> None:
        self.vnfcs[replica_id] = {
            "id": replica_id,
            "vduId": vdu_id,
            "changeType": change,
            "computeResource": handle,
        }

    def link(self, change: str, network: str, vl_id: str, handle: dict[str, str]) -> None:
        self.links[network] = {
            "id": network,
            "vnfVirtualLinkDescId": vl_id,
            "changeType": change,
            "networkResource": handle,
        }

    def added_by(
        self, vim: VimAdapter, vnf_instance_id: str, op_id: str, vim_connection_id: str
    ) -> None:
        """Every replica the VIM records as made by operation `op_id`, as ADDED."""
        for resource in vim.list_owned(vnf_instance_id):
            if resource.kind == "replica" and resource.owner.lcm_op_id == op_id:
                self.vnfc(
                    "ADDED",
                    resource.name,
                    resource.owner.vdu_id or "",
                    compute_handle(vim, resource.name, vim_connection_id),
                )

    def dump(self) -> dict[str, Any]:
        """ResourceChanges JSON (ETSI names, no nulls), validated."""
        body: dict[str, Any] = {}
        if self.vnfcs:
            body["affectedVnfcs"] = list(self.vnfcs.values())
        if self.links:
            body["affectedVirtualLinks"] = list(self.links.values())
        model = ResourceChanges.model_validate(body)
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)
