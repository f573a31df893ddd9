"""Fixtures of the executor tests: a local VIM per test and an executor on it (root)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.vnfm.nat_executor import API_ROOT, PackagesOnDisk
from tests.support.local_vim import local_vim
from vim_adapters.local.adapter import LocalVim
from vnfm.executor import Executor


@pytest.fixture
def vim(tmp_path: Path) -> Iterator[LocalVim]:
    with local_vim(tmp_path / "vim") as made:
        yield made
        assert made.leaks() == []


@pytest.fixture
def executor(vim: LocalVim) -> Executor:
    return Executor(vim, PackagesOnDisk(), ready_timeout=60.0, api_root=API_ROOT)
