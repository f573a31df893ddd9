"""Durable notification outbox and its dispatcher, against a real HTTP subscriber."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sol013.notify import NotificationClient, RetryPolicy
from sol013.outbox import (
    NotificationDispatcher,
    NotificationOutbox,
    OutboxState,
    cancel_pending,
    enqueue,
    purge_delivered,
)
from store.base import Base, make_engine, make_session_factory, transaction, utcnow
from tests.support.http_server import serving

FAST = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2, jitter=0.0)


@dataclass
class Subscriber:
    """Scripted statuses per path (default 204); records what arrives, in order."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    received: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    slow_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, body, _ in self.received if p == path]


def _handler(state: Subscriber) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            if self.path == "/slow":
                time.sleep(state.slow_seconds)
            with state.lock:
                state.received.append((self.path, body, dict(self.headers)))
                script = state.statuses.get(self.path, [])
                status = script.pop(0) if script else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def subscriber() -> Iterator[tuple[Subscriber, str]]:
    state = Subscriber()
    with serving(_handler(state)) as url:
        yield state, url


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def _notification(seq: int, sub: str = "sub-1") -> dict[str, Any]:
    return {
        "id": f"{sub}-{seq}",
        "notificationType": "VnfPackageChangeNotification",
        "subscriptionId": sub,
        "seq": seq,
    }


def _enqueue(factory: sessionmaker[Session], uri: str, *seqs: int, sub: str = "sub-1") -> None:
    with transaction(factory) as session:
        for seq in seqs:
            enqueue(
                session,
                subscription_id=sub,
                callback_uri=uri,
                authentication=None,
                payload=_notification(seq, sub),
            )


def _rows(factory: sessionmaker[Session]) -> list[NotificationOutbox]:
    with factory() as session:
        return list(session.scalars(select(NotificationOutbox).order_by(NotificationOutbox.id)))


def _with_dispatcher(
    factory: sessionmaker[Session],
    body: Callable[[NotificationDispatcher], Awaitable[None]],
    policy: RetryPolicy = FAST,
    **kwargs: Any,
) -> None:
    async def scenario() -> None:
        async with NotificationClient(timeout=2.0) as client:
            await body(NotificationDispatcher(factory, client, policy, **kwargs))

    asyncio.run(scenario())


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def _running(
    dispatcher: NotificationDispatcher, until: Callable[[], bool], timeout: float = 5.0
) -> None:
    """Runs the dispatcher loop until ``until`` holds, then stops it cleanly."""
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run_forever(stop))
    try:
        await _until(until, timeout)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


def _all_settled(factory: sessionmaker[Session]) -> Callable[[], bool]:
    return lambda: all(r.state != OutboxState.PENDING for r in _rows(factory))


# --- enqueue --------------------------------------------------------------------


