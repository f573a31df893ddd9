"""Start, watch and stop the detached processes of a replica inside its network namespace.

The processes outlive the MANO service: it re-attaches after a restart from the
`ProcessHandle`s in its state file. A handle names a process by pid *and* start
time, so a pid the kernel has since recycled for an unrelated process is never
mistaken for ours, and never signalled.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from vim_adapters.errors import VimError, VimFatalError, VimNotFound, VimTimeout
from vim_adapters.local import netns as namespaces

# The processes get this PATH and the VDU's own variables, never the service's
# environment: it holds database URLs and credentials a VNF must not see.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# `ip netns exec` needs no more than a few milliseconds to setns and exec; the
# bound only guards against a wedged `ip`.
_EXEC_TIMEOUT = 5.0
_POLL_INTERVAL = 0.02
# Messages iproute2 prints when it never reaches the command (exec failure,
# namespace gone); the command's own output cannot be told apart otherwise.
_IP_FAILURE_MARKERS = (b'exec of "', b"Cannot open network namespace")
_LOG_TAIL_BYTES = 4096
# How long a SIGKILLed process group may take to be gone: only a process stuck in
# the kernel (uninterruptible I/O) takes longer.
KILL_WAIT = 5.0


class ProcessHandle(BaseModel):
    """What identifies a started process across restarts of the MANO service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    pid: int
    start_time: int
    log_path: str
    argv: list[str]


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat this module needs."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    start_time: int


def read_stat(pid: int) -> ProcStat | None:
    """The process's stat line, or None if no such pid exists (any more)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may contain spaces and ')', so split after its last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    return ProcStat(
        pid=pid,
        state=fields[0].decode(),
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        start_time=int(fields[19]),
    )


# Popen objects of the children this service started. Holding them keeps
# subprocess from reaping them behind our back (it reaps dropped, still-running
# Popen objects at the next spawn) and lets exit_status report how they ended.
_children: dict[int, subprocess.Popen[bytes]] = {}
_exit_codes: dict[tuple[int, int], int] = {}
_children_lock = threading.Lock()


def _reap_if_child(pid: int, start_time: int) -> None:
    """Collect our exited child so it stops being a zombie that still looks present."""
    with _children_lock:
        child = _children.get(pid)
        if child is not None:
            code = child.poll()
            if code is not None:
                del _children[pid]
                _exit_codes[(pid, start_time)] = code
            return
    stat = read_stat(pid)
    if stat is None or stat.ppid != os.getpid() or stat.start_time != start_time:
        return
    # Our child, but not spawned through this module's registry (e.g. the
    # module was loaded twice): reap it directly.
    with contextlib.suppress(ChildProcessError):
        waited, status = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            with _children_lock:
                _exit_codes[(pid, start_time)] = os.waitstatus_to_exitcode(status)


def is_alive(handle: ProcessHandle) -> bool:
    """True while the very process the handle names runs (zombies count as dead)."""
    _reap_if_child(handle.pid, handle.start_time)
    stat = read_stat(handle.pid)
    if stat is None or stat.start_time != handle.start_time:
        return False
    if stat.state in ("Z", "X"):
        # It died between the reap above and the stat read: collect it now so
        # "not alive" also means "gone from /proc" to the caller.
        _reap_if_child(handle.pid, handle.start_time)
        return False
    return True


def uptime_seconds(handle: ProcessHandle) -> float:
    """How long the process has run: start_time is in clock ticks since boot."""
    with open("/proc/uptime") as uptime:
        since_boot = float(uptime.read().split()[0])
    return since_boot - handle.start_time / os.sysconf("SC_CLK_TCK")


def exit_status(handle: ProcessHandle) -> int | None:
    """Exit code (negative: killed by that signal) if this service started it and it ended."""
    _reap_if_child(handle.pid, handle.start_time)
    with _children_lock:
        return _exit_codes.get((handle.pid, handle.start_time))


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of the process group."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = read_stat(int(entry.name))
        if stat is not None and stat.pgrp == pgid and stat.state not in ("Z", "X"):
            members.append(stat.pid)
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _wait_group_gone(handle: ProcessHandle, deadline: float) -> bool:
    while True:
        _reap_if_child(handle.pid, handle.start_time)
        if not _group_members(handle.pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)


def stop(handle: ProcessHandle, *, timeout: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after `timeout`; a no-op if already gone.

    The group id is the leader's pid (it runs in its own session). The group is
    only signalled while the leader with the handle's start time still exists,
    alive or zombie: until it is reaped its pid, and so the group id, cannot be
    reused. Members that escaped the group (setsid, setpgid) are left to the
    namespace sweep with `processes_in_netns`.
    """
    stop_all([handle], grace=timeout, kill_wait=timeout if timeout > 0 else KILL_WAIT)


