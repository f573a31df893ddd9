"""Load the datapath object and attach it to tc hooks, with libbpf.so.1 through ctypes.

`BpfObject` opens the ELF object, sizes maps, loads (verifies) it and hands out
map and program descriptors. `TcFilter` attaches a program as a direct-action
filter on an interface's clsact ingress hook and detaches it again. tc hooks
live in the calling thread's network namespace: the driver calls these inside
the namespace it pinned.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from vnfs.sdk.driver import DriverError

log = logging.getLogger(__name__)

BPF_TC_INGRESS = 1 << 0
BPF_TC_EGRESS = 1 << 1
BPF_TC_F_REPLACE = 1 << 0
# Where our filter sits on the hook: a fixed handle/priority lets a restarted agent
# replace a filter a crashed one left behind, and detach exactly its own.
TC_HANDLE = 0xF10
TC_PRIORITY = 1
_LOG_LINES = 60


class _TcHook(ctypes.Structure):
    # struct bpf_tc_hook (libbpf.h); ctypes pads it to 8 like the C `size_t :0`.
    _fields_ = (
        ("sz", ctypes.c_size_t),
        ("ifindex", ctypes.c_int),
        ("attach_point", ctypes.c_int),
        ("parent", ctypes.c_uint32),
    )


class _TcOpts(ctypes.Structure):
    # struct bpf_tc_opts (libbpf.h)
    _fields_ = (
        ("sz", ctypes.c_size_t),
        ("prog_fd", ctypes.c_int),
        ("flags", ctypes.c_uint32),
        ("prog_id", ctypes.c_uint32),
        ("handle", ctypes.c_uint32),
        ("priority", ctypes.c_uint32),
    )


_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class _Libbpf:
    """libbpf.so.1 with typed prototypes, and its log captured per load."""

    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
        except OSError as exc:
            raise DriverError(f"libbpf.so.1 is missing (install libbpf-dev): {exc}") from None
        libc = ctypes.CDLL(None)
        vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        for name, restype, argtypes in (
            ("bpf_object__open_file", vp, (cp, vp)),
            ("bpf_object__load", ci, (vp,)),
            ("bpf_object__close", None, (vp,)),
            ("bpf_object__find_map_by_name", vp, (vp, cp)),
            ("bpf_object__find_map_fd_by_name", ci, (vp, cp)),
            ("bpf_object__find_program_by_name", vp, (vp, cp)),
            ("bpf_program__fd", ci, (vp,)),
            ("bpf_map__set_max_entries", ci, (vp, ctypes.c_uint32)),
            ("bpf_tc_hook_create", ci, (vp,)),
            ("bpf_tc_hook_destroy", ci, (vp,)),
            ("bpf_tc_attach", ci, (vp, vp)),
            ("bpf_tc_detach", ci, (vp, vp)),
            ("bpf_tc_query", ci, (vp, vp)),
            ("libbpf_set_print", vp, (_PRINT_FN,)),
            ("libbpf_strerror", ci, (ci, cp, ctypes.c_size_t)),
        ):
            function = getattr(lib, name)
            function.restype = restype
            function.argtypes = argtypes
        self.lib = lib
        self._vsnprintf = libc.vsnprintf
        self._vsnprintf.argtypes = (ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, vp)
        self.lines: deque[str] = deque(maxlen=_LOG_LINES)
        self.lock = threading.Lock()
        # Kept referenced: libbpf calls it for the life of the process.
        self._callback = _PRINT_FN(self._print)
        lib.libbpf_set_print(self._callback)

    def _print(self, level: int, fmt: bytes | None, args: int | None) -> int:
        buffer = ctypes.create_string_buffer(2048)
        self._vsnprintf(buffer, len(buffer), fmt, args)
        for line in buffer.value.decode(errors="replace").splitlines():
            self.lines.append(line)
            log.debug("libbpf: %s", line)
        return 0

    def log_tail(self) -> str:
        return "\n".join(self.lines)


_libbpf: _Libbpf | None = None
_libbpf_lock = threading.Lock()


def libbpf() -> _Libbpf:
    global _libbpf
    with _libbpf_lock:
        if _libbpf is None:
            _libbpf = _Libbpf()
        return _libbpf


def _strerror(code: int) -> str:
    # libbpf has its own codes from 4000 up (LIBBPF_ERRNO__*), unknown to strerror.
    buffer = ctypes.create_string_buffer(256)
    libbpf().lib.libbpf_strerror(-abs(code), buffer, len(buffer))
    return buffer.value.decode(errors="replace") or os.strerror(abs(code))


def _fail(what: str, code: int, detail: str = "") -> DriverError:
    message = f"{what}: {_strerror(code)}"
    return DriverError(f"{message}\n{detail}" if detail else message)


class BpfObject:
    """A loaded BPF object file: its maps and programs live until close()."""

    def __init__(self, path: Path, max_entries: Mapping[str, int]) -> None:
        bpf = libbpf()
        self._lib = bpf.lib
        with bpf.lock:
            bpf.lines.clear()
            obj = self._lib.bpf_object__open_file(str(path).encode(), None)
            if not obj:
                raise _fail(f"open {path}", ctypes.get_errno(), bpf.log_tail())
            self._obj: int | None = obj
            try:
                for name, entries in max_entries.items():
                    bpf_map = self._lib.bpf_object__find_map_by_name(obj, name.encode())
                    if not bpf_map:
                        raise DriverError(f"{path} has no map {name!r}")
                    result = self._lib.bpf_map__set_max_entries(bpf_map, entries)
                    if result < 0:
                        raise _fail(f"size map {name} to {entries}", result)
                result = self._lib.bpf_object__load(obj)
                if result < 0:
                    raise _fail(f"load {path}", result, bpf.log_tail())
            except BaseException:
                self.close()
                raise

    def map_fd(self, name: str) -> int:
        fd = int(self._lib.bpf_object__find_map_fd_by_name(self._require(), name.encode()))
        if fd < 0:
            raise DriverError(f"the BPF object has no map {name!r}")
        return fd

    def program_fd(self, name: str) -> int:
        program = self._lib.bpf_object__find_program_by_name(self._require(), name.encode())
        if not program:
            raise DriverError(f"the BPF object has no program {name!r}")
        return int(self._lib.bpf_program__fd(program))

    def _require(self) -> int:
        if self._obj is None:
            raise DriverError("the BPF object is closed")
        return self._obj

    def close(self) -> None:
        """Close the object's descriptors; maps and programs go once nothing else holds them."""
        if self._obj is not None:
            self._lib.bpf_object__close(self._obj)
            self._obj = None


