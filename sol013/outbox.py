"""Durable notification outbox (transactional outbox pattern).

A notification is written in the same transaction as the state change that
causes it, so either both survive a crash or neither does. The dispatcher
then delivers rows at least once: a row is leased before the HTTP call, and
a dispatcher that dies mid-delivery leaves it to be retried after the lease.

Notifications of one subscription are delivered in order: only the oldest
PENDING row of a subscription is ever due, so row n+1 waits until row n is
DELIVERED or FAILED. Order is the order of row ids, i.e. of insertion.

Several dispatchers may share one PostgreSQL database (rows are claimed with
SELECT ... FOR UPDATE SKIP LOCKED); on SQLite run one dispatcher per database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlalchemy import BigInteger, Index, Integer, String, Text, delete, func, select, update
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, sessionmaker

from sol013.notify import DeliveryResult, NotificationClient, RetryPolicy
from sol013.notify_auth import SubscriptionAuthentication, check_http_url
from sol013.secrets import SealedValueError, SecretBox, is_sealed
from store.base import Base, transaction, utcnow

log = logging.getLogger(__name__)


class OutboxState(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class NotificationOutbox(Base):
    """One notification to one subscriber.

    ``authentication`` holds the subscription's SubscriptionAuthentication as the
    subscription stores it: sealed (``{"sealed": token}``, `sol013.secrets`), since the
    dispatcher must replay the credentials and must not depend on the subscription row
    still existing. The dispatcher opens it just before the delivery.
    """

    __tablename__ = "notification_outbox"
    __table_args__ = (
        Index("ix_notification_outbox_due", "state", "next_attempt_at"),
        Index("ix_notification_outbox_subscription", "subscription_id", "state", "id"),
    )

    # Integer on SQLite so it aliases the rowid and autoincrements there too.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    subscription_id: Mapped[str] = mapped_column(String(255))
    callback_uri: Mapped[str] = mapped_column(Text)
    authentication: Mapped[dict[str, Any] | None]
    payload: Mapped[dict[str, Any]]
    notification_type: Mapped[str] = mapped_column(String(128))
    # Sent as the SOL013 "Version" header of the notification request.
    api_version: Mapped[str | None] = mapped_column(String(32), default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.PENDING.value)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


def enqueue(
    session: Session,
    *,
    subscription_id: str,
    callback_uri: str,
    authentication: dict[str, Any] | None,
    payload: dict[str, Any],
    api_version: str | None = None,
) -> None:
    """Add a notification to the caller's transaction; delivery starts after its commit."""
    check_http_url(callback_uri, "callback_uri")
    notification_type = payload.get("notificationType")
    if not isinstance(notification_type, str) or not notification_type:
        raise ValueError("a notification payload must carry notificationType")
    # Fail in the producer, not later in the dispatcher, on bad input.
    json.dumps(payload)
    stored_auth = None
    if is_sealed(authentication):
        # Sealed by the subscription, validated before it was sealed: stored as it is.
        stored_auth = authentication
    elif authentication is not None:
        auth = SubscriptionAuthentication.model_validate(authentication)
        stored_auth = auth.model_dump(mode="json", exclude_none=True)
    now = utcnow()
    session.add(
        NotificationOutbox(
            subscription_id=subscription_id,
            callback_uri=callback_uri,
            authentication=stored_auth,
            payload=payload,
            notification_type=notification_type,
            api_version=api_version,
            attempts=0,
            next_attempt_at=now,
            state=OutboxState.PENDING.value,
            created_at=now,
        )
    )


def cancel_pending(session: Session, subscription_id: str) -> int:
    """Drop undelivered notifications of a deleted subscription (marked FAILED)."""
    result = session.execute(
        update(NotificationOutbox)
        .where(
            NotificationOutbox.subscription_id == subscription_id,
            NotificationOutbox.state == OutboxState.PENDING.value,
        )
        .values(state=OutboxState.FAILED.value, last_error="subscription deleted")
    )
    return int(getattr(result, "rowcount", 0))


def purge_delivered(session: Session, *, older_than: timedelta) -> int:
    """Delete DELIVERED rows older than ``older_than``; FAILED ones stay for inspection."""
    result = session.execute(
        delete(NotificationOutbox).where(
            NotificationOutbox.state == OutboxState.DELIVERED.value,
            NotificationOutbox.delivered_at < utcnow() - older_than,
        )
    )
    return int(getattr(result, "rowcount", 0))


@dataclass(frozen=True, slots=True)
class _Claimed:
    """A leased row, detached from its session so it can cross into the event loop."""

    id: int
    callback_uri: str
    authentication: dict[str, Any] | None
    payload: dict[str, Any]
    api_version: str | None
    attempts: int


