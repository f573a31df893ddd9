"""Fixtures for the tc-BPF datapath tests: the compiled program, a namespace lab, a driver.

Everything a test makes (namespaces, links, BPF programs and maps) is removed
afterwards, also when the test fails, and the test fails if something survives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.integration.fastpath.topology import Lab, namespaces_with, run, wait_for
from vnfs.sdk.bpf import build, netns
from vnfs.sdk.bpf.driver import BpfDriver

SMALL_TABLE = 4096


@pytest.fixture(scope="session")
def bpf_object() -> Path:
    """The datapath program, compiled if missing or older than its sources."""
    return build.build()


def program_exists(program_id: int) -> bool:
    return run("bpftool", "prog", "show", "id", str(program_id), check=False).returncode == 0


def _program_gone(program_id: int) -> bool:
    return not program_exists(program_id)


@pytest.fixture
def lab() -> Iterator[Lab]:
    current = Lab.create()
    try:
        yield current
    finally:
        current.destroy()
        assert namespaces_with(current.prefix) == [], "namespaces left behind"


@pytest.fixture
def make_driver(lab: Lab, bpf_object: Path) -> Iterator[Callable[..., BpfDriver]]:
    """Makes drivers (the test starts them, in the fast-path namespace); closes them all."""
    made: list[BpfDriver] = []

    def make(table_size: int = SMALL_TABLE) -> BpfDriver:
        made.append(BpfDriver(table_size=table_size, object_path=bpf_object))
        return made[-1]

    try:
        yield make
    finally:
        program_ids = [driver.program_id for driver in made if driver.program_id]
        for driver in made:
            driver.close()
        for program_id in program_ids:
            assert wait_for(partial(_program_gone, program_id)), (
                f"BPF program {program_id} still loaded after close()"
            )


@pytest.fixture
def driver(lab: Lab, make_driver: Callable[..., BpfDriver]) -> BpfDriver:
    """A started driver: both data interfaces, punting to the slow-path namespace."""
    current = make_driver()
    with netns.entered_named(lab.fastpath):
        current.start(lab.data_interfaces(), lab.punt_target())
    return current
