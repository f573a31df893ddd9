"""Where the NFVO finds a VNFM: its own, in process, or one reached over SOL003 HTTP.

`VnfmRecord` is what a VNFM registry entry stores; the settings hold one, the default VNFM
(`Settings.default_vnfm`, the NFVO's own VNFM in process unless NFVO_VNFM_API_ROOT names
another). Secrets are `SecretStr`: they never show in a repr, a log line or a model dump.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from sol013.notify_auth import AuthType, check_http_url
from sol013.oauth2 import scopes_for
from vnfm.schemas import API_MAJOR, API_NAME

__all__ = ["VNFM_ID_PATTERN", "NotificationAuth", "VnfmRecord"]

VNFM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
NotificationAuth = Literal[AuthType.BASIC, AuthType.OAUTH2_CLIENT_CREDENTIALS]


class VnfmRecord(BaseModel):
    """One VNFM the NFVO drives.

    ``kind`` "in-process": the NFVO's own VNFM, called in this process (no other field
    applies). "http": ``api_root`` is the VNFM's SOL003 apiRoot (``{api_root}/vnflcm/v2/...``);
    with ``client_id`` the NFVO authenticates by OAuth 2.0 client credentials at
    ``token_url`` (``{api_root}/oauth2/token`` unless given), asking for ``scopes``.
    ``notification_auth``: how the VNFM must authenticate when it notifies the NFVO.
    """

    model_config = ConfigDict(frozen=True)

    id: str = Field(default="local", pattern=VNFM_ID_PATTERN)
    kind: Literal["in-process", "http"] = "in-process"
    api_root: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str | None = None
    scopes: tuple[str, ...] = scopes_for(API_NAME, API_MAJOR, write=True)
    # TLS: verify the VNFM's certificate (against ca_file if given, else the system's CAs).
    verify_tls: bool = True
    ca_file: Path | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    notification_auth: NotificationAuth = AuthType.OAUTH2_CLIENT_CREDENTIALS

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.kind == "in-process":
            return self
        if self.api_root is None:
            raise ValueError("an http VNFM needs api_root")
        check_http_url(self.api_root, "api_root")
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("client_id and client_secret go together")
        if self.token_url is not None:
            check_http_url(self.token_url, "token_url")
        return self

    @property
    def api_base(self) -> str:
        if self.api_root is None:
            raise ValueError(f"VNFM {self.id} is in process: it has no api_root")
        return self.api_root.rstrip("/")

    @property
    def token_endpoint(self) -> str | None:
        if self.client_id is None:
            return None
        return self.token_url or f"{self.api_base}/oauth2/token"

    @classmethod
    def from_env(cls) -> VnfmRecord:
        """The default VNFM: in process, or the one NFVO_VNFM_API_ROOT names.

        NFVO_VNFM_CLIENT_ID / NFVO_VNFM_CLIENT_SECRET / NFVO_VNFM_TOKEN_URL: its OAuth 2.0
        client; NFVO_VNFM_CA_FILE: the CA its certificate chains to; NFVO_VNFM_VERIFY_TLS=off
        turns verification off (labs only).
        """
        api_root = os.environ.get("NFVO_VNFM_API_ROOT", "").strip()
        if not api_root:
            return cls()
        secret = os.environ.get("NFVO_VNFM_CLIENT_SECRET")
        ca_file = os.environ.get("NFVO_VNFM_CA_FILE")
        return cls(
            id=os.environ.get("NFVO_VNFM_ID", "default"),
            kind="http",
            api_root=api_root,
            client_id=os.environ.get("NFVO_VNFM_CLIENT_ID") or None,
            client_secret=SecretStr(secret) if secret else None,
            token_url=os.environ.get("NFVO_VNFM_TOKEN_URL") or None,
            verify_tls=os.environ.get("NFVO_VNFM_VERIFY_TLS", "on").strip().lower()
            not in ("off", "0", "false", "no"),
            ca_file=Path(ca_file) if ca_file else None,
        )