class NotificationDispatcher:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        client: NotificationClient,
        policy: RetryPolicy,
        *,
        poll_interval: float = 0.5,
        batch: int = 50,
        concurrency: int = 10,
        lease_seconds: float = 120.0,
        box: SecretBox | None = None,
    ) -> None:
        """``lease_seconds`` must exceed the longest delivery (token fetch + POST + retry).

        ``box`` opens sealed credentials; without it, a notification whose credentials are
        sealed fails (it cannot be authenticated).
        """
        if batch < 1 or concurrency < 1:
            raise ValueError("batch and concurrency must be at least 1")
        self._session_factory = session_factory
        self._client = client
        self._policy = policy
        self._poll_interval = poll_interval
        self._batch = batch
        self._concurrency = concurrency
        self._lease = timedelta(seconds=lease_seconds)
        self._box = box
        self._run_lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Deliver without waiting for the next poll; callable from any thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wakeup.set()
        else:
            loop.call_soon_threadsafe(self._wakeup.set)

    async def run_forever(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                self._wakeup.clear()
                try:
                    processed = await self.run_once()
                except Exception:
                    # A database outage must not end delivery for good.
                    log.exception("notification dispatch round failed")
                    processed = 0
                if processed < self._batch:
                    await self._idle(stop)
        finally:
            self._loop = None

    async def run_once(self) -> int:
        """Deliver the due notifications once; returns how many were attempted."""
        async with self._run_lock:
            claimed = await asyncio.to_thread(self._claim)
            if not claimed:
                return 0
            limit = asyncio.Semaphore(self._concurrency)
            await asyncio.gather(*(self._process(row, limit) for row in claimed))
            return len(claimed)

    async def _idle(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wakeup.wait())]
        try:
            await asyncio.wait(
                waits, timeout=self._poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waits:
                waiter.cancel()
            for waiter in waits:
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter

    def _claim(self) -> list[_Claimed]:
        now = utcnow()
        row = NotificationOutbox
        earlier = aliased(NotificationOutbox)
        oldest_pending = (
            select(func.min(earlier.id))
            .where(
                earlier.subscription_id == row.subscription_id,
                earlier.state == OutboxState.PENDING.value,
            )
            .scalar_subquery()
        )
        query = (
            select(row)
            .where(
                row.state == OutboxState.PENDING.value,
                row.next_attempt_at <= now,
                row.id == oldest_pending,
            )
            .order_by(row.next_attempt_at, row.id)
            .limit(self._batch)
        )
        with transaction(self._session_factory) as session:
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            claimed = []
            for item in session.scalars(query):
                # The lease keeps other dispatchers (and this one's next round) off it.
                item.attempts += 1
                item.next_attempt_at = now + self._lease
                claimed.append(
                    _Claimed(
                        id=item.id,
                        callback_uri=item.callback_uri,
                        authentication=item.authentication,
                        payload=item.payload,
                        api_version=item.api_version,
                        attempts=item.attempts,
                    )
                )
            return claimed

    async def _process(self, row: _Claimed, limit: asyncio.Semaphore) -> None:
        async with limit:
            try:
                result = await self._deliver(row)
            except Exception as exc:
                log.exception("delivering notification %s crashed", row.id)
                result = DeliveryResult(False, None, f"internal error: {exc}", retryable=True)
        await asyncio.to_thread(self._record, row, result)

    async def _deliver(self, row: _Claimed) -> DeliveryResult:
        auth = None
        stored = row.authentication
        if is_sealed(stored):
            if self._box is None:
                return DeliveryResult(
                    False, None, "the credentials are sealed and no key is configured", False
                )
            try:
                stored = self._box.open_json(stored)
            except SealedValueError as exc:
                return DeliveryResult(False, None, str(exc), retryable=False)
        if stored is not None:
            try:
                auth = SubscriptionAuthentication.model_validate(stored)
            except ValidationError as exc:
                return DeliveryResult(
                    False, None, f"stored authentication is invalid: {exc}", retryable=False
                )
        return await self._client.deliver(
            row.callback_uri, auth, row.payload, version=row.api_version
        )

    def _record(self, row: _Claimed, result: DeliveryResult) -> None:
        now = utcnow()
        values: dict[str, Any]
        if result.ok:
            values = {"state": OutboxState.DELIVERED.value, "delivered_at": now, "last_error": None}
        elif result.retryable and row.attempts < self._policy.max_attempts:
            wait = max(self._policy.delay(row.attempts), result.retry_after or 0.0)
            wait = min(wait, self._policy.max_delay)
            values = {"next_attempt_at": now + timedelta(seconds=wait), "last_error": result.error}
        else:
            error = result.error or "delivery failed"
            if result.retryable:
                error = f"gave up after {row.attempts} attempts: {error}"
            values = {"state": OutboxState.FAILED.value, "last_error": error}
        with transaction(self._session_factory) as session:
            # The attempts guard ignores a late result for a row whose lease ran
            # out and that another dispatcher has claimed since.
            session.execute(
                update(NotificationOutbox)
                .where(
                    NotificationOutbox.id == row.id,
                    NotificationOutbox.state == OutboxState.PENDING.value,
                    NotificationOutbox.attempts == row.attempts,
                )
                .values(**values)
            )