class TcFilter:
    """Our direct-action filter on one interface's ingress hook."""

    def __init__(self, ifindex: int, interface: str) -> None:
        self.ifindex = ifindex
        self.interface = interface
        self.prog_id = 0
        self.attached = False
        self.created_hook = False
        self._lib = libbpf().lib

    def _hook(self, attach_point: int = BPF_TC_INGRESS) -> _TcHook:
        return _TcHook(ctypes.sizeof(_TcHook), self.ifindex, attach_point, 0)

    def _opts(self, prog_fd: int = 0, flags: int = 0) -> _TcOpts:
        return _TcOpts(ctypes.sizeof(_TcOpts), prog_fd, flags, 0, TC_HANDLE, TC_PRIORITY)

    def attach(self, prog_fd: int) -> None:
        """Attach (or replace our filter with) the program; creates the clsact qdisc if needed."""
        hook = self._hook()
        result = self._lib.bpf_tc_hook_create(ctypes.byref(hook))
        if result == 0:
            self.created_hook = True
        elif result != -errno.EEXIST:
            raise _fail(f"create the clsact hook of {self.interface}", result)
        opts = self._opts(prog_fd, BPF_TC_F_REPLACE)
        result = self._lib.bpf_tc_attach(ctypes.byref(hook), ctypes.byref(opts))
        if result < 0:
            raise _fail(f"attach to the ingress of {self.interface}", result)
        self.prog_id = int(opts.prog_id)
        self.attached = True

    def query(self) -> int:
        """The id of the program at our handle/priority now; 0 if none."""
        hook = self._hook()
        opts = _TcOpts(ctypes.sizeof(_TcOpts), 0, 0, 0, TC_HANDLE, TC_PRIORITY)
        result = self._lib.bpf_tc_query(ctypes.byref(hook), ctypes.byref(opts))
        return int(opts.prog_id) if result == 0 else 0

    def detach(self) -> None:
        """Remove our filter (and the clsact qdisc if we made it); gone interfaces are fine."""
        if self.attached:
            result = self._lib.bpf_tc_detach(ctypes.byref(self._hook()), ctypes.byref(self._opts()))
            if result < 0 and -result not in (errno.ENOENT, errno.ENODEV, errno.EINVAL):
                raise _fail(f"detach from the ingress of {self.interface}", result)
            self.attached = False
        if self.created_hook:
            hook = self._hook(BPF_TC_INGRESS | BPF_TC_EGRESS)
            result = self._lib.bpf_tc_hook_destroy(ctypes.byref(hook))
            if result < 0 and -result not in (errno.ENOENT, errno.ENODEV, errno.EINVAL):
                raise _fail(f"remove the clsact qdisc of {self.interface}", result)
            self.created_hook = False
