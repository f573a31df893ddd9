"""Fixtures shared by every test folder: the databases the store runs on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import postgres


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres.PostgresServer]:
    with postgres.running_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Each test using this runs twice: on SQLite (embedded default) and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'nfvo.db'}"
        return
    server: postgres.PostgresServer = request.getfixturevalue("pg_server")
    url = server.database()
    try:
        yield url
    finally:
        server.drop(url)
