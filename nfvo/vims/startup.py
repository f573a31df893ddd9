"""The VIM registry and the secret box of one service process (API or LCM worker)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from nfvo.settings import Settings
from nfvo.vims.directory import RegisteredVims
from nfvo.vims.service import VimRegistry
from sol013.secrets import SecretBox, open_box, seal_stored_credentials
from store.schema import metadata


def default_state_dir(settings: Settings) -> Path:
    """Where the default (local) VIM keeps its state: the setting, else ``<data>/local-vim``."""
    return settings.local_vim_state_dir or settings.data_dir / "local-vim"


def secret_box(settings: Settings) -> SecretBox:
    """NFVO_SECRET_KEY if set, else the data directory's key file (made at first start)."""
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    return open_box(key, settings.data_dir)


def open_vims(sessions: sessionmaker[Session], settings: Settings) -> RegisteredVims:
    """The registered VIMs, the settings' local VIM registered (or updated) as the default.

    Their secret box is the service's: it also seals subscription credentials, and those an
    older version stored in clear are sealed here, before anything reads them.
    """
    box = secret_box(settings)
    seal_stored_credentials(sessions, box, metadata())
    registry = VimRegistry(sessions, box)
    registry.ensure_default(default_state_dir(settings), settings.local_vim_prefix)
    return RegisteredVims(registry)
