"""SubscriptionAuthentication (SOL013 clause 8.3.4, SOL005 SOL005_def.yaml).

How the API producer authenticates itself when it calls a subscriber's
notification endpoint. Field names are the ETSI ones, so these models
validate subscription request bodies as they arrive.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator


class AuthType(StrEnum):
    BASIC = "BASIC"
    OAUTH2_CLIENT_CREDENTIALS = "OAUTH2_CLIENT_CREDENTIALS"
    TLS_CERT = "TLS_CERT"


def check_http_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http or https URI, got {value!r}")
    return value


class ParamsBasic(BaseModel):
    userName: str = Field(min_length=1)
    password: str = Field(repr=False)

    @field_validator("userName")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        # RFC 7617 section 2: the user-id cannot be split from the password otherwise.
        if ":" in value:
            raise ValueError("userName must not contain ':'")
        return value


class ParamsOauth2ClientCredentials(BaseModel):
    clientId: str = Field(min_length=1)
    clientPassword: str = Field(repr=False)
    tokenEndpoint: str

    @field_validator("tokenEndpoint")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        return check_http_url(value, "tokenEndpoint")


class SubscriptionAuthentication(BaseModel):
    """Credentials stay out of ``repr`` so they don't end up in logs.

    SOL013 lets the params be absent when provisioned out of band; this stack
    has no out-of-band provisioning, so the params of every listed authType
    are required, and params of unlisted types are refused ("shall be absent").
    """

    authType: list[AuthType] = Field(min_length=1)
    paramsBasic: ParamsBasic | None = None
    paramsOauth2ClientCredentials: ParamsOauth2ClientCredentials | None = None

    @model_validator(mode="after")
    def _params_match_auth_types(self) -> Self:
        types = set(self.authType)
        pairs = (
            (AuthType.BASIC, "paramsBasic", self.paramsBasic),
            (
                AuthType.OAUTH2_CLIENT_CREDENTIALS,
                "paramsOauth2ClientCredentials",
                self.paramsOauth2ClientCredentials,
            ),
        )
        for auth_type, field, params in pairs:
            if auth_type in types and params is None:
                raise ValueError(f"{field} is required when authType contains {auth_type}")
            if auth_type not in types and params is not None:
                raise ValueError(f"{field} shall be absent unless authType contains {auth_type}")
        return self
