"""External virtual links of a VNF instance: what the requests say, what the instance keeps.

INSTANTIATE starts the instance's ``extVirtualLinkInfo`` from its request's
``extVirtualLinks``; CHANGE_EXT_CONN merges its own into it (`merge`). The planner reads the
result back (`planner_links`), so re-planning the units of an instance gives the CPs the
external networks they are on now.

Merge rules (SOL003 ExtVirtualLinkInfo, note): an entry of the request with the id of a known
link replaces its network and merges its ``extCps`` by ``cpdId`` (``cpConfig`` as a JSON
Merge Patch, a null entry removing that CP config); an entry with a new id adds a link. An
external CP is attached to one external link at a time, so naming a CP in one link takes it
off every other; a link left without CPs disappears.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from sol013.merge_patch import merge_patch
from sol013.types import ResourceHandle
from vim_adapters.interface import VimAdapter
from vnfm import planner
from vnfm.instantiated_info import network_handle
from vnfm.operation import ExecutionError
from vnfm.schemas import ExtVirtualLinkData, ExtVirtualLinkInfo, VnfExtCpData

__all__ = [
    "HandleFor",
    "as_requested",
    "changed",
    "dump",
    "handles_on",
    "load",
    "merge",
    "named_twice",
    "planner_links",
]

HandleFor = Callable[[ExtVirtualLinkData], ResourceHandle]


def handles_on(vim: VimAdapter, vim_connection_id: str) -> HandleFor:
    """ResourceHandles of external networks on `vim` (the link's own VIM connection if given)."""

    def handle(link: ExtVirtualLinkData) -> ResourceHandle:
        default = network_handle(vim, link.resourceId, vim_connection_id)
        return ResourceHandle(
            vimConnectionId=link.vimConnectionId or vim_connection_id,
            resourceProviderId=link.resourceProviderId,
            resourceId=link.resourceId,
            vimLevelResourceType=default["vimLevelResourceType"],
        )

    return handle


def named_twice(links: Sequence[ExtVirtualLinkData]) -> list[str]:
    """External CP ids one request attaches to more than one of its links."""
    seen: dict[str, int] = {}
    for link in links:
        for cp_id in dict.fromkeys(cp.cpdId for cp in link.extCps):
            seen[cp_id] = seen.get(cp_id, 0) + 1
    return sorted(cp_id for cp_id, count in seen.items() if count > 1)


def planner_links(links: Iterable[ExtVirtualLinkData]) -> list[planner.ExternalLink]:
    """ExtVirtualLinkData entries as the planner takes them; ExecutionError 422 if malformed."""
    result: list[planner.ExternalLink] = []
    for link in links:
        fixed: dict[str, list[str]] = {}
        for ext_cp in link.extCps:
            # cpConfig entries are CP instances; their order (JSON object order) is replica order.
            addresses = [
                address
                for config in (ext_cp.cpConfig or {}).values()
                if config is not None
                for data in config.cpProtocolData or ()
                if data.ipOverEthernet is not None
                for ip in data.ipOverEthernet.ipAddresses or ()
                for address in ip.fixedAddresses or ()
            ]
            if addresses:
                fixed.setdefault(ext_cp.cpdId, []).extend(addresses)
        try:
            result.append(
                planner.ExternalLink(
                    network=link.resourceId,
                    ext_cps=[cp.cpdId for cp in link.extCps],
                    fixed_addresses=fixed,
                )
            )
        except ValidationError as exc:
            problems = "; ".join(err["msg"] for err in exc.errors())
            raise ExecutionError(
                f"external virtual link {link.id}: {problems}", status=422
            ) from None
    return result


def load(stored: Iterable[Mapping[str, Any]]) -> list[ExtVirtualLinkInfo]:
    """ExtVirtualLinkInfo entries as stored on the instance."""
    try:
        return [ExtVirtualLinkInfo.model_validate(entry) for entry in stored]
    except ValidationError as exc:
        detail = f"the instance's stored extVirtualLinkInfo is invalid: {exc}"
        raise ExecutionError(detail) from None


def dump(links: Iterable[ExtVirtualLinkInfo]) -> list[dict[str, Any]]:
    return [link.model_dump(mode="json", by_alias=True, exclude_none=True) for link in links]


def as_requested(link: ExtVirtualLinkInfo) -> ExtVirtualLinkData:
    """A current link as the request that would attach its CPs again."""
    return ExtVirtualLinkData(
        id=link.id,
        vimConnectionId=link.resourceHandle.vimConnectionId,
        resourceProviderId=link.resourceHandle.resourceProviderId,
        resourceId=link.resourceHandle.resourceId,
        extCps=list(link.currentVnfExtCpData),
    )


def _config_json(config: Any) -> dict[str, Any] | None:
    return None if config is None else dict(config.model_dump(mode="json", exclude_none=True))


def _merge_cp(before: VnfExtCpData | None, change: VnfExtCpData) -> VnfExtCpData:
    """One CP's data after a change: its cpConfig map merged as a JSON Merge Patch."""
    configs: dict[str, Any] = {}
    if before is not None:
        configs = {
            key: _config_json(config)
            for key, config in (before.cpConfig or {}).items()
            if config is not None
        }
    if change.cpConfig is not None:
        patch = {key: _config_json(config) for key, config in change.cpConfig.items()}
        configs = merge_patch(configs, patch)
    try:
        return VnfExtCpData.model_validate({"cpdId": change.cpdId, "cpConfig": configs or None})
    except ValidationError as exc:
        problems = "; ".join(err["msg"] for err in exc.errors())
        raise ExecutionError(
            f"external CP {change.cpdId}: its merged cpConfig is invalid: {problems}", status=422
        ) from None


def merge(
    current: Sequence[ExtVirtualLinkInfo],
    changes: Sequence[ExtVirtualLinkData],
    *,
    handle_for: HandleFor,
) -> list[ExtVirtualLinkInfo]:
    """The instance's external links after `changes` (rules in the module docstring)."""
    twice = named_twice(changes)
    if twice:
        raise ExecutionError(
            f"extVirtualLinks: external CP {', '.join(twice)} is given in more than one link",
            status=422,
        )
    links: dict[str, ExtVirtualLinkInfo] = {link.id: link for link in current}
    for change in changes:
        named = {cp.cpdId for cp in change.extCps}
        for link_id, link in list(links.items()):
            if link_id != change.id:
                kept = [cp for cp in link.currentVnfExtCpData if cp.cpdId not in named]
                links[link_id] = link.model_copy(update={"currentVnfExtCpData": kept})
        before = links.get(change.id)
        cps = {cp.cpdId: cp for cp in (before.currentVnfExtCpData if before else ())}
        for cp in change.extCps:
            cps[cp.cpdId] = _merge_cp(cps.get(cp.cpdId), cp)
        links[change.id] = ExtVirtualLinkInfo(
            id=change.id,
            resourceHandle=handle_for(change),
            extLinkPorts=before.extLinkPorts if before is not None else None,
            currentVnfExtCpData=list(cps.values()),
        )
    return [link for link in links.values() if link.currentVnfExtCpData]


def changed(
    before: Sequence[ExtVirtualLinkInfo],
    after: Sequence[ExtVirtualLinkInfo],
    requested: Iterable[str],
) -> list[ExtVirtualLinkInfo]:
    """The links of `after` that a request named or whose CPs or network changed."""
    named = set(requested)
    old = {link.id: link for link in before}
    return [link for link in after if link.id in named or old.get(link.id) != link]
