"""The rule-push protocol: the slow path drives a fast-path agent's flow table over TCP.

The slow path connects to the agent's rule-push port (it learns it from the
agent's REGISTER, see `vnfs.sdk.discovery`). Both directions carry frames:
a 16-byte header, then a body whose length the header gives.

    0 magic "RP"   2 version u8 (2)   3 op u8   4 seq u32   8 count u32   12 length u32
    (network order)

Requests (slow path -> agent) carry a sequence number the agent echoes in its
reply; the slow path may send many requests before reading replies
(pipelining). The agent handles requests in order, one reply each.

    op                 dir   count            body
    INSTALL 1          s->a  rules            count keys (16 B), then count actions (88 B)
    REMOVE 2           s->a  keys             count keys
    DUMP 3             s->a  0                empty
    COUNTERS 4         s->a  keys             count keys
    STATS 5            s->a  0                empty
    ACK 16             a->s  rules applied    empty
    ERROR 17           a->s  error code       UTF-8 text, at most 1024 bytes
    DUMP_CHUNK 18      a->s  rules            keys, then actions carrying their counters
    DUMP_END 19        a->s  rules in chunks  empty; ends the DUMP
    COUNTERS_REPLY 20  a->s  rules found      keys, then 32-byte counter records
    STATS_REPLY 21     a->s  u64s (>= 15)     count u64, see below
    EXPIRED 22         a->s  rules            unsolicited (seq 0): aged-out rules, keys
                                              then actions carrying their final counters

STATS_REPLY carries 15 u64 in version 1: GlobalCounters' first 13 fields
(rx_packets .. tx_bytes, in their order), table entries, table capacity. In
version 2, `count` u64: the same 15, then the counters GlobalCounters gained
since, in STATS_EXTRA's order (reinject_errors); a reader takes the ones it
knows and ignores the rest, so later versions only append.

Versions: the slow path sends version 2; the agent reads versions 1 and 2 and
answers each request in the request's version (a version-1 slow path keeps
working), and sends EXPIRED, which is the same in both, as version 1 until
the peer has shown its version. The two versions differ only in STATS_REPLY.
A version-1 agent refuses version-2 frames: update agents before slow paths.

A new flow's few rules do not need this connection when the datapath takes
INSTALL datagrams (REGISTER says so): the slow path sends them on the punt
link just ahead of the flow's re-injected packet (`vnfs.sdk.slowpath`), which
spares that packet a round trip through the agent. Everything else goes here.

Keys and actions use the `vnfs.sdk.encoding` layout.
An INSTALL body is exactly what `encode_rules` produces and what
`FastPathDriver.install_encoded` (a BPF batch update) takes, so the agent
does no per-rule work. Records are in host byte order like the BPF map;
REGISTER tells the slow path the agent's byte order.

Limits: at most 65536 records per frame (6.8 MB), error text 1024 bytes.
A header with a bad magic, version, op or length for its op breaks the
stream: the receiver answers ERROR with seq 0 (if it is the agent) and closes.
A request the agent cannot carry out (table full, driver error) gets an ERROR
with the request's seq and the connection stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, Protocol

from vnfs.sdk.driver import DriverError, GlobalCounters, TableFull
from vnfs.sdk.encoding import (
    ACTION_SIZE,
    KEY_SIZE,
    EncodingError,
    decode_key,
    encode_keys,
)

# The counter records' helpers live in vnfs.sdk.encoding (the drivers use them too);
# they stay importable from here.
from vnfs.sdk.encoding import COUNTERS as COUNTERS
from vnfs.sdk.encoding import decode_counters as decode_counters
from vnfs.sdk.encoding import encode_counters as encode_counters
from vnfs.sdk.encoding import encode_rules_with_counters as encode_rules_with_counters
from vnfs.sdk.flow import FlowKey, RuleCounters

log = logging.getLogger(__name__)

MAGIC = b"RP"
VERSION = 2
VERSIONS = frozenset({1, 2})
"""versions the agent and the client read"""
HEADER = struct.Struct("!2sBBIII")
RECORD_SIZE = KEY_SIZE + ACTION_SIZE
MAX_RECORDS = 65536
MAX_ERROR_TEXT = 1024
STATS_V1_COUNTERS = (
    "rx_packets", "rx_bytes", "hits", "misses", "punted", "punt_errors", "reinjected",
    "reinject_misses", "dropped", "passed_to_host", "forward_errors", "tx_packets", "tx_bytes",
)  # fmt: skip
"""the GlobalCounters fields a version-1 STATS_REPLY carries, in order"""
STATS_EXTRA = tuple(f.name for f in fields(GlobalCounters) if f.name not in STATS_V1_COUNTERS)
"""GlobalCounters fields version 2 appends after table entries and capacity"""
STATS_V1 = struct.Struct("=" + "Q" * (len(STATS_V1_COUNTERS) + 2))
STATS = struct.Struct("=" + "Q" * (len(STATS_V1_COUNTERS) + 2 + len(STATS_EXTRA)))
"""this version's STATS_REPLY body"""
MAX_STATS_VALUES = 255
DUMP_CHUNK_RECORDS = 4096
STREAM_LIMIT = 8 << 20
"""asyncio reader buffer high-water mark: a few full frames, so big batches do not stall"""


