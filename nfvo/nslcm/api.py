"""The /nslcm/v2 API as the service assembly mounts it: its version and its routers."""

from __future__ import annotations

from fastapi import APIRouter

from nfvo.nslcm import api_instances, api_opoccs, api_subscriptions, api_tasks
from nfvo.nslcm.schemas import API_MAJOR, API_NAME, API_VERSION
from sol013.versioning import ApiSpec, api_versions_router

NSLCM = ApiSpec(name=API_NAME, major=API_MAJOR, versions=(API_VERSION,))


def routers() -> list[APIRouter]:
    """Every route of the API, /nslcm/api_versions and /nslcm/v2/api_versions included."""
    return [
        api_versions_router(NSLCM),
        api_instances.router,
        api_tasks.router,
        api_opoccs.router,
        api_subscriptions.router,
    ]
