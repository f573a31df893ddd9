"""Integration tests drive real namespaces, bridges, workers and a Redis broker: root only."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisServer, running_redis


@pytest.fixture(scope="session", autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "the integration tests create network namespaces, bridges and processes: "
            "run them as root (CI does)",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """A private Redis server on loopback, the production broker of the LCM workers."""
    with running_redis() as server:
        yield server
