"""Registered VIMs as the rest of the stack uses them: adapters by id, capacities.

`RegisteredVims` is the VNFM's `VimResolver` (adapter of a VIM by id) and the grant service's
and placement's `VimDirectory` (capacity of a VIM by id, every candidate). Adapters are made
from the registration on first use and kept while the registration does not change (its
revision), so a modified VIM (new credentials, new state directory) is reached the new way.
"""

from __future__ import annotations

import threading
from pathlib import Path

from nfvo.grant.placement import VimCapacity
from nfvo.grant.service import host_inventory
from nfvo.vims.models import VimRow
from nfvo.vims.schemas import VimExtra
from nfvo.vims.service import DEFAULT_VIM_ID, VimRegistry, local_access
from vim_adapters.interface import Inventory, VimAdapter
from vim_adapters.registry import UnknownVim, build_adapter, type_info


class RegisteredVims:
    """The VIM registry as a VimResolver (VNFM) and a VimDirectory (grants, placement)."""

    def __init__(self, registry: VimRegistry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._adapters: dict[str, tuple[int, VimAdapter]] = {}

    @property
    def default_vim_id(self) -> str:
        return DEFAULT_VIM_ID

    def _row(self, vim_id: str) -> VimRow:
        row = self.registry.find(vim_id)
        if row is None:
            raise UnknownVim(f"no VIM with id {vim_id} is registered")
        return row

    def vim_type(self, vim_id: str) -> str:
        return self._row(vim_id).vim_type

    def adapter(self, vim_id: str) -> VimAdapter:
        return self._adapter(self._row(vim_id))

    def _adapter(self, row: VimRow) -> VimAdapter:
        with self._lock:
            cached = self._adapters.get(row.id)
            if cached is not None and cached[0] == row.revision:
                return cached[1]
        adapter = build_adapter(self.registry.connection(row))
        with self._lock:
            self._adapters[row.id] = (row.revision, adapter)
        return adapter

    def _inventory(self, row: VimRow) -> Inventory:
        local = local_access(row)
        if local is not None and not Path(local.stateDir).is_dir():
            # A local VIM that never ran anything has the host with nothing allocated; saying
            # so needs no root, which opening the adapter does.
            return host_inventory()
        return self._adapter(row).inventory()

    def capacity(self, vim_id: str) -> VimCapacity:
        return self._capacity(self._row(vim_id))

    def _capacity(self, row: VimRow) -> VimCapacity:
        extra = VimExtra.model_validate(row.extra)
        inventory = self._inventory(row)
        overrides = extra.capacity
        if overrides is not None and overrides.vcpu is not None:
            inventory = inventory.model_copy(update={"cpu_total": overrides.vcpu})
        if overrides is not None and overrides.memoryMib is not None:
            inventory = inventory.model_copy(update={"memory_mib_total": overrides.memoryMib})
        return VimCapacity(
            vim_id=row.id,
            name=row.name,
            vim_type=row.vim_type,
            single_host=type_info(row.vim_type).single_host,
            inventory=inventory,
            cpu_allocation_ratio=overrides.cpuAllocationRatio if overrides else None,
            memory_allocation_ratio=overrides.memoryAllocationRatio if overrides else None,
            zone=extra.zone,
            labels=dict(extra.labels),
        )

    def rows(self) -> list[VimRow]:
        with self.registry.sessions() as session:
            return self.registry.list_all(session)