def test_enqueue_validates_input(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session, pytest.raises(ValueError, match="notificationType"):
        enqueue(
            session,
            subscription_id="s",
            callback_uri="http://127.0.0.1/cb",
            authentication=None,
            payload={"id": "x"},
        )
    with transaction(factory) as session, pytest.raises(ValueError, match="paramsBasic"):
        enqueue(
            session,
            subscription_id="s",
            callback_uri="http://127.0.0.1/cb",
            authentication={"authType": ["BASIC"]},
            payload=_notification(1),
        )
    with transaction(factory) as session, pytest.raises(ValueError, match="callback_uri"):
        enqueue(
            session,
            subscription_id="s",
            callback_uri="ftp://x/cb",
            authentication=None,
            payload=_notification(1),
        )
    assert _rows(factory) == []


def test_enqueue_is_part_of_the_callers_transaction(factory: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError), transaction(factory) as session:
        enqueue(
            session,
            subscription_id="s",
            callback_uri="http://127.0.0.1/cb",
            authentication=None,
            payload=_notification(1),
        )
        raise RuntimeError("the state change failed")
    assert _rows(factory) == []


# --- delivery -------------------------------------------------------------------


def test_delivers_with_stored_authentication_and_version(
    factory: sessionmaker[Session], subscriber: tuple[Subscriber, str]
) -> None:
    state, base = subscriber
    with transaction(factory) as session:
        enqueue(
            session,
            subscription_id="s",
            callback_uri=f"{base}/cb",
            authentication={
                "authType": ["BASIC"],
                "paramsBasic": {"userName": "u", "password": "p"},
            },
            payload=_notification(1),
            api_version="2.1.0",
        )

    async def body(dispatcher: NotificationDispatcher) -> None:
        assert await dispatcher.run_once() == 1
        assert await dispatcher.run_once() == 0

    _with_dispatcher(factory, body)
    ((path, payload, headers),) = state.received
    assert path == "/cb" and payload == _notification(1)
    assert headers["Authorization"] == "Basic dTpw"
    assert headers["Version"] == "2.1.0"
    (row,) = _rows(factory)
    assert row.state == OutboxState.DELIVERED and row.attempts == 1
    assert row.delivered_at is not None and row.last_error is None


def test_retries_after_503_with_backoff(
    factory: sessionmaker[Session], subscriber: tuple[Subscriber, str]
) -> None:
    state, base = subscriber
    state.statuses["/cb"] = [503]
    _enqueue(factory, f"{base}/cb", 1)

    async def body(dispatcher: NotificationDispatcher) -> None:
        assert await dispatcher.run_once() == 1
        (row,) = _rows(factory)
        assert row.state == OutboxState.PENDING and row.attempts == 1
        assert row.last_error is not None and "HTTP 503" in row.last_error
        assert row.next_attempt_at > utcnow()
        assert await dispatcher.run_once() == 0  # backing off: not due yet
        await asyncio.sleep(0.1)
        assert await dispatcher.run_once() == 1

    _with_dispatcher(factory, body)
    (row,) = _rows(factory)
    assert row.state == OutboxState.DELIVERED and row.attempts == 2 and row.last_error is None
    assert len(state.bodies("/cb")) == 2


def test_non_retryable_error_fails_at_once(
    factory: sessionmaker[Session], subscriber: tuple[Subscriber, str]
) -> None:
    state, base = subscriber
    state.statuses["/cb"] = [400]
    _enqueue(factory, f"{base}/cb", 1)

    async def body(dispatcher: NotificationDispatcher) -> None:
        assert await dispatcher.run_once() == 1

    _with_dispatcher(factory, body)
    (row,) = _rows(factory)
    assert row.state == OutboxState.FAILED and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("HTTP 400")


def test_gives_up_after_max_attempts(
    factory: sessionmaker[Session], subscriber: tuple[Subscriber, str]
) -> None:
    state, base = subscriber
    state.statuses["/cb"] = [500] * 10
    _enqueue(factory, f"{base}/cb", 1)

    async def body(dispatcher: NotificationDispatcher) -> None:
        await _running(dispatcher, _all_settled(factory))

    _with_dispatcher(factory, body, poll_interval=0.02)
    (row,) = _rows(factory)
    assert row.state == OutboxState.FAILED and row.attempts == FAST.max_attempts
    assert row.last_error is not None and row.last_error.startswith("gave up after 3 attempts")
    assert len(state.bodies("/cb")) == 3


def test_a_new_dispatcher_delivers_what_was_enqueued_before_a_restart(
    db_url: str, subscriber: tuple[Subscriber, str]
) -> None:
    state, base = subscriber
    first = make_engine(db_url)
    _enqueue(make_session_factory(first), f"{base}/cb", 1, 2)
    first.dispose()  # the producing process is gone

    second = make_engine(db_url)
    try:
        factory = make_session_factory(second)

        async def body(dispatcher: NotificationDispatcher) -> None:
            await _running(dispatcher, _all_settled(factory))

        _with_dispatcher(factory, body, poll_interval=0.02)
        assert [r.state for r in _rows(factory)] == [OutboxState.DELIVERED] * 2
    finally:
        second.dispose()
    assert [b["seq"] for b in state.bodies("/cb")] == [1, 2]


def test_delivery_interrupted_by_a_crash_is_retried_after_the_lease(
    factory: sessionmaker[Session], subscriber: tuple[Subscriber, str]
) -> None:
    state, base = subscriber
    state.slow_seconds = 1.0
    _enqueue(factory, f"{base}/slow", 1)

    async def crash(dispatcher: NotificationDispatcher) -> None:
        task = asyncio.create_task(dispatcher.run_once())
        await asyncio.sleep(0.2)
        task.cancel()  # the process dies while the POST is in flight
        with pytest.raises(asyncio.CancelledError):
            await task

    _with_dispatcher(factory, crash, lease_seconds=0.8)
    assert _rows(factory)[0].state == OutboxState.PENDING
    state.slow_seconds = 0.0

    async def recover(dispatcher: NotificationDispatcher) -> None:
        assert await dispatcher.run_once() == 0  # still leased by the dead dispatcher
        await _running(dispatcher, _all_settled(factory))

    _with_dispatcher(factory, recover, poll_interval=0.05)
    (row,) = _rows(factory)
    assert row.state == OutboxState.DELIVERED and row.attempts == 2


def test_keeps_order_per_subscription(
    factory: sessionmaker[Session], subscriber: tuple[Subscriber, str]
) -> None:
    state, base = subscriber
    state.statuses["/a"] = [503, 503]
    _enqueue(factory, f"{base}/a", 1, 2, 3, sub="A")
    _enqueue(factory, f"{base}/b", 1, 2, sub="B")

    async def body(dispatcher: NotificationDispatcher) -> None:
        assert await dispatcher.run_once() == 2  # only the oldest of each subscription
        await _running(dispatcher, _all_settled(factory))

    _with_dispatcher(factory, body, poll_interval=0.02)
    assert [b["seq"] for b in state.bodies("/a")] == [1, 1, 1, 2, 3]
    assert [b["seq"] for b in state.bodies("/b")] == [1, 2]
    assert all(r.state == OutboxState.DELIVERED for r in _rows(factory))


def test_a_failed_notification_does_not_block_later_ones(
    factory: sessionmaker[Session], subscriber: tuple[Subscriber, str]
) -> None:
    state, base = subscriber
    state.statuses["/cb"] = [410]
    _enqueue(factory, f"{base}/cb", 1, 2)

    async def body(dispatcher: NotificationDispatcher) -> None:
        await _running(dispatcher, _all_settled(factory))

    _with_dispatcher(factory, body, poll_interval=0.02)
    assert [r.state for r in _rows(factory)] == [OutboxState.FAILED, OutboxState.DELIVERED]


def test_wake_from_another_thread_delivers_without_waiting_for_the_poll(
    factory: sessionmaker[Session], subscriber: tuple[Subscriber, str]
) -> None:
    state, base = subscriber

    async def body(dispatcher: NotificationDispatcher) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run_forever(stop))
        try:
            await asyncio.sleep(0.1)  # the loop is now idle for a long poll interval

            def produce() -> None:
                _enqueue(factory, f"{base}/cb", 1)
                dispatcher.wake()

            await asyncio.to_thread(produce)
            await _until(lambda: len(state.bodies("/cb")) == 1, timeout=2.0)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=5)

    _with_dispatcher(factory, body, poll_interval=30.0)


def test_cancel_pending_and_purge_delivered(
    factory: sessionmaker[Session], subscriber: tuple[Subscriber, str]
) -> None:
    _state, base = subscriber
    _enqueue(factory, f"{base}/cb", 1, sub="keep")
    _enqueue(factory, f"{base}/cb", 1, 2, sub="gone")
    with transaction(factory) as session:
        assert cancel_pending(session, "gone") == 2

    async def body(dispatcher: NotificationDispatcher) -> None:
        assert await dispatcher.run_once() == 1

    _with_dispatcher(factory, body)
    with transaction(factory) as session:
        assert purge_delivered(session, older_than=timedelta(hours=1)) == 0
        assert purge_delivered(session, older_than=timedelta(0)) == 1
    rows = _rows(factory)
    assert [(r.subscription_id, r.state, r.last_error) for r in rows] == [
        ("gone", OutboxState.FAILED, "subscription deleted"),
        ("gone", OutboxState.FAILED, "subscription deleted"),
    ]
