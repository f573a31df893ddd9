"""The NFVO's SOL003 client of the VNFMs it drives (Or-Vnfm, NFVO -> VNFM).

`client_for` gives the `VnfmClient` of a registry entry (`VnfmRecord`): in process for the
NFVO's own VNFM, over HTTP for any other. See `interface` for the contract.
"""

from __future__ import annotations

from fastapi import FastAPI

from nfvo.vnfm_client.callbacks import NotificationEndpoint
from nfvo.vnfm_client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    OperationFailed,
    PreconditionFailed,
    Unavailable,
    Unprocessable,
    VnfmError,
    VnfmProtocolError,
    WaitTimeout,
)
from nfvo.vnfm_client.hub import NotificationHub
from nfvo.vnfm_client.interface import SETTLED, PollPolicy, VnfmClient, require_completed
from nfvo.vnfm_client.registry import VnfmRecord

__all__ = [
    "SETTLED",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "NotificationEndpoint",
    "NotificationHub",
    "OperationFailed",
    "PollPolicy",
    "PreconditionFailed",
    "Unavailable",
    "Unprocessable",
    "VnfmClient",
    "VnfmError",
    "VnfmProtocolError",
    "VnfmRecord",
    "WaitTimeout",
    "client_for",
    "require_completed",
]


def client_for(
    app: FastAPI, record: VnfmRecord | None = None, *, poll: PollPolicy | None = None
) -> VnfmClient:
    """The client of ``record`` (default: the settings' VNFM) for code running in the NFVO
    service ``app`` (started): notifications come to its endpoint. Close it after use."""
    # Imported here so that importing the registry (nfvo.settings does) stays light.
    from nfvo.vnfm_client.http import HttpVnfmClient
    from nfvo.vnfm_client.in_process import InProcessVnfmClient

    record = record or app.state.settings.default_vnfm
    endpoint: NotificationEndpoint = app.state.vnfm_notifications
    if record.kind == "in-process":
        return InProcessVnfmClient.for_app(
            app,
            vnfm_id=record.id,
            endpoint=endpoint,
            notification_auth=record.notification_auth,
            poll=poll,
        )
    return HttpVnfmClient(record, endpoint=endpoint, poll=poll)
