"""The bpf(2) system call through ctypes: map elements, map batches, object info.

Only what the flow-table driver needs. A failed command raises `BpfError` (a
DriverError) naming the command and the kernel's errno text; an update that
finds a hash map full raises `BpfTableFull` (also a TableFull). Batch errors
carry how many elements were processed before the failure.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from vnfs.sdk.driver import DriverError, TableFull

_SYSCALL_NUMBERS = {"x86_64": 321, "aarch64": 280}
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

Buffer = bytes | bytearray | memoryview


class Cmd(IntEnum):
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    PROG_TEST_RUN = 10
    OBJ_GET_INFO_BY_FD = 15
    MAP_LOOKUP_BATCH = 24
    MAP_UPDATE_BATCH = 26
    MAP_DELETE_BATCH = 27


BPF_ANY = 0
BPF_OBJ_NAME_LEN = 16


class BpfError(DriverError):
    """A bpf() command failed with `error` (an errno) after `done` batch elements."""

    def __init__(self, message: str, error: int, done: int = 0) -> None:
        super().__init__(message)
        self.error = error
        self.done = done


class BpfTableFull(BpfError, TableFull):
    """An update found the hash map full (E2BIG) or the kernel out of memory (ENOMEM)."""


class _ElemAttr(ctypes.Structure):
    _fields_ = (
        ("map_fd", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    )


class _BatchAttr(ctypes.Structure):
    _fields_ = (
        ("in_batch", ctypes.c_uint64),
        ("out_batch", ctypes.c_uint64),
        ("keys", ctypes.c_uint64),
        ("values", ctypes.c_uint64),
        ("count", ctypes.c_uint32),
        ("map_fd", ctypes.c_uint32),
        ("elem_flags", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    )


class _TestRunAttr(ctypes.Structure):
    _fields_ = (
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
    )


class _InfoAttr(ctypes.Structure):
    _fields_ = (
        ("bpf_fd", ctypes.c_uint32),
        ("info_len", ctypes.c_uint32),
        ("info", ctypes.c_uint64),
    )


class _MapInfo(ctypes.Structure):
    # The leading fields of struct bpf_map_info; the kernel fills what fits.
    _fields_ = (
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
    )


class _ProgInfo(ctypes.Structure):
    # The leading fields of struct bpf_prog_info, up to its name.
    _fields_ = (
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32),
        ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64),
        ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64),
        ("created_by_uid", ctypes.c_uint32),
        ("nr_map_ids", ctypes.c_uint32),
        ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
    )


def _syscall_number() -> int:
    machine = platform.machine()
    if machine not in _SYSCALL_NUMBERS:
        raise DriverError(f"the bpf() system call number on {machine} is not known")
    return _SYSCALL_NUMBERS[machine]


_NR_BPF = _syscall_number()


def bpf(cmd: Cmd, attr: ctypes.Structure, what: str, done: int = 0) -> int:
    """Run one bpf() command; `what` names the operation in error messages."""
    result = int(_libc.syscall(_NR_BPF, int(cmd), ctypes.byref(attr), ctypes.sizeof(attr)))
    if result < 0:
        code = ctypes.get_errno()
        raise BpfError(f"{what}: {os.strerror(code)}", code, done)
    return result


class Pinned:
    """The address of a buffer's bytes, valid while this object lives.

    bytes and writable buffers are used in place; a read-only view is copied.
    """

    __slots__ = ("_keep", "address", "size")

    def __init__(self, buffer: Buffer) -> None:
        self._keep: Any
        if isinstance(buffer, bytes):
            pointer = ctypes.c_char_p(buffer)
            self.address = ctypes.cast(pointer, ctypes.c_void_p).value or 0
            self.size = len(buffer)
            self._keep = (buffer, pointer)
            return
        view = memoryview(buffer).cast("B")
        if view.readonly:
            view = memoryview(bytearray(view))
        array = (ctypes.c_char * view.nbytes).from_buffer(view)
        self.address = ctypes.addressof(array)
        self.size = view.nbytes
        self._keep = (view, array)


@dataclass(frozen=True, slots=True)
class MapInfo:
    id: int
    type: int
    name: str
    key_size: int
    value_size: int
    max_entries: int


def map_info(fd: int) -> MapInfo:
    info = _MapInfo()
    attr = _InfoAttr(fd, ctypes.sizeof(info), ctypes.addressof(info))
    bpf(Cmd.OBJ_GET_INFO_BY_FD, attr, "map info")
    return MapInfo(
        info.id,
        info.type,
        info.name.decode(errors="replace"),
        info.key_size,
        info.value_size,
        info.max_entries,
    )


def prog_id(fd: int) -> int:
    info = _ProgInfo()
    attr = _InfoAttr(fd, ctypes.sizeof(info), ctypes.addressof(info))
    bpf(Cmd.OBJ_GET_INFO_BY_FD, attr, "program info")
    return int(info.id)


def test_run(prog_fd: int, data: bytes, what: str) -> int:
    """Run a program once on `data` (BPF_PROG_TEST_RUN); returns its return value."""
    pinned = Pinned(data)
    attr = _TestRunAttr(prog_fd=prog_fd, data_size_in=pinned.size, data_in=pinned.address, repeat=1)
    bpf(Cmd.PROG_TEST_RUN, attr, what)
    return int(attr.retval)


def possible_cpus(path: Path = Path("/sys/devices/system/cpu/possible")) -> int:
    """How many CPUs per-CPU maps hold a value for (the kernel's possible CPUs)."""
    count = 0
    for part in path.read_text().strip().split(","):
        first, _, last = part.partition("-")
        count += int(last or first) - int(first) + 1
    return count


class Map:
    """One BPF map by file descriptor (owned by the caller)."""

    def __init__(self, fd: int, name: str) -> None:
        info = map_info(fd)
        self.fd = fd
        self.name = name
        self.id = info.id
        self.key_size = info.key_size
        self.value_size = info.value_size
        self.max_entries = info.max_entries

    def _check(self, key: Buffer, value: Buffer | None = None) -> None:
        if len(memoryview(key).cast("B")) != self.key_size:
            raise DriverError(f"map {self.name}: a key is {self.key_size} bytes")
        if value is not None and len(memoryview(value).cast("B")) != self.value_size:
            raise DriverError(f"map {self.name}: a value is {self.value_size} bytes")

    def lookup(self, key: Buffer, value_size: int | None = None) -> bytes | None:
        """The value of `key`, or None; `value_size` for per-CPU maps (all CPUs' values)."""
        self._check(key)
        out = ctypes.create_string_buffer(value_size or self.value_size)
        pinned = Pinned(key)
        attr = _ElemAttr(self.fd, pinned.address, ctypes.addressof(out), 0)
        try:
            bpf(Cmd.MAP_LOOKUP_ELEM, attr, f"lookup in map {self.name}")
        except BpfError as exc:
            if exc.error == errno.ENOENT:
                return None
            raise
        return out.raw

    def update(self, key: Buffer, value: Buffer, flags: int = BPF_ANY) -> None:
        self._check(key, value)
        pinned_key, pinned_value = Pinned(key), Pinned(value)
        attr = _ElemAttr(self.fd, pinned_key.address, pinned_value.address, flags)
        try:
            bpf(Cmd.MAP_UPDATE_ELEM, attr, f"update of map {self.name}")
        except BpfError as exc:
            raise _full_or(exc) from None

    def delete(self, key: Buffer) -> bool:
        self._check(key)
        pinned = Pinned(key)
        attr = _ElemAttr(self.fd, pinned.address, 0, 0)
        try:
            bpf(Cmd.MAP_DELETE_ELEM, attr, f"delete from map {self.name}")
        except BpfError as exc:
            if exc.error == errno.ENOENT:
                return False
            raise
        return True

    def update_batch(self, keys: Buffer, values: Buffer, count: int, chunk: int = 8192) -> int:
        """Add or replace `count` elements from packed key and value arrays, `chunk` per call."""
        pinned_keys, pinned_values = Pinned(keys), Pinned(values)
        self._check_arrays(pinned_keys, pinned_values, count)
        done = 0
        while done < count:
            n = min(chunk, count - done)
            attr = _BatchAttr(
                keys=pinned_keys.address + done * self.key_size,
                values=pinned_values.address + done * self.value_size,
                count=n,
                map_fd=self.fd,
                elem_flags=BPF_ANY,
            )
            try:
                bpf(Cmd.MAP_UPDATE_BATCH, attr, f"batch update of map {self.name}")
            except BpfError as exc:
                exc.done = done + attr.count
                exc.args = (f"{exc.args[0]} after {exc.done} of {count} elements",)
                raise _full_or(exc) from None
            done += n
        return done

    def delete_batch(self, keys: Buffer, count: int, chunk: int = 8192) -> int:
        """Delete `count` keys from a packed array; absent keys are skipped. Returns deletions."""
        pinned = Pinned(keys)
        if pinned.size != count * self.key_size:
            raise DriverError(f"map {self.name}: {pinned.size} bytes are not {count} keys")
        position = deleted = 0
        while position < count:
            n = min(chunk, count - position)
            attr = _BatchAttr(
                keys=pinned.address + position * self.key_size, count=n, map_fd=self.fd
            )
            try:
                bpf(Cmd.MAP_DELETE_BATCH, attr, f"batch delete from map {self.name}")
            except BpfError as exc:
                # The kernel stops at the first absent key: count what went, skip that key.
                if exc.error != errno.ENOENT:
                    raise
                deleted += attr.count
                position += attr.count + 1
                continue
            deleted += n
            position += n
        return deleted

    def dump(self, chunk: int = 16384) -> Iterator[tuple[bytes, bytes, int]]:
        """Every element, as (packed keys, packed values, count) chunks."""
        size = max(chunk, 1)
        keys = ctypes.create_string_buffer(size * self.key_size)
        values = ctypes.create_string_buffer(size * self.value_size)
        # Hash maps use a bucket number as the batch token; key_size bytes fit any map.
        tokens = [ctypes.create_string_buffer(8 + self.key_size) for _ in range(2)]
        first = True
        while True:
            attr = _BatchAttr(
                in_batch=0 if first else ctypes.addressof(tokens[0]),
                out_batch=ctypes.addressof(tokens[1]),
                keys=ctypes.addressof(keys),
                values=ctypes.addressof(values),
                count=size,
                map_fd=self.fd,
            )
            finished = False
            try:
                bpf(Cmd.MAP_LOOKUP_BATCH, attr, f"batch lookup in map {self.name}")
            except BpfError as exc:
                if exc.error == errno.ENOSPC and attr.count == 0:
                    # One bucket holds more elements than a chunk: retry with room for them.
                    size *= 2
                    keys = ctypes.create_string_buffer(size * self.key_size)
                    values = ctypes.create_string_buffer(size * self.value_size)
                    continue
                if exc.error != errno.ENOENT:
                    raise
                finished = True
            n = int(attr.count)
            if n:
                yield keys.raw[: n * self.key_size], values.raw[: n * self.value_size], n
            if finished:
                return
            ctypes.memmove(tokens[0], tokens[1], ctypes.sizeof(tokens[1]))
            first = False

    def read_array(self, count: int) -> bytes:
        """The values of indexes 0..count-1 of an array map, packed."""
        if count <= 0:
            return b""
        indexes = ctypes.create_string_buffer(count * self.key_size)
        values = ctypes.create_string_buffer(count * self.value_size)
        token = ctypes.create_string_buffer(8)
        attr = _BatchAttr(
            out_batch=ctypes.addressof(token),
            keys=ctypes.addressof(indexes),
            values=ctypes.addressof(values),
            count=count,
            map_fd=self.fd,
        )
        bpf(Cmd.MAP_LOOKUP_BATCH, attr, f"batch lookup in map {self.name}")
        if attr.count != count:
            raise DriverError(f"map {self.name}: read {attr.count} of {count} elements")
        return values.raw

    def count(self, chunk: int = 65536) -> int:
        """How many elements the map holds (a full batch walk)."""
        return sum(n for _, _, n in self.dump(chunk))

    def _check_arrays(self, keys: Pinned, values: Pinned, count: int) -> None:
        if keys.size != count * self.key_size or values.size != count * self.value_size:
            raise DriverError(
                f"map {self.name}: {keys.size} bytes of keys and {values.size} bytes of values "
                f"are not {count} elements of {self.key_size} + {self.value_size} bytes"
            )


def _full_or(exc: BpfError) -> BpfError:
    if exc.error in (errno.E2BIG, errno.ENOMEM):
        return BpfTableFull(f"{exc.args[0]} (the table is full)", exc.error, exc.done)
    return exc
