"""The VIM contract, on the local lab VIM."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.contract.vim_contract import VimContract, Workloads
from tests.support.local_vim import (
    failing,
    leftovers,
    local_vim,
    name_prefix,
    next_cidr,
    serving,
)
from vim_adapters.local.adapter import LocalVim


class TestLocalVimContract(VimContract):
    @pytest.fixture
    def vim(self, tmp_path: Path) -> Iterator[LocalVim]:
        with local_vim(tmp_path / "vim", prefix=name_prefix("hb")) as adapter:
            yield adapter
            # Each contract test leaves only what it made, and the adapter knows all of it.
            assert adapter.leaks() == []
        assert leftovers(adapter.prefix) == []

    @pytest.fixture
    def workloads(self) -> Workloads:
        return Workloads(serving=serving, failing=failing)

    @pytest.fixture
    def cidrs(self) -> Callable[[], str]:
        return next_cidr
