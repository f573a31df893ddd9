"""The NFVO's child processes (API, LCM worker: `nfvo.process`) get the parent's settings.

A real child interpreter reads `Settings.from_env()` from `service_env(settings)`, as
`nfvctl serve` and the Celery worker do, and reports what it got.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from nfvo.process import REPO, service_env
from nfvo.settings import Settings
from nfvo.vnfm_client.registry import VnfmRecord

# Settings that Settings.from_env does not read, so no environment can pass them on.
NOT_FROM_ENV = {
    "onboarding_workers",
    "notification_poll_seconds",
    "notification_max_attempts",
    "notification_base_delay",
    "token_ttl_seconds",
    "page_size",
}
CHILD = (
    "import json\n"
    "from nfvo.settings import Settings\n"
    "from tests.unit.nfvo.test_process_env import dump\n"
    "print(json.dumps(dump(Settings.from_env())))\n"
)


def dump(settings: Settings) -> dict[str, Any]:
    """The settings as JSON, secrets included (a model dump masks them)."""
    data: dict[str, Any] = json.loads(settings.model_dump_json())
    if settings.secret_key is not None:
        data["secret_key"] = settings.secret_key.get_secret_value()
    secret = settings.default_vnfm.client_secret
    if secret is not None:
        data["default_vnfm"]["client_secret"] = secret.get_secret_value()
    return data


def _child_settings(settings: Settings) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO,
        env=service_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _unlike_defaults(tmp: Path) -> Settings:
    return Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'elsewhere.db'}",
        auth_enabled=False,
        max_upload_bytes=12345,
        upload_file_roots=[tmp / "uploads-a", tmp / "uploads-b"],
        onboarding_workers=3,
        notification_poll_seconds=0.25,
        notification_max_attempts=3,
        notification_base_delay=0.5,
        token_ttl_seconds=60,
        page_size=7,
        public_url="http://192.0.2.10:9000",
        trust_anchor=tmp / "ca.pem",
        require_signed_packages=True,
        local_vim_state_dir=tmp / "vim",
        local_vim_prefix="tq",
        secret_key=SecretStr("sealing-key-of-the-parent"),
        grant_async=True,
        grant_cpu_allocation_ratio=4.5,
        grant_memory_allocation_ratio=1.25,
        default_vnfm=VnfmRecord(
            id="remote",
            kind="http",
            api_root="https://192.0.2.20:8443/",
            client_id="nfvo",
            client_secret=SecretStr("vnfm-client-secret"),
            token_url="https://192.0.2.20:8443/token",
            verify_tls=False,
            ca_file=tmp / "vnfm-ca.pem",
        ),
    )


def test_a_child_gets_every_setting_the_environment_can_carry(tmp_path: Path) -> None:
    settings = _unlike_defaults(tmp_path.resolve())
    # Every setting differs from its default, so one that is not passed on shows below.
    for name, spec in Settings.model_fields.items():
        if not spec.is_required():
            assert getattr(settings, name) != spec.get_default(call_default_factory=True), name
    parent, child = dump(settings), _child_settings(settings)
    differ = {name for name in parent if parent[name] != child[name]}
    assert differ == NOT_FROM_ENV, {name: (parent[name], child[name]) for name in differ}
    defaults = dump(Settings(data_dir=settings.data_dir))
    assert {name: child[name] for name in NOT_FROM_ENV} == {
        name: defaults[name] for name in NOT_FROM_ENV
    }


def test_the_parents_environment_does_not_override_its_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "NFVO_LOCAL_VIM_PREFIX": "zz",
        "NFVO_SECRET_KEY": "not-the-settings-key",
        "NFVO_TRUST_ANCHOR": str(tmp_path / "other-ca.pem"),
        "NFVO_AUTH": "off",
        "NFVO_PUBLIC_URL": "http://198.51.100.7:1",
        "NFVO_VNFM_API_ROOT": "https://198.51.100.8/",
        "DATA_DIR": str(tmp_path / "other-data"),
        "NFVO_BROKER_URL": "redis://127.0.0.1:6399/0",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(data_dir=tmp_path.resolve() / "data")
    assert _child_settings(settings) == dump(settings)
    # What is not a setting (broker, LCM timing, token secret) is passed on as it is.
    assert service_env(settings)["NFVO_BROKER_URL"] == "redis://127.0.0.1:6399/0"