def stop_all(
    handles: Sequence[ProcessHandle], *, grace: float, kill_wait: float = KILL_WAIT
) -> None:
    """Stop several process groups at once: SIGTERM all, SIGKILL what is left after `grace`.

    One grace period for all of them, not one each, so stopping N replicas
    takes `grace` seconds, not N times that; `grace` 0 sends SIGKILL at once.
    `kill_wait` bounds the wait after SIGKILL (a process stuck in the kernel).
    """
    if grace < 0:
        raise VimFatalError(f"a stop grace period cannot be negative ({grace})")
    # Only groups whose leader (alive or zombie) is the handle's very process: see `stop`.
    leaders = [h for h in handles if _is_leader_present(h)]
    if grace > 0:
        for handle in leaders:
            _signal_group(handle.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        leaders = [h for h in leaders if not _wait_group_gone(h, deadline)]
    for handle in leaders:
        _signal_group(handle.pid, signal.SIGKILL)
    deadline = time.monotonic() + kill_wait
    stuck = [h for h in leaders if not _wait_group_gone(h, deadline)]
    if stuck:
        names = ", ".join(f"{h.name!r} (pid {h.pid})" for h in stuck)
        raise VimTimeout(f"process(es) {names} survived SIGKILL for {kill_wait}s")
    for handle in handles:
        _reap_if_child(handle.pid, handle.start_time)


def _is_leader_present(handle: ProcessHandle) -> bool:
    stat = read_stat(handle.pid)
    return stat is not None and stat.start_time == handle.start_time


def processes_in_netns(netns: str) -> list[int]:
    """Pids of the processes in the named network namespace ([] if it does not exist)."""
    try:
        target = os.stat(namespaces.path(netns))
    except FileNotFoundError:
        return []
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ns = os.stat(f"/proc/{entry.name}/ns/net")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # exited, or a zombie whose namespaces are already released
        if (ns.st_dev, ns.st_ino) == (target.st_dev, target.st_ino):
            pids.append(int(entry.name))
    return pids


def child_environment(env: Mapping[str, str], bin_dirs: Sequence[Path] = ()) -> dict[str, str]:
    """PATH (`bin_dirs` first, then DEFAULT_PATH) plus the VDU's variables, which may set PATH."""
    path = os.pathsep.join([*(str(d) for d in bin_dirs), DEFAULT_PATH])
    return {"PATH": path, **env}


@functools.cache
def ip_binary() -> str:
    """Absolute path of `ip`, found even when the service's PATH lacks the sbin dirs."""
    search = os.pathsep.join(filter(None, (os.environ.get("PATH"), DEFAULT_PATH)))
    found = shutil.which("ip", path=search)
    if found is None:
        raise VimFatalError("the local VIM needs iproute2's `ip`, which is not installed")
    return found


def _log_since(log_path: Path, offset: int) -> bytes:
    try:
        with log_path.open("rb") as log:
            log.seek(max(offset, log_path.stat().st_size - _LOG_TAIL_BYTES))
            return log.read(_LOG_TAIL_BYTES)
    except OSError:
        return b""


def _ip_failure(output: bytes) -> str | None:
    for line in output.splitlines():
        if any(marker in line for marker in _IP_FAILURE_MARKERS):
            return line.decode(errors="replace").strip()
    return None


def _await_exec(child: subprocess.Popen[bytes], wrapper_argv: list[str], deadline: float) -> bool:
    """Wait until `ip` has exec'd the command (True) or exited without doing so (False).

    The pid stays the same across `ip`'s exec, so the change of the command line
    away from `ip netns exec ...` is what shows the command itself now runs.
    """
    wrapper_cmdline = b"".join(arg.encode() + b"\0" for arg in wrapper_argv)
    while True:
        try:
            cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            cmdline = b""
        if cmdline and cmdline != wrapper_cmdline:
            return True
        if child.poll() is not None:
            return False
        if time.monotonic() >= deadline:
            _signal_group(child.pid, signal.SIGKILL)
            child.wait(timeout=_EXEC_TIMEOUT)
            raise VimTimeout(f"`ip netns exec` did not start {wrapper_argv[4]!r} in time")
        time.sleep(_POLL_INTERVAL / 4)


def start(
    *,
    netns: str,
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    bin_dirs: Sequence[Path] = (),
) -> ProcessHandle:
    """Run argv detached inside the namespace and return once the command itself runs.

    `bin_dirs` come first on the child's PATH (see `child_environment`).
    """
    if not argv:
        raise VimFatalError(f"process {name!r} has an empty command")
    if not namespaces.exists(netns):
        raise VimNotFound(f"network namespace {netns!r} does not exist")
    wrapper_argv = namespaces.exec_argv(netns, argv)
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        raise VimFatalError(f"process {name!r}: cannot open log file {log_path}: {exc}") from exc
    try:
        log_offset = os.fstat(log_fd).st_size
        child = subprocess.Popen(
            wrapper_argv,
            executable=ip_binary(),
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=child_environment(env, bin_dirs),
            # Own session: no terminal signals from the service's session, and
            # the pid is the group id `stop` signals.
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:
        raise VimFatalError(f"process {name!r}: cannot start {argv[0]!r}: {exc}") from exc
    finally:
        os.close(log_fd)

    with _children_lock:
        _children[child.pid] = child
    stat = read_stat(child.pid)
    if stat is None:  # cannot happen while the child is unreaped; be loud if it does
        raise VimError(f"process {name!r}: pid {child.pid} vanished right after spawning")
    handle = ProcessHandle(
        name=name, pid=child.pid, start_time=stat.start_time, log_path=str(log_path), argv=[*argv]
    )
    if not _await_exec(child, wrapper_argv, time.monotonic() + _EXEC_TIMEOUT):
        # Exited before we saw the command run: either `ip` failed to exec it,
        # or it ran and finished at once, which the caller sees via is_alive.
        failure = _ip_failure(_log_since(log_path, log_offset))
        if failure is not None:
            _reap_if_child(handle.pid, handle.start_time)
            raise VimFatalError(
                f"process {name!r}: cannot start {argv[0]!r} in namespace {netns!r}: {failure}"
            )
    return handle
