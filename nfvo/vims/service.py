"""The VIM registry: register, read, modify and delete VIMs, credentials sealed at rest.

Every registration is validated by the model of its vimType (`vim_adapters.registry`), so a
wrong or missing attribute is a 422 naming it. The credentials of accessInfo are stored
sealed (`sol013.secrets`), apart from the rest, and never leave the service through the API:
responses show each one as ``<redacted>``.

The default VIM is the local VIM of the service's settings. It is registered at start-up with
the stable id ``local`` (the VIM connection id the VNFM has always used for it, so instances
made before the registry existed keep their VIM); its accessInfo follows the settings at every
start, and it cannot be deleted.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from nfvo.vims.models import VimRow
from nfvo.vims.schemas import (
    REDACTED,
    VimExtra,
    VimInfoModifications,
    VimRegistrationRequest,
)
from sol013.merge_patch import merge_patch
from sol013.problem import ApiError
from sol013.secrets import SealedValueError, SecretBox
from store.base import transaction, utcnow
from vim_adapters.errors import VimError, VimFatalError
from vim_adapters.registry import (
    LOCAL,
    AdapterUnavailable,
    InvalidVimConnection,
    LocalAccessInfo,
    VimConnection,
    build_adapter,
    parse_connection,
    secret_fields,
)

log = logging.getLogger(__name__)

DEFAULT_VIM_ID = "local"
DEFAULT_VIM_NAME = "local"

Json = dict[str, Any]
EtagCheck = Callable[[VimRow], None]


@dataclass(frozen=True)
class _Stored:
    """A registration as the row keeps it."""

    interface_info: Json
    access_info: Json
    access_secrets: str | None


def _plain(model: Any) -> Json:
    """The attributes that were given, credentials in clear (for sealing, never for output)."""
    dumped: Json = model.model_dump(exclude_unset=True)
    return {
        key: value.get_secret_value() if isinstance(value, SecretStr) else value
        for key, value in dumped.items()
    }


def _extra(value: Json) -> VimExtra:
    try:
        return VimExtra.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"extra.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ApiError(422, problems) from None


def _no_placeholders(access_info: Json, secrets: frozenset[str]) -> None:
    for key in sorted(secrets):
        if access_info.get(key) == REDACTED:
            raise ApiError(
                422,
                f"accessInfo.{key}: give the credential itself; {REDACTED!r} is what "
                "responses show instead of it",
            )


def local_access(row: VimRow) -> LocalAccessInfo | None:
    """The state directory and prefix of a local VIM (no secrets: read from the clear part)."""
    if row.vim_type != LOCAL:
        return None
    return LocalAccessInfo.model_validate(row.access_info)


class VimRegistry:
    """The registered VIMs, in the NFVO's store."""

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox) -> None:
        self.sessions = sessions
        self.box = box

    # -- stored form ---------------------------------------------------------------------

    def _seal(self, connection: VimConnection) -> _Stored:
        secrets = secret_fields(connection.vim_type)
        access = _plain(connection.access)
        hidden = {key: access.pop(key) for key in sorted(secrets & set(access))}
        # Secret names stay in the clear part with no value, so responses can show them.
        clear = {**access, **dict.fromkeys(hidden)}
        return _Stored(
            interface_info=_plain(connection.interface),
            access_info=clear,
            access_secrets=self.box.seal(hidden) if hidden else None,
        )

    def access_info(self, row: VimRow) -> Json:
        """The full accessInfo of a row, credentials in clear (for the adapter only)."""
        opened: Json = self.box.open(row.access_secrets) if row.access_secrets else {}
        clear = {key: value for key, value in row.access_info.items() if value is not None}
        return {**clear, **opened}

    def connection(self, row: VimRow) -> VimConnection:
        try:
            return parse_connection(row.id, row.vim_type, row.interface_info, self.access_info(row))
        except SealedValueError as exc:
            raise VimFatalError(f"VIM {row.id}: {exc}") from None

    # -- reading -------------------------------------------------------------------------

    def get(self, session: Session, vim_id: str) -> VimRow:
        row = session.get(VimRow, vim_id)
        if row is None:
            raise ApiError(404, f"no VIM with id {vim_id} is registered")
        return row

    def find(self, vim_id: str) -> VimRow | None:
        with self.sessions() as session:
            return session.get(VimRow, vim_id)

    def list_all(self, session: Session) -> list[VimRow]:
        return list(session.scalars(select(VimRow).order_by(VimRow.created_at, VimRow.id)))

    # -- checks --------------------------------------------------------------------------

    def _validated(
        self, vim_id: str, vim_type: str, interface_info: Json, access_info: Json
    ) -> VimConnection:
        try:
            _no_placeholders(access_info, secret_fields(vim_type))
            return parse_connection(vim_id, vim_type, interface_info, access_info)
        except InvalidVimConnection as exc:
            raise ApiError(422, exc.detail) from None

    @staticmethod
    def _check_unique(
        session: Session, vim_id: str, name: str, stored: _Stored, vim_type: str
    ) -> None:
        for other in session.scalars(select(VimRow).where(VimRow.id != vim_id)):
            if other.name == name:
                raise ApiError(409, f"VIM {other.id} already has the name {name!r}")
            if vim_type != LOCAL or other.vim_type != LOCAL:
                continue
            mine = LocalAccessInfo.model_validate(stored.access_info)
            theirs = local_access(other)
            assert theirs is not None
            if Path(mine.stateDir) == Path(theirs.stateDir):
                raise ApiError(
                    409,
                    f"accessInfo.stateDir: {mine.stateDir} is the state directory of VIM "
                    f"{other.id} ({other.name}); one local VIM has one state directory",
                )
            if mine.prefix == theirs.prefix:
                raise ApiError(
                    409,
                    f"accessInfo.prefix: {mine.prefix!r} is the prefix of VIM {other.id} "
                    f"({other.name}); two local VIMs on one host need different prefixes",
                )

    # -- changes -------------------------------------------------------------------------

    def create(self, body: VimRegistrationRequest, *, vim_id: str | None = None) -> VimRow:
        vim_id = vim_id or str(uuid.uuid4())
        connection = self._validated(vim_id, body.vimType, body.interfaceInfo, body.accessInfo)
        stored = self._seal(connection)
        extra = body.extra or VimExtra()
        row = VimRow(
            id=vim_id,
            name=body.name,
            description=body.description,
            vim_type=body.vimType,
            interface_info=stored.interface_info,
            access_info=stored.access_info,
            access_secrets=stored.access_secrets,
            extra=extra.model_dump(mode="json", exclude_none=True),
            is_default=False,
            created_at=utcnow(),
            updated_at=utcnow(),
            revision=1,
        )
        try:
            with transaction(self.sessions) as session:
                self._check_unique(session, vim_id, body.name, stored, body.vimType)
                session.add(row)
        except IntegrityError:
            # Another request took the name between the check and the insert.
            raise ApiError(409, f"a VIM named {body.name!r} is already registered") from None
        log.info("registered VIM %s (%s, %s)", vim_id, body.name, body.vimType)
        return row

    def modify(
        self, vim_id: str, body: VimInfoModifications, check_etag: EtagCheck
    ) -> tuple[VimRow, Json]:
        """Apply a merge patch; the row and the modifications as applied (credentials hidden)."""
        given = body.model_fields_set
        if "vimType" in given:
            raise ApiError(422, "vimType cannot be changed; register a new VIM instead")
        if "name" in given and body.name is None:
            raise ApiError(422, "name: a VIM always has a name")
        try:
            with transaction(self.sessions) as session:
                row = self.get(session, vim_id)
                check_etag(row)
                applied: Json = {}
                if "name" in given and body.name is not None:
                    row.name = applied["name"] = body.name
                if "description" in given:
                    row.description = body.description
                    applied["description"] = body.description
                if body.interfaceInfo is not None or body.accessInfo is not None:
                    self._reconnect(row, body, applied)
                if "extra" in given:
                    patch = body.extra or {}
                    row.extra = _extra(merge_patch(row.extra, patch)).model_dump(
                        mode="json", exclude_none=True
                    )
                    applied["extra"] = patch
                stored = _Stored(row.interface_info, row.access_info, row.access_secrets)
                self._check_unique(session, row.id, row.name, stored, row.vim_type)
                row.revision += 1
                row.updated_at = utcnow()
        except IntegrityError:
            raise ApiError(409, f"a VIM named {body.name!r} is already registered") from None
        return row, applied

    def _reconnect(self, row: VimRow, body: VimInfoModifications, applied: Json) -> None:
        if row.is_default and body.accessInfo is not None:
            raise ApiError(
                409,
                f"VIM {row.id} is the default VIM: its accessInfo comes from the service "
                "settings (NFVO_LOCAL_VIM_STATE_DIR, NFVO_LOCAL_VIM_PREFIX)",
            )
        interface = merge_patch(row.interface_info, body.interfaceInfo or {})
        access = merge_patch(self.access_info(row), body.accessInfo or {})
        stored = self._seal(self._validated(row.id, row.vim_type, interface, access))
        row.interface_info = stored.interface_info
        row.access_info = stored.access_info
        row.access_secrets = stored.access_secrets
        if body.interfaceInfo is not None:
            applied["interfaceInfo"] = body.interfaceInfo
        if body.accessInfo is not None:
            secrets = secret_fields(row.vim_type)
            applied["accessInfo"] = {
                key: REDACTED if key in secrets and value is not None else value
                for key, value in body.accessInfo.items()
            }

    def delete(self, vim_id: str) -> None:
        """Unregister a VIM that has no resources of any VNF instance left."""
        row = self.find(vim_id)
        if row is None:
            raise ApiError(404, f"no VIM with id {vim_id} is registered")
        if row.is_default:
            raise ApiError(409, f"VIM {vim_id} is the default VIM (from the service settings)")
        self._refuse_in_use(row)
        with transaction(self.sessions) as session:
            current = session.get(VimRow, vim_id)
            if current is not None:
                session.delete(current)
        log.info("unregistered VIM %s (%s)", vim_id, row.name)

    def _refuse_in_use(self, row: VimRow) -> None:
        try:
            adapter = build_adapter(self.connection(row))
        except AdapterUnavailable:
            return  # nothing can have been made through an adapter that does not exist
        except VimError as exc:
            raise ApiError(
                409, f"cannot tell whether VIM {row.id} is in use, so it stays: {exc.detail}"
            ) from None
        owners = sorted({r.owner.vnf_instance_id for r in adapter.list_owned()})
        if owners:
            raise ApiError(
                409,
                f"VIM {row.id} still has resources of VNF instance(s) {', '.join(owners)}; "
                "terminate them first",
            )

    def ensure_default(self, state_dir: Path, prefix: str) -> VimRow:
        """Register (or bring up to date) the settings' local VIM as the default one."""
        access = {"stateDir": str(state_dir.resolve()), "prefix": prefix}
        stored = self._seal(self._validated(DEFAULT_VIM_ID, LOCAL, {}, access))
        for _ in range(2):
            try:
                with transaction(self.sessions) as session:
                    row = session.get(VimRow, DEFAULT_VIM_ID)
                    if row is None:
                        row = self._new_default(session, stored)
                    elif row.access_info != stored.access_info or not row.is_default:
                        log.info("default VIM now at %s (prefix %s)", state_dir, prefix)
                        row.access_info = stored.access_info
                        row.is_default = True
                        row.revision += 1
                        row.updated_at = utcnow()
                    self._check_unique(session, row.id, row.name, stored, LOCAL)
                    return row
            except IntegrityError:
                continue  # another replica registered it at the same time: read it again
        raise RuntimeError("the default VIM could not be registered")

    def _new_default(self, session: Session, stored: _Stored) -> VimRow:
        taken = session.scalar(select(VimRow.id).where(VimRow.name == DEFAULT_VIM_NAME))
        row = VimRow(
            id=DEFAULT_VIM_ID,
            name=DEFAULT_VIM_NAME if taken is None else f"{DEFAULT_VIM_NAME}-default",
            description="the local lab VIM of the service settings",
            vim_type=LOCAL,
            interface_info={},
            access_info=stored.access_info,
            access_secrets=None,
            extra={"labels": {}},
            is_default=True,
            created_at=utcnow(),
            updated_at=utcnow(),
            revision=1,
        )
        session.add(row)
        session.flush()
        return row
