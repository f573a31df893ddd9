"""Pipelined calls to VPP's binary API through vpp_papi.

vpp_papi's synchronous mode sends one message and blocks for its reply, so a
batch costs one socket round trip per message. Its asynchronous mode
(`VPPApiClient.connect(..., do_async=True)`) only writes the request and
hands every message VPP sends to the registered event callback, from
vpp_papi's reader thread. `VppConnection` builds on that mode: it keeps up to
`window` requests in flight, matches replies to requests by their context,
and ends a dump at the `control_ping_reply` it sends after the request, as
vpp_papi does itself in synchronous mode.

vpp_papi is imported only when a connection is made (`papi_client`): the SDK
must import without it, and the driver says in one line what is missing.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from vnfs.sdk.driver import DriverError
from vnfs.sdk.vpp.settings import VppSettings

PING = "control_ping"
PING_REPLY = "control_ping_reply"


class ApiClient(Protocol):
    """The part of `vpp_papi.VPPApiClient` the driver uses (tests put a fake here)."""

    @property
    def api(self) -> Any: ...

    def connect(
        self, name: str, chroot_prefix: str | None = None, do_async: bool = False, rx_qlen: int = 32
    ) -> int: ...

    def disconnect(self) -> object: ...

    def register_event_callback(self, callback: Callable[[str, Any], None] | None) -> None: ...


ClientFactory = Callable[[VppSettings], ApiClient]


class VppUnreachable(DriverError):
    """The API socket failed or VPP stopped answering; the connection is closed."""


class VppCallError(DriverError):
    """VPP answered a request with a negative retval."""

    def __init__(self, message: str, retval: int) -> None:
        super().__init__(message)
        self.retval = retval


def papi_client(settings: VppSettings) -> ApiClient:
    """A vpp_papi client for `settings` (not yet connected)."""
    try:
        papi = importlib.import_module("vpp_papi")
    except ImportError:
        raise DriverError(
            "the vpp datapath needs vpp_papi, which is not installed (pip install 'nfv-mano[vpp]')"
        ) from None
    options: dict[str, Any] = {
        "server_address": str(settings.api_socket),
        "read_timeout": settings.timeout,
        "use_socket": True,
        "async_thread": False,
    }
    if settings.api_dir is None:
        options["bootstrapapi"] = True
    else:
        options["apidir"] = [str(settings.api_dir)]
    try:
        client: ApiClient = papi.VPPApiClient(**options)
    except (OSError, RuntimeError, ValueError) as exc:
        where = settings.api_dir or "VPP (get_api_json)"
        raise DriverError(f"cannot load VPP's API definitions from {where}: {exc}") from None
    return client


@dataclass(slots=True)
class _Pending:
    name: str
    stream: bool
    messages: list[Any] = field(default_factory=list)
    done: bool = False


class VppConnection:
    """One API connection. Calls come from one thread; replies arrive on vpp_papi's."""

    def __init__(self, settings: VppSettings, factory: ClientFactory = papi_client) -> None:
        self.settings = settings
        self._factory = factory
        self._client: ApiClient | None = None
        self._lock = threading.Condition()
        self._pending: dict[int, _Pending] = {}
        self.vpe_pid: int | None = None
        self.calls = 0
        self._context = 0

    @property
    def connected(self) -> bool:
        return self._client is not None

    def open(self) -> int:
        """Connect; returns VPP's process id (it changes when VPP restarts)."""
        self.close()
        client = self._factory(self.settings)
        client.register_event_callback(self._on_message)
        try:
            client.connect(self.settings.client_name, do_async=True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise VppUnreachable(
                f"cannot connect to VPP at {self.settings.api_socket}: {exc}"
            ) from None
        self._client = client
        reply = self.call(PING)
        self.vpe_pid = int(reply.vpe_pid)
        return self.vpe_pid

    def close(self) -> None:
        client, self._client = self._client, None
        with self._lock:
            self._pending.clear()
        if client is None:
            return
        client.register_event_callback(None)
        # When VPP is gone already there is nothing left to release on its side.
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            client.disconnect()

    # vpp_papi's reader thread

    def _on_message(self, name: str, message: Any) -> None:
        context = getattr(message, "context", 0)
        with self._lock:
            pending = self._pending.get(context)
            if pending is None or pending.done:
                return  # an event, or a reply to a request given up on
            pending.messages.append(message)
            if not pending.stream or name == PING_REPLY:
                pending.done = True
                self._lock.notify_all()

    # requests

    def _send(self, name: str, fields: Mapping[str, Any], stream: bool) -> int:
        client = self._client
        if client is None:
            raise VppUnreachable(f"not connected to VPP at {self.settings.api_socket}")
        try:
            function = getattr(client.api, name)
        except AttributeError:
            raise DriverError(
                f"VPP has no API message {name} (plugin not loaded, or another VPP version)"
            ) from None
        # Our own context, registered before sending: the reply may come first.
        context = self._next_context()
        with self._lock:
            self._pending[context] = _Pending(name, stream)
        try:
            function(context=context, **fields)
            if stream:
                client.api.control_ping(context=context)
        except (OSError, RuntimeError) as exc:
            self._broken(f"sending {name}: {exc}")
        except (TypeError, ValueError, KeyError) as exc:
            with self._lock:
                self._pending.pop(context, None)
            raise DriverError(f"{name}: VPP's API rejects the fields: {exc}") from None
        self.calls += 1
        return context

    def _next_context(self) -> int:
        self._context = self._context % 0xFFFFFFFF + 1
        return self._context

    def _wait(self, context: int) -> _Pending:
        deadline = time.monotonic() + self.settings.timeout
        with self._lock:
            while True:
                pending = self._pending.get(context)
                if pending is None:
                    raise VppUnreachable("the connection to VPP was closed")
                if pending.done:
                    del self._pending[context]
                    return pending
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
        self._broken(f"no reply to {pending.name} within {self.settings.timeout:g} s")

    def _broken(self, why: str) -> NoReturn:
        self.close()
        raise VppUnreachable(f"VPP at {self.settings.api_socket}: {why}")

    @staticmethod
    def _checked(name: str, reply: Any) -> Any:
        retval = getattr(reply, "retval", 0)
        if retval < 0:
            raise VppCallError(f"{name} failed with retval {retval}", retval)
        return reply

    def call(self, name: str, **fields: Any) -> Any:
        """Send one request and return its reply; VppCallError if retval < 0."""
        pending = self._wait(self._send(name, fields, stream=False))
        return self._checked(name, pending.messages[0])

    def call_many(
        self, requests: Iterable[tuple[str, Mapping[str, Any]]], *, check: bool = True
    ) -> list[Any]:
        """Send requests with up to `window` in flight; replies in request order.

        With check=False a failed request's reply is returned like any other,
        so the caller can tell which of a batch failed and undo the others.
        """
        window = self.settings.window
        names: list[str] = []
        in_flight: deque[int] = deque()
        replies: list[Any] = []
        for name, fields in requests:
            if len(in_flight) >= window:
                replies.append(self._wait(in_flight.popleft()).messages[0])
            in_flight.append(self._send(name, fields, stream=False))
            names.append(name)
        while in_flight:
            replies.append(self._wait(in_flight.popleft()).messages[0])
        if check:
            for name, reply in zip(names, replies, strict=True):
                self._checked(name, reply)
        return replies

    def dump(self, name: str, **fields: Any) -> list[Any]:
        """The details messages VPP sends for one *_dump request."""
        pending = self._wait(self._send(name, fields, stream=True))
        *details, ping = pending.messages
        self._checked(PING, ping)
        return details