class Op(IntEnum):
    INSTALL = 1
    REMOVE = 2
    DUMP = 3
    COUNTERS = 4
    STATS = 5
    ACK = 16
    ERROR = 17
    DUMP_CHUNK = 18
    DUMP_END = 19
    COUNTERS_REPLY = 20
    STATS_REPLY = 21
    EXPIRED = 22


REQUESTS = frozenset({Op.INSTALL, Op.REMOVE, Op.DUMP, Op.COUNTERS, Op.STATS})


class ErrorCode(IntEnum):
    BAD_REQUEST = 1
    TABLE_FULL = 2
    DRIVER = 3
    UNSUPPORTED = 4
    INTERNAL = 5


class ProtocolError(Exception):
    """The byte stream is not valid rule-push framing; the connection is unusable."""


class RemoteError(Exception):
    """The agent refused a request (an ERROR reply)."""

    def __init__(self, code: int, message: str) -> None:
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = f"error {code}"
        super().__init__(f"{name}: {message}")
        self.code = code
        self.message = message


class TableFullError(RemoteError):
    """The fast path's flow table had no room for the batch."""


class ConnectionLost(ConnectionError):
    """The connection closed before the reply arrived."""


@dataclass(frozen=True, slots=True)
class Frame:
    op: Op
    seq: int
    count: int
    body: bytes
    version: int = VERSION


@dataclass(frozen=True, slots=True)
class TableStats:
    counters: GlobalCounters
    table_entries: int
    table_capacity: int


# --- framing -----------------------------------------------------------------------


def _expected_length(op: Op, count: int, length: int, version: int = VERSION) -> int | None:
    """The body length `op` with `count` records must have; None when only bounded."""
    if op in (Op.INSTALL, Op.DUMP_CHUNK, Op.EXPIRED):
        if not 1 <= count <= MAX_RECORDS:
            raise ProtocolError(f"{op.name} carries {count} rules, allowed 1..{MAX_RECORDS}")
        return count * RECORD_SIZE
    if op in (Op.REMOVE, Op.COUNTERS):
        if count > MAX_RECORDS:
            raise ProtocolError(f"{op.name} carries {count} keys, at most {MAX_RECORDS}")
        return count * KEY_SIZE
    if op == Op.COUNTERS_REPLY:
        if count > MAX_RECORDS:
            raise ProtocolError(f"{op.name} carries {count} records, at most {MAX_RECORDS}")
        return count * (KEY_SIZE + COUNTERS.size)
    if op == Op.STATS_REPLY:
        if version == 1:
            return STATS_V1.size
        if not STATS_V1.size // 8 <= count <= MAX_STATS_VALUES:
            raise ProtocolError(
                f"STATS_REPLY carries {count} values, allowed {STATS_V1.size // 8}.."
                f"{MAX_STATS_VALUES}"
            )
        return count * 8
    if op == Op.ERROR:
        if length > MAX_ERROR_TEXT:
            raise ProtocolError(f"ERROR text of {length} bytes exceeds {MAX_ERROR_TEXT}")
        return None
    return 0  # DUMP, STATS, ACK, DUMP_END


