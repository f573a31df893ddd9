"""Service settings, read from the environment with embedded defaults.

Everything defaults to files under one data directory so `make demo` needs no
server installed by hand: SQLite database, package content store, token
signing key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from nfvo.vnfm_client.registry import VnfmRecord

DEFAULT_MAX_UPLOAD_BYTES = 1 << 30


class Settings(BaseModel):
    """Configuration of one NFVO service process."""

    data_dir: Path
    database_url: str = ""
    auth_enabled: bool = True
    max_upload_bytes: int = Field(default=DEFAULT_MAX_UPLOAD_BYTES, gt=0)
    # file:// uploads read server-side files, so only these directories may be named.
    upload_file_roots: list[Path] = Field(default_factory=list)
    onboarding_workers: int = Field(default=2, ge=1)
    notification_poll_seconds: float = Field(default=0.5, gt=0)
    notification_max_attempts: int = Field(default=8, ge=1)
    notification_base_delay: float = Field(default=1.0, gt=0)
    token_ttl_seconds: int = Field(default=3600, gt=0)
    page_size: int = Field(default=100, ge=1)
    # Base URL of this service as others reach it, for links made outside a request.
    public_url: str = "http://127.0.0.1:8080"
    # PEM CA certificate that package signatures must chain to, if any.
    trust_anchor: Path | None = None
    # SOL004 makes a security option mandatory; labs may onboard unsigned packages.
    require_signed_packages: bool = False
    # Granting (nfvo/grant).
    # State directory of the local lab VIM whose inventory grants are checked against;
    # None: the host's capacity with nothing allocated.
    local_vim_state_dir: Path | None = None
    # Name prefix of the local VIM's namespaces and bridges (1-8 letters or digits).
    local_vim_prefix: str = "nfv"
    # Key(s) sealing stored credentials (sol013/secrets.py); None: <data dir>/secret.key.
    secret_key: SecretStr | None = None
    # Decide grants asynchronously (202, then poll) even when a request does not ask to.
    grant_async: bool = False
    # Over-commitment allowed when granting: vCPU x16 (OpenStack's initial ratio), memory none.
    grant_cpu_allocation_ratio: float = Field(default=16.0, gt=0)
    grant_memory_allocation_ratio: float = Field(default=1.0, gt=0)
    # The VNFM the NFVO drives by default (NFVO -> VNFM, nfvo/vnfm_client): its own, in process.
    default_vnfm: VnfmRecord = Field(default_factory=VnfmRecord)

    def model_post_init(self, __context: object) -> None:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'nfvo.db'}"

    @property
    def content_dir(self) -> Path:
        return self.data_dir / "packages"

    @property
    def nsd_content_dir(self) -> Path:
        return self.data_dir / "nsds"

    def token_secret(self) -> bytes:
        """The JWT signing key: from NFVO_TOKEN_SECRET, else a 0600 file made once per data dir.

        Replicas of the API must share it, which the environment variable allows.
        """
        from_env = os.environ.get("NFVO_TOKEN_SECRET")
        if from_env:
            return from_env.encode()
        path = self.data_dir / "token-secret.key"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as out:
            out.write(key)
        return key

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("NFVO_DATA_DIR", os.environ.get("DATA_DIR", ".data")))
        roots = os.environ.get("NFVO_UPLOAD_FILE_ROOTS", "")
        return cls(
            data_dir=data_dir.resolve(),
            database_url=os.environ.get("NFVO_DATABASE_URL", ""),
            auth_enabled=_flag(os.environ.get("NFVO_AUTH", "on")),
            max_upload_bytes=int(
                os.environ.get("NFVO_MAX_UPLOAD_BYTES", str(DEFAULT_MAX_UPLOAD_BYTES))
            ),
            upload_file_roots=[Path(p).resolve() for p in roots.split(os.pathsep) if p],
            trust_anchor=os.environ.get("NFVO_TRUST_ANCHOR") or None,
            public_url=os.environ.get("NFVO_PUBLIC_URL", "http://127.0.0.1:8080"),
            require_signed_packages=_flag(os.environ.get("NFVO_REQUIRE_SIGNED_PACKAGES", "off")),
            local_vim_state_dir=os.environ.get("NFVO_LOCAL_VIM_STATE_DIR") or None,
            local_vim_prefix=os.environ.get("NFVO_LOCAL_VIM_PREFIX") or "nfv",
            secret_key=os.environ.get("NFVO_SECRET_KEY") or None,
            grant_async=_flag(os.environ.get("NFVO_GRANT_ASYNC", "off")),
            grant_cpu_allocation_ratio=float(os.environ.get("NFVO_GRANT_CPU_RATIO", "16.0")),
            grant_memory_allocation_ratio=float(os.environ.get("NFVO_GRANT_MEMORY_RATIO", "1.0")),
            default_vnfm=VnfmRecord.from_env(),
        )


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("off", "0", "false", "no", "")
