"""FastAPI dependencies shared by the VNF package management routes."""

from __future__ import annotations

from fastapi import Depends, Request

from nfvo.vnfpkgm.schemas import API_MAJOR, API_NAME
from nfvo.vnfpkgm.service import PackageService
from sol013.listing import base_url
from sol013.oauth2 import TokenClaims, require_scopes, scopes_for

READ = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=False)))
WRITE = Depends(require_scopes(*scopes_for(API_NAME, API_MAJOR, write=True)))


def service(request: Request) -> PackageService:
    svc: PackageService = request.app.state.packages
    return svc


__all__ = ["READ", "WRITE", "TokenClaims", "base_url", "service"]