def parse_header(data: bytes) -> tuple[Op, int, int, int]:
    """(op, seq, count, body length) of a frame header; ProtocolError if it is invalid."""
    _, op, seq, count, length = parse_versioned_header(data)
    return op, seq, count, length


def parse_versioned_header(data: bytes) -> tuple[int, Op, int, int, int]:
    """(version, op, seq, count, body length) of a frame header; ProtocolError if invalid."""
    magic, version, raw_op, seq, count, length = HEADER.unpack(data)
    if magic != MAGIC:
        raise ProtocolError(f"bad frame magic {magic!r}")
    if version not in VERSIONS:
        raise ProtocolError(f"rule-push version {version}, expected one of {sorted(VERSIONS)}")
    try:
        op = Op(raw_op)
    except ValueError:
        raise ProtocolError(f"unknown op {raw_op}") from None
    expected = _expected_length(op, count, length, version)
    if expected is not None and length != expected:
        raise ProtocolError(
            f"{op.name} with count {count} must have a {expected}-byte body, header says {length}"
        )
    return version, op, seq, count, length


def frame(op: Op, seq: int, count: int, *parts: bytes, version: int = VERSION) -> list[bytes]:
    """Header and body parts of one frame, for `writelines` (no concatenation)."""
    length = sum(len(part) for part in parts)
    return [HEADER.pack(MAGIC, version, op, seq, count, length), *parts]


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """The next frame, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("connection closed inside a frame header") from None
        return None
    version, op, seq, count, length = parse_versioned_header(header)
    try:
        body = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError:
        raise ProtocolError(f"connection closed inside a {op.name} body") from None
    return Frame(op, seq, count, body, version)


def split_records(body: bytes, count: int) -> tuple[bytes, bytes]:
    """(keys, actions) of an INSTALL, DUMP_CHUNK or EXPIRED body."""
    cut = count * KEY_SIZE
    return body[:cut], body[cut:]


def encode_stats(stats: TableStats, version: int = VERSION) -> bytes:
    """A STATS_REPLY body; its count is the body's length / 8."""
    values = [getattr(stats.counters, name) for name in STATS_V1_COUNTERS]
    values += [stats.table_entries, stats.table_capacity]
    if version == 1:
        return STATS_V1.pack(*values)
    return STATS.pack(*values, *(getattr(stats.counters, name) for name in STATS_EXTRA))


def decode_stats(body: bytes) -> TableStats:
    """A STATS_REPLY body of either version: values this side does not know are ignored,
    counters the other side did not send are 0."""
    if len(body) % 8 or len(body) < STATS_V1.size:
        raise ProtocolError(f"a STATS_REPLY body of {len(body)} bytes")
    values = struct.unpack(f"={len(body) // 8}Q", body)
    first = len(STATS_V1_COUNTERS)
    counts = dict(zip(STATS_V1_COUNTERS, values, strict=False))
    counts |= dict(zip(STATS_EXTRA, values[first + 2 :], strict=False))
    return TableStats(GlobalCounters(**counts), values[first], values[first + 1])


def chunks(keys: bytes, actions: bytes, count: int) -> Iterator[tuple[bytes, bytes, int]]:
    """Split parallel key and action arrays into frames of at most MAX_RECORDS."""
    for first in range(0, count, MAX_RECORDS):
        last = min(first + MAX_RECORDS, count)
        yield (
            keys[first * KEY_SIZE : last * KEY_SIZE],
            actions[first * ACTION_SIZE : last * ACTION_SIZE],
            last - first,
        )


# --- agent side ----------------------------------------------------------------------


