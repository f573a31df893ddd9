"""The NFVO REST service: FastAPI app assembly and its start-up/shut-down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from nfvo import vnflcm_notifications
from nfvo.content_store import ContentStore
from nfvo.grant import api as grant_api
from nfvo.grant.service import GrantService
from nfvo.nsd import api as nsd_api
from nfvo.nsd.service import NsdService
from nfvo.nslcm import api as nslcm_api
from nfvo.nslcm.dispatch import dispatcher_for as ns_dispatcher_for
from nfvo.nslcm.occurrences import NsOccurrenceService
from nfvo.nslcm.service import NsInstanceService
from nfvo.settings import Settings
from nfvo.vims import api as vims_api
from nfvo.vims.startup import open_vims
from nfvo.vnfm_client import NotificationEndpoint, NotificationHub
from nfvo.vnfm_link import InProcessNfvo
from nfvo.vnfpkgm import api_content, api_packages, api_subscriptions
from nfvo.vnfpkgm.schemas import API_MAJOR, API_NAME, API_VERSION
from nfvo.vnfpkgm.service import PackageService
from sol013.notify import NotificationClient, RetryPolicy
from sol013.oauth2 import TokenIssuer, token_router
from sol013.outbox import NotificationDispatcher
from sol013.problem import install_problem_handlers
from sol013.versioning import ApiSpec, api_versions_router, install_version_headers
from store.base import make_engine, make_session_factory
from store.migrate import upgrade
from vnfm import api_instances, api_opoccs, api_tasks
from vnfm import api_subscriptions as vnflcm_subscriptions
from vnfm import schemas as vnflcm_schemas
from vnfm.instances import InstanceService
from vnfm.occurrences import OccurrenceService
from vnfm.worker import dispatcher_for

log = logging.getLogger(__name__)
VNFPKGM = ApiSpec(name=API_NAME, major=API_MAJOR, versions=(API_VERSION,))
VNFLCM = ApiSpec(
    name=vnflcm_schemas.API_NAME,
    major=vnflcm_schemas.API_MAJOR,
    versions=(vnflcm_schemas.API_VERSION,),
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url)
        upgrade(engine)
        sessions = make_session_factory(engine)
        # The VIM registry, its default VIM and the key sealing stored credentials.
        vims = await asyncio.to_thread(open_vims, sessions, settings)
        client = NotificationClient()
        dispatcher = NotificationDispatcher(
            sessions,
            client,
            RetryPolicy(
                max_attempts=settings.notification_max_attempts,
                base_delay=settings.notification_base_delay,
            ),
            poll_interval=settings.notification_poll_seconds,
            box=vims.registry.box,
        )
        packages = PackageService(
            sessions, ContentStore(settings.content_dir), settings, on_notify=dispatcher.wake
        )
        interrupted = packages.recover()
        if interrupted:
            log.warning("%d package upload(s) were interrupted and reset to CREATED", interrupted)
        nsds = NsdService(
            sessions, ContentStore(settings.nsd_content_dir), settings, on_notify=dispatcher.wake
        )
        if nsds.recover(settings.public_url):
            log.warning("NSD upload(s) were interrupted and left in ERROR")
        app.state.settings = settings
        app.state.session_factory = sessions
        app.state.token_issuer = TokenIssuer(
            settings.token_secret(), ttl_seconds=settings.token_ttl_seconds
        )
        app.state.auth_enabled = settings.auth_enabled
        app.state.packages = packages
        app.state.nsds = nsds
        app.state.ns_instances = NsInstanceService(sessions, nsds, on_notify=dispatcher.wake)
        app.state.vims = vims
        app.state.secret_box = vims.registry.box
        grants = GrantService.from_settings(sessions, settings, vims)
        undecided = await asyncio.to_thread(grants.recover)
        if undecided:
            log.warning("%d grant(s) left pending were decided at start-up", undecided)
        app.state.grants = grants
        app.state.instances = InstanceService(
            sessions, InProcessNfvo(sessions, grants, settings.public_url)
        )
        occurrences = OccurrenceService(
            sessions, base_url=settings.public_url, wake_notifications=dispatcher.wake
        )
        lost = await asyncio.to_thread(occurrences.recover)
        if lost:
            log.warning("%d LCM operation occurrence(s) had lost their worker", lost)
        app.state.occurrences = occurrences
        # Hands an occurrence to a worker; set before start-up (worker integration, tests)
        # to replace the default.
        if getattr(app.state, "dispatch", None) is None:
            app.state.dispatch = dispatcher_for(settings)
        ns_occurrences = NsOccurrenceService(
            sessions, base_url=settings.public_url, wake_notifications=dispatcher.wake
        )
        lost = await asyncio.to_thread(ns_occurrences.recover)
        if lost:
            log.warning("%d NS LCM operation occurrence(s) had lost their worker", lost)
        app.state.ns_occurrences = ns_occurrences
        # Hands an NS LCM occurrence to a worker; replaceable before start-up like dispatch.
        if getattr(app.state, "ns_dispatch", None) is None:
            app.state.ns_dispatch = ns_dispatcher_for(settings)
        app.state.notification_client = client
        # Called after a commit that queued notifications, to deliver them without waiting.
        app.state.wake_notifications = dispatcher.wake
        # Where the VNFMs the NFVO drives send their LCM notifications (nfvo/vnfm_client).
        app.state.vnfm_notifications = NotificationEndpoint(
            base_url=settings.public_url,
            hub=NotificationHub(),
            sessions=sessions if settings.auth_enabled else None,
        )
        stop = asyncio.Event()
        delivery = asyncio.create_task(dispatcher.run_forever(stop))
        try:
            yield
        finally:
            stop.set()
            dispatcher.wake()
            await delivery
            await asyncio.to_thread(packages.shutdown)
            await asyncio.to_thread(nsds.shutdown)
            await client.aclose()
            engine.dispose()

    app = FastAPI(
        title="nfv-mano NFVO",
        summary="ETSI NFV-SOL005 VNF Package Management",
        version=API_VERSION,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    install_version_headers(
        app, [VNFPKGM, grant_api.GRANT, VNFLCM, vims_api.VIMS, nsd_api.NSD, nslcm_api.NSLCM]
    )
    app.include_router(
        token_router(lambda: app.state.session_factory, lambda: app.state.token_issuer)
    )
    app.include_router(api_versions_router(VNFPKGM))
    app.include_router(api_packages.router)
    app.include_router(api_content.router)
    app.include_router(api_subscriptions.router)
    app.include_router(api_versions_router(grant_api.GRANT))
    app.include_router(grant_api.router)
    app.include_router(api_versions_router(VNFLCM))
    app.include_router(api_instances.router)
    app.include_router(api_tasks.router)
    app.include_router(api_opoccs.router)
    app.include_router(vnflcm_subscriptions.router)
    app.include_router(api_versions_router(vims_api.VIMS))
    app.include_router(vims_api.router)
    app.include_router(vnflcm_notifications.router)
    for router in nsd_api.routers():
        app.include_router(router)
    for router in nslcm_api.routers():
        app.include_router(router)
    return app
