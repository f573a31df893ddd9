"""The Alembic migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.base import make_engine
from store.migrate import upgrade
from store.schema import metadata


def test_migrations_match_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        upgrade(engine)  # a second run is a no-op, as every service start does it
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata())
            tables = set(inspect(conn).get_table_names())
        assert diff == []
        assert {
            "vnf_packages",
            "vnfpkgm_subscriptions",
            "oauth_clients",
            "notification_outbox",
        } <= (tables)
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
