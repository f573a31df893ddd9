"""Imports every module that defines tables, so `Base.metadata` holds the whole schema.

Alembic's autogenerate and the tests' schema checks read the metadata from here.
"""

from __future__ import annotations

from sqlalchemy import MetaData

import nfvo.grant.models
import nfvo.nsd.models
import nfvo.nslcm.models
import nfvo.vims.models
import nfvo.vnfpkgm.models
import sol013.oauth2_clients
import sol013.outbox
import vnfm.models
from store.base import Base

MODULES = (
    nfvo.vnfpkgm.models,
    sol013.oauth2_clients,
    sol013.outbox,
    nfvo.grant.models,
    vnfm.models,
    nfvo.vims.models,
    nfvo.nsd.models,
    nfvo.nslcm.models,
)


def metadata() -> MetaData:
    return Base.metadata