class RuleTable(Protocol):
    """What the rule-push server does with requests (the agent adapts its driver)."""

    def install(self, keys: bytes, actions: bytes, count: int) -> int: ...

    def remove(self, keys: bytes, count: int) -> int: ...

    def dump(self) -> Iterator[tuple[bytes, bytes, int]]:
        """Chunks of (keys, actions with counters, count)."""
        ...

    def counters(self, keys: bytes, count: int) -> tuple[bytes, bytes, int]:
        """(keys found, counter records, count)."""
        ...

    def stats(self) -> TableStats: ...


class AsyncRuleTable(ABC):
    """A RuleTable whose operations may wait (e.g. for a driver thread), so the event
    loop keeps serving while a big operation runs."""

    @abstractmethod
    async def install(self, keys: bytes, actions: bytes, count: int) -> int: ...

    @abstractmethod
    async def remove(self, keys: bytes, count: int) -> int: ...

    @abstractmethod
    def dump(self) -> AsyncIterator[tuple[bytes, bytes, int]]:
        """Chunks of (keys, actions with counters, count)."""

    @abstractmethod
    async def counters(self, keys: bytes, count: int) -> tuple[bytes, bytes, int]:
        """(keys found, counter records, count)."""

    @abstractmethod
    async def stats(self) -> TableStats: ...


class _Inline(AsyncRuleTable):
    """A plain RuleTable, called on the event loop's thread."""

    def __init__(self, table: RuleTable) -> None:
        self.table = table

    async def install(self, keys: bytes, actions: bytes, count: int) -> int:
        return self.table.install(keys, actions, count)

    async def remove(self, keys: bytes, count: int) -> int:
        return self.table.remove(keys, count)

    async def dump(self) -> AsyncIterator[tuple[bytes, bytes, int]]:
        for chunk in self.table.dump():
            yield chunk

    async def counters(self, keys: bytes, count: int) -> tuple[bytes, bytes, int]:
        return self.table.counters(keys, count)

    async def stats(self) -> TableStats:
        return self.table.stats()


@dataclass
class _Session:
    writer: asyncio.StreamWriter
    peer: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    version: int = 1
    """the peer's version, from its requests: what unsolicited frames use (1 until known)"""


