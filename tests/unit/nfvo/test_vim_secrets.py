"""The secret box: sealing, opening, keys from the setting or a private key file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from sol013.outbox import NotificationOutbox, enqueue
from sol013.secrets import (
    SealedValueError,
    SecretBox,
    SecretKeyError,
    is_sealed,
    key_file_box,
    open_box,
    seal_stored_credentials,
)
from store.base import make_engine, make_session_factory, transaction
from store.migrate import upgrade
from store.schema import metadata

AUTH = {"authType": ["BASIC"], "paramsBasic": {"userName": "u", "password": "s3cret-pw"}}


def test_seal_and_open() -> None:
    box = SecretBox([Fernet.generate_key()])
    token = box.seal({"password": "s3cret-pw", "n": 1})
    assert "s3cret" not in token
    assert box.open(token) == {"password": "s3cret-pw", "n": 1}
    # Fernet tokens carry a random IV: the same value never seals the same way twice.
    assert box.seal("x") != box.seal("x")
    stored = box.seal_json(AUTH)
    assert is_sealed(stored) and not is_sealed(AUTH) and not is_sealed({"sealed": 1})
    assert box.open_json(stored) == AUTH
    with pytest.raises(SealedValueError, match="not sealed"):
        box.open_json(AUTH)


def test_altered_or_foreign_tokens_are_refused() -> None:
    box = SecretBox([Fernet.generate_key()])
    token = box.seal("value")
    altered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(SealedValueError, match="another key"):
        box.open(altered)
    with pytest.raises(SealedValueError):
        SecretBox([Fernet.generate_key()]).open(token)


def test_setting_rotation_and_bad_keys() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_before = SecretBox.from_setting(old).seal("v")
    rotated = SecretBox.from_setting(f" {new} , {old} ")
    assert rotated.open(sealed_before) == "v"
    # The first key seals: a box with only the new key opens what the rotated one seals.
    assert SecretBox.from_setting(new).open(rotated.seal("w")) == "w"
    with pytest.raises(SecretKeyError, match="key 2 is not a Fernet key"):
        SecretBox.from_setting(f"{new},short")
    with pytest.raises(SecretKeyError, match="no secret key"):
        SecretBox.from_setting(" , ")


def test_key_file_is_made_private_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    boxes: list[SecretBox] = []
    threads = [threading.Thread(target=lambda: boxes.append(key_file_box(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(boxes) == 8
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = boxes[0].seal("same key everywhere")
    assert all(box.open(token) == "same key everywhere" for box in boxes)
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]
    assert open_box(None, path.parent).open(token) == "same key everywhere"
    configured = Fernet.generate_key().decode()
    assert (
        open_box(configured, tmp_path / "elsewhere").open(
            SecretBox.from_setting(configured).seal(1)
        )
        == 1
    )
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(Fernet.generate_key())
    os.chmod(path, mode)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        key_file_box(path)


def test_clear_credentials_of_older_rows_are_sealed(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        sessions = make_session_factory(engine)
        box = SecretBox([Fernet.generate_key()])
        with transaction(sessions) as session:
            for auth in (AUTH, None, box.seal_json(AUTH)):
                enqueue(
                    session,
                    subscription_id="s",
                    callback_uri="http://127.0.0.1:9/cb",
                    authentication=auth,
                    payload={"notificationType": "T"},
                )
        assert seal_stored_credentials(sessions, box, metadata()) == 1
        assert seal_stored_credentials(sessions, box, metadata()) == 0
        with sessions() as session:
            stored = list(
                session.scalars(
                    select(NotificationOutbox.authentication).order_by(NotificationOutbox.id)
                )
            )
        assert stored[1] is None
        assert [box.open_json(stored[i]) for i in (0, 2)] == [AUTH, AUTH]
    finally:
        engine.dispose()
