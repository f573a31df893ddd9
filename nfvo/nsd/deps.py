"""FastAPI dependencies shared by the NSD management routes."""

from __future__ import annotations

from fastapi import Depends, Request

from nfvo.nsd.schemas import API_MAJOR, API_NAME
from nfvo.nsd.service import NsdService
from sol013.listing import base_url
from sol013.oauth2 import require_scopes, scopes_for

# nsd:v2:all for everything, nsd:v2:readonly for reads (the scheme of every API here).
READ = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=False)))
WRITE = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=True)))


def service(request: Request) -> NsdService:
    svc: NsdService = request.app.state.nsds
    return svc


__all__ = ["READ", "WRITE", "base_url", "service"]
