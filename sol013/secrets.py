"""Credentials encrypted at rest: VIM access secrets, subscription callback credentials.

A `SecretBox` seals JSON values with Fernet (AES-128-CBC with an HMAC-SHA256 tag, from the
`cryptography` package); any change to a token is detected when it is opened. Its key is
either given (``NFVO_SECRET_KEY``: one or more Fernet keys separated by commas, the first
encrypting and every one decrypting, so a key can be rotated) or kept in a file of the data
directory that the first start creates with mode 0600. A key file that group or others may
read is refused: the service does not start with a key anyone on the host could copy.

Stored JSON columns hold a sealed value as ``{"sealed": "<token>"}`` (`seal_json`), so a row
says by itself whether it is sealed; `seal_stored_credentials` seals, at start-up, every
``authentication`` value an older version stored in clear.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeGuard

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import JSON, MetaData, Table, select, update
from sqlalchemy.orm import Session, sessionmaker

from store.base import transaction

log = logging.getLogger(__name__)

SEALED = "sealed"
KEY_FILE_NAME = "secret.key"
# Credentials of subscriptions and outbox rows live in a JSON column of this name.
AUTHENTICATION_COLUMN = "authentication"


class SecretKeyError(Exception):
    """The configured key, or the key file, cannot be used; the service must not start."""


class SealedValueError(Exception):
    """A sealed value cannot be opened: another key sealed it, or it was altered."""


class SecretBox:
    """Seals and opens JSON values with the service's key(s)."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        fernets = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise SecretKeyError(
                    f"secret key {number} is not a Fernet key (32 random bytes, url-safe "
                    "base64-encoded; make one with "
                    '`python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"`)'
                ) from None
        if not fernets:
            raise SecretKeyError("no secret key given")
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_setting(cls, value: str) -> SecretBox:
        """The box of ``NFVO_SECRET_KEY``: keys separated by commas, the first one encrypts."""
        return cls(part.strip().encode() for part in value.split(",") if part.strip())

    def seal(self, value: Any) -> str:
        """An opaque token of ``value`` (anything JSON can hold)."""
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()

    def open(self, token: str) -> Any:
        try:
            plain = self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise SealedValueError(
                "a stored secret cannot be decrypted: it was sealed with another key "
                "(NFVO_SECRET_KEY or the data directory's secret.key changed) or altered"
            ) from None
        return json.loads(plain)

    def seal_json(self, value: Any) -> dict[str, str]:
        """``value`` as a JSON column stores it sealed."""
        return {SEALED: self.seal(value)}

    def open_json(self, stored: dict[str, Any]) -> Any:
        """The value `seal_json` sealed."""
        token = stored.get(SEALED)
        if not isinstance(token, str):
            raise SealedValueError("the stored value is not sealed")
        return self.open(token)


def is_sealed(value: Any) -> TypeGuard[dict[str, Any]]:
    """Whether a stored JSON value is a `SecretBox.seal_json` result."""
    return isinstance(value, dict) and set(value) == {SEALED} and isinstance(value[SEALED], str)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretKeyError(
            f"secret key file {path} has mode {stat.filemode(mode)}: group and others must "
            f"have no access (chmod 600 {path}), since the key decrypts every stored credential"
        )


def key_file_box(path: Path) -> SecretBox:
    """The box of a key file, which is created (mode 0600) if it does not exist yet.

    The key is written to a private temporary file and linked into place, so a process
    starting at the same time (an API replica, a worker) finds either no file or the whole
    key, and the first one to link wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # mkstemp: a name of its own (threads share a pid) and mode 0600.
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key() + b"\n")
                out.flush()
                os.fsync(out.fileno())
            os.link(tmp, path)
            log.info("made a new secret key in %s", path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    _check_private(path)
    return SecretBox.from_setting(path.read_text(encoding="ascii"))


def open_box(configured: str | None, data_dir: Path) -> SecretBox:
    """The service's box: the configured key(s) if any, else the data directory's key file."""
    if configured:
        return SecretBox.from_setting(configured)
    return key_file_box(data_dir / KEY_FILE_NAME)


def _credential_tables(metadata: MetaData) -> list[Table]:
    return [
        table
        for table in metadata.tables.values()
        if AUTHENTICATION_COLUMN in table.c
        and isinstance(table.c[AUTHENTICATION_COLUMN].type, JSON)
    ]


def seal_stored_credentials(
    sessions: sessionmaker[Session], box: SecretBox, metadata: MetaData
) -> int:
    """Seal every ``authentication`` value stored in clear; returns how many were sealed.

    Subscriptions (and their queued notifications) made before credentials were encrypted
    kept them in clear; this runs at every start and does nothing once all are sealed.
    """
    sealed = 0
    for table in _credential_tables(metadata):
        column = table.c[AUTHENTICATION_COLUMN]
        key = list(table.primary_key.columns)
        with transaction(sessions) as session:
            rows = session.execute(select(*key, column).where(column.is_not(None))).all()
            for row in rows:
                value = row[-1]
                if value is None or is_sealed(value):
                    continue
                condition = [col == row[i] for i, col in enumerate(key)]
                session.execute(
                    update(table).where(*condition).values({column: box.seal_json(value)})
                )
                sealed += 1
    if sealed:
        log.warning("sealed %d credential(s) stored in clear by an older version", sealed)
    return sealed
