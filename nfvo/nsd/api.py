"""The /nsd/v2 API as the service assembly mounts it: its version and its routers."""

from __future__ import annotations

from fastapi import APIRouter

from nfvo.nsd import api_content, api_descriptors, api_subscriptions
from nfvo.nsd.schemas import API_MAJOR, API_NAME, API_VERSION
from sol013.versioning import ApiSpec, api_versions_router

NSD = ApiSpec(name=API_NAME, major=API_MAJOR, versions=(API_VERSION,))


def routers() -> list[APIRouter]:
    """Every route of the API, /nsd/api_versions and /nsd/v2/api_versions included."""
    return [
        api_versions_router(NSD),
        api_descriptors.router,
        api_content.router,
        api_subscriptions.router,
    ]
