"""Server-side administration that works on the database directly (no API call)."""

from __future__ import annotations

from collections.abc import Sequence

from nfvo.settings import Settings
from sol013.oauth2 import create_client
from store.base import make_engine, make_session_factory, transaction
from store.migrate import upgrade


def create_api_client(
    client_id: str, scopes: Sequence[str], *, settings: Settings | None = None
) -> str:
    """Create an OAuth 2.0 client; returns its secret, which is stored only hashed."""
    settings = settings or Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        with transaction(make_session_factory(engine)) as session:
            return create_client(session, client_id, scopes)
    finally:
        engine.dispose()
