"""FastAPI dependencies shared by the NS lifecycle management routes."""

from __future__ import annotations

from fastapi import Depends, Request

from nfvo.nslcm.occurrences import NsOccurrenceService
from nfvo.nslcm.schemas import API_MAJOR, API_NAME
from nfvo.nslcm.service import NsInstanceService
from sol013.listing import base_url
from sol013.oauth2 import require_scopes, scopes_for

# nslcm:v2:all for everything, nslcm:v2:readonly for reads (the scheme of every API here).
READ = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=False)))
WRITE = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=True)))


def service(request: Request) -> NsInstanceService:
    svc: NsInstanceService = request.app.state.ns_instances
    return svc


def occurrences(request: Request) -> NsOccurrenceService:
    svc: NsOccurrenceService = request.app.state.ns_occurrences
    return svc


__all__ = ["READ", "WRITE", "base_url", "occurrences", "service"]