class RulePushServer:
    """The agent's end: one slow path at a time; a newer connection replaces an older one.

    Requests are handled one after the other. A plain RuleTable runs on the event
    loop's thread; an AsyncRuleTable decides where its work runs. `lock` is held
    while a DUMP streams, so a caller that changes the table behind the server's
    back (the aging loop) can wait for a consistent iteration.
    """

    def __init__(
        self,
        table: RuleTable | AsyncRuleTable,
        *,
        lock: asyncio.Lock | None = None,
        max_pending_expired: int = 1 << 20,
    ) -> None:
        self.table = table
        self._table = table if isinstance(table, AsyncRuleTable) else _Inline(table)
        self.lock = lock or asyncio.Lock()
        self.max_pending_expired = max_pending_expired
        self._server: asyncio.Server | None = None
        self._session: _Session | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._pending: deque[tuple[bytes, bytes, int]] = deque()
        self._pending_records = 0
        self.expired_dropped = 0
        """aged-out rules that could not be reported (no slow path for too long)"""
        self.requests = 0
        self.installed = 0
        self.removed = 0

    @property
    def connected(self) -> bool:
        return self._session is not None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the rule-push server is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(
            self._accept, host, port, limit=STREAM_LIMIT, reuse_address=True
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Closing the transports ends the sessions (their reads see the end of stream);
        # cancelling the tasks instead makes asyncio's stream callback log the cancellation.
        for writer in list(self._writers):
            writer.close()
        if self._sessions:
            await asyncio.wait(list(self._sessions), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def send_expired(self, keys: bytes, actions: bytes, count: int) -> None:
        """Report aged-out rules; kept (bounded) until a slow path is connected."""
        if count == 0:
            return
        self._pending.extend(chunks(keys, actions, count))
        self._pending_records += count
        while self._pending_records > self.max_pending_expired and self._pending:
            _, _, dropped = self._pending.popleft()
            self._pending_records -= dropped
            self.expired_dropped += dropped
        self._flush_expired()

    def _flush_expired(self) -> None:
        session = self._session
        if session is None or session.writer.is_closing():
            return
        while self._pending:
            keys, actions, count = self._pending.popleft()
            self._pending_records -= count
            session.writer.writelines(
                frame(Op.EXPIRED, 0, count, keys, actions, version=session.version)
            )

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        self._writers.add(writer)
        peer = "{}:{}".format(*writer.get_extra_info("peername")[:2])
        previous = self._session
        session = _Session(writer, peer)
        self._session = session
        if previous is not None:
            log.info("slow path %s replaces %s on the rule-push port", peer, previous.peer)
            previous.writer.close()
        else:
            log.info("slow path %s connected to the rule-push port", peer)
        try:
            self._flush_expired()
            await self._serve(reader, session)
        except ProtocolError as exc:
            log.warning("rule-push connection from %s: %s; closing it", peer, exc)
            writer.writelines(
                frame(Op.ERROR, 0, ErrorCode.BAD_REQUEST, _text(str(exc)), version=session.version)
            )
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if self._session is session:
                self._session = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._sessions.discard(task)
            self._writers.discard(writer)
            log.info("slow path %s disconnected from the rule-push port", peer)

    async def _serve(self, reader: asyncio.StreamReader, session: _Session) -> None:
        writer = session.writer
        while (request := await read_frame(reader)) is not None:
            if request.op not in REQUESTS:
                raise ProtocolError(f"{request.op.name} is not a request")
            self.requests += 1
            session.version = request.version
            if request.op == Op.DUMP:
                await self._dump(request.seq, writer, request.version)
            else:
                writer.writelines(await self._answer(request))
            await writer.drain()

    async def _answer(self, request: Frame) -> list[bytes]:
        seq, count, version = request.seq, request.count, request.version
        try:
            if request.op == Op.INSTALL:
                keys, actions = split_records(request.body, count)
                applied = await self._table.install(keys, actions, count)
                self.installed += applied
                return frame(Op.ACK, seq, applied, version=version)
            if request.op == Op.REMOVE:
                removed = await self._table.remove(request.body, count)
                self.removed += removed
                return frame(Op.ACK, seq, removed, version=version)
            if request.op == Op.COUNTERS:
                keys, records, found = await self._table.counters(request.body, count)
                return frame(Op.COUNTERS_REPLY, seq, found, keys, records, version=version)
            if request.op == Op.STATS:
                body = encode_stats(await self._table.stats(), version)
                return frame(Op.STATS_REPLY, seq, len(body) // 8, body, version=version)
        except TableFull as exc:
            return frame(Op.ERROR, seq, ErrorCode.TABLE_FULL, _text(str(exc)), version=version)
        except DriverError as exc:
            return frame(Op.ERROR, seq, ErrorCode.DRIVER, _text(str(exc)), version=version)
        except (EncodingError, ValueError) as exc:
            return frame(Op.ERROR, seq, ErrorCode.BAD_REQUEST, _text(str(exc)), version=version)
        except Exception as exc:  # a driver bug must not take the agent down with it
            log.exception("rule-push %s failed", request.op.name)
            text = _text(f"{type(exc).__name__}: {exc}")
            return frame(Op.ERROR, seq, ErrorCode.INTERNAL, text, version=version)
        text = _text(f"{request.op.name}")
        return frame(Op.ERROR, seq, ErrorCode.UNSUPPORTED, text, version=version)

    async def _dump(self, seq: int, writer: asyncio.StreamWriter, version: int) -> None:
        total = 0
        async with self.lock:
            try:
                async for keys, actions, count in self._table.dump():
                    writer.writelines(
                        frame(Op.DUMP_CHUNK, seq, count, keys, actions, version=version)
                    )
                    total += count
                    await writer.drain()
            except (DriverError, EncodingError) as exc:
                text = _text(str(exc))
                writer.writelines(frame(Op.ERROR, seq, ErrorCode.DRIVER, text, version=version))
                return
        writer.writelines(frame(Op.DUMP_END, seq, total, version=version))


def _text(message: str) -> bytes:
    data = message.encode("utf-8", errors="replace")
    if len(data) <= MAX_ERROR_TEXT:
        return data
    return data[: MAX_ERROR_TEXT - 3].decode("utf-8", errors="ignore").encode() + b"..."


# --- slow-path side ----------------------------------------------------------------


ExpiredCallback = Callable[[bytes, bytes, int], None]


@dataclass
class _Request:
    op: Op
    future: asyncio.Future[Any]
    chunks: list[tuple[bytes, bytes, int]] = field(default_factory=list)


_REPLIES: Mapping[Op, frozenset[Op]] = {
    Op.INSTALL: frozenset({Op.ACK}),
    Op.REMOVE: frozenset({Op.ACK}),
    Op.DUMP: frozenset({Op.DUMP_CHUNK, Op.DUMP_END}),
    Op.COUNTERS: frozenset({Op.COUNTERS_REPLY}),
    Op.STATS: frozenset({Op.STATS_REPLY}),
}


class RulePushClient:
    """The slow path's end of one agent connection; requests may be pipelined.

    `submit_*` send a request and return a future of its reply without waiting
    for it (they only wait while the socket's send buffer is full); the plain
    methods wait for the reply. Replies come back in request order.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_expired: ExpiredCallback | None = None,
        name: str = "",
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.on_expired = on_expired
        self.name = name or "{}:{}".format(*writer.get_extra_info("peername")[:2])
        self._seq = 0
        self._requests: dict[int, _Request] = {}
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reader_task = asyncio.create_task(self._read_replies(), name=f"rulepush {self.name}")

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        timeout: float = 3.0,
        on_expired: ExpiredCallback | None = None,
        local_address: str | None = None,
    ) -> RulePushClient:
        local = (local_address, 0) if local_address else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=STREAM_LIMIT, local_addr=local), timeout
        )
        return cls(reader, writer, on_expired=on_expired, name=f"{host}:{port}")

    @property
    def closed(self) -> bool:
        return self._closed.done()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    async def close(self) -> None:
        self._writer.close()
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader_task
        self._fail_all(ConnectionLost(f"rule-push connection to {self.name} closed"))

    # requests

    async def submit_install(self, keys: bytes, actions: bytes, count: int) -> asyncio.Future[int]:
        """Send one INSTALL batch (at most MAX_RECORDS rules); the future gives rules applied."""
        if not 1 <= count <= MAX_RECORDS:
            raise ValueError(f"an INSTALL carries 1..{MAX_RECORDS} rules, not {count}")
        if len(keys) != count * KEY_SIZE or len(actions) != count * ACTION_SIZE:
            raise ValueError(f"keys and actions are not {count} records")
        return await self._submit(Op.INSTALL, count, keys, actions)

    async def install(self, keys: bytes, actions: bytes, count: int) -> int:
        return await (await self.submit_install(keys, actions, count))

    async def submit_remove(self, keys: bytes) -> asyncio.Future[int]:
        count, remainder = divmod(len(keys), KEY_SIZE)
        if remainder or count > MAX_RECORDS:
            raise ValueError(f"a REMOVE carries up to {MAX_RECORDS} whole {KEY_SIZE}-byte keys")
        return await self._submit(Op.REMOVE, count, keys)

    async def remove(self, keys: Sequence[FlowKey]) -> int:
        removed = 0
        for first in range(0, len(keys), MAX_RECORDS):
            future = await self.submit_remove(encode_keys(keys[first : first + MAX_RECORDS]))
            removed += await future
        return removed

    async def dump(self) -> list[tuple[bytes, bytes, int]]:
        """The agent's whole table as (keys, actions with counters, count) chunks."""
        future = await self._submit(Op.DUMP, 0)
        result = await future
        assert isinstance(result, list)
        return result

    async def counters(self, keys: Sequence[FlowKey]) -> dict[FlowKey, RuleCounters]:
        found: dict[FlowKey, RuleCounters] = {}
        for first in range(0, len(keys), MAX_RECORDS):
            batch = encode_keys(keys[first : first + MAX_RECORDS])
            future = await self._submit(Op.COUNTERS, len(batch) // KEY_SIZE, batch)
            reply = await future
            assert isinstance(reply, Frame)
            cut = reply.count * KEY_SIZE
            view = memoryview(reply.body)
            for index in range(reply.count):
                key = decode_key(view[index * KEY_SIZE : (index + 1) * KEY_SIZE])
                offset = cut + index * COUNTERS.size
                found[key] = decode_counters(view[offset : offset + COUNTERS.size])
        return found

    async def stats(self) -> TableStats:
        future = await self._submit(Op.STATS, 0)
        result = await future
        assert isinstance(result, TableStats)
        return result

    async def _submit(self, op: Op, count: int, *parts: bytes) -> asyncio.Future[Any]:
        if self._closed.done():
            raise ConnectionLost(f"rule-push connection to {self.name} is closed")
        self._seq = self._seq % 0xFFFFFFFF + 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._requests[self._seq] = _Request(op, future)
        self._writer.writelines(frame(op, self._seq, count, *parts))
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            self._fail_all(ConnectionLost(f"rule-push connection to {self.name}: {exc}"))
        return future

    # replies

    async def _read_replies(self) -> None:
        error: Exception = ConnectionLost(f"rule-push connection to {self.name} closed")
        try:
            while (reply := await read_frame(self._reader)) is not None:
                self._dispatch(reply)
        except ProtocolError as exc:
            log.warning("rule-push connection to %s: %s", self.name, exc)
            error = ConnectionLost(f"rule-push connection to {self.name}: {exc}")
        except ConnectionError as exc:
            error = ConnectionLost(f"rule-push connection to {self.name}: {exc}")
        finally:
            self._writer.close()
            self._fail_all(error)

    def _dispatch(self, reply: Frame) -> None:
        if reply.op == Op.EXPIRED:
            if self.on_expired is not None:
                keys, actions = split_records(reply.body, reply.count)
                self.on_expired(keys, actions, reply.count)
            return
        if reply.op in REQUESTS:
            raise ProtocolError(f"the agent sent a {reply.op.name} request")
        if reply.op == Op.ERROR and reply.seq == 0:
            text = reply.body.decode("utf-8", errors="replace")
            raise ProtocolError(f"the agent rejected the stream: {text}")
        request = self._requests.get(reply.seq)
        if request is None:
            raise ProtocolError(f"{reply.op.name} answers unknown request {reply.seq}")
        if reply.op == Op.ERROR:
            del self._requests[reply.seq]
            text = reply.body.decode("utf-8", errors="replace")
            kind = TableFullError if reply.count == ErrorCode.TABLE_FULL else RemoteError
            _settle(request.future, error=kind(reply.count, text))
            return
        if reply.op not in _REPLIES[request.op]:
            raise ProtocolError(f"{reply.op.name} cannot answer {request.op.name}")
        if reply.op == Op.DUMP_CHUNK:
            keys, actions = split_records(reply.body, reply.count)
            request.chunks.append((keys, actions, reply.count))
            return
        del self._requests[reply.seq]
        if reply.op == Op.ACK:
            _settle(request.future, reply.count)
        elif reply.op == Op.DUMP_END:
            total = sum(count for _, _, count in request.chunks)
            if total != reply.count:
                raise ProtocolError(f"DUMP_END says {reply.count} rules, chunks carried {total}")
            _settle(request.future, request.chunks)
        elif reply.op == Op.STATS_REPLY:
            _settle(request.future, decode_stats(reply.body))
        else:
            _settle(request.future, reply)

    def _fail_all(self, error: Exception) -> None:
        requests, self._requests = self._requests, {}
        for request in requests.values():
            _settle(request.future, error=error)
        if not self._closed.done():
            self._closed.set_result(None)


def _settle(
    future: asyncio.Future[Any], value: object = None, *, error: Exception | None = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
        # Nobody may be waiting (a pipelined batch whose caller gave up); do not log that.
        future.add_done_callback(_consume)
    else:
        future.set_result(value)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
