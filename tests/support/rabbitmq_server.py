"""A private RabbitMQ server for a test session, from Debian's rabbitmq-server package.

Everything of it is its own, in a temporary directory: node name, data (Mnesia), logs,
config, enabled plugins (none) and Erlang cookie (HOME). The AMQP listener and the
Erlang distribution port are on 127.0.0.1 with free ports, and the node registers with
an epmd this module starts on its own loopback port: the host's shared epmd (4369),
which other Erlang nodes may use, is neither used nor started nor stopped.

The server runs in the foreground through the package's own script
(/usr/lib/rabbitmq/bin/rabbitmq-server), not the /usr/sbin wrapper, which would switch
to the rabbitmq user and the system's data directory. It is ready when an AMQP
header is answered with connection.start (the listeners open once the broker has
booted). At the end the script gets SIGTERM (it stops the node cleanly); whatever
is left of what was started here is then SIGKILLed: every process carrying this
server's marker variable in its environment, which all of its processes inherit
(beam, erl_child_setup, inet_gethost, epmd) and no other process has.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
# Debian's rabbitmq-server 3.10 boots in about 5 s on an idle machine; CI may be slower.
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
POLL_SECONDS = 0.1
MARKER = "NFV_TEST_RABBITMQ_DIR"


@dataclass(frozen=True)
class RabbitMqServer:
    port: int
    node: str
    log: Path
    startup_seconds: float

    @property
    def url(self) -> str:
        # guest may log in over loopback only, which is all this server listens on.
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"


def _require_installed() -> str:
    epmd = shutil.which("epmd")
    if not SERVER_SCRIPT.is_file() or epmd is None:
        pytest.fail(
            "rabbitmq-server is not installed: run `make test`, which installs the system "
            "packages the tests need (Debian package rabbitmq-server)",
            pytrace=False,
        )
    return epmd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    """Whether the AMQP listener answers the 0-9-1 protocol header with connection.start.

    RabbitMQ opens its listeners only once the broker has booted.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(1) == b"\x01"  # frame type 1: a method frame
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _marked(marker: bytes) -> list[int]:
    """Live processes whose environment holds `marker` (NAME=value)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry.name}/environ").read_bytes()
        except OSError:
            continue  # gone, or a zombie (which has no environment left)
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _kill_marked(marker: bytes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pids := _marked(marker):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes of the test RabbitMQ survived SIGKILL: {pids}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)


def _environment(
    tmp: Path, *, node: str, port: int, dist_port: int, epmd_port: int
) -> dict[str, str]:
    (tmp / "rabbitmq.conf").write_text("log.file = false\nlog.console = true\n")
    (tmp / "rabbitmq-env.conf").write_text("")  # instead of /etc/rabbitmq/rabbitmq-env.conf
    (tmp / "enabled_plugins").write_text("[].\n")
    return {
        # Erlang and the scripts need a PATH; nothing else of the caller's environment.
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": str(tmp),  # the Erlang cookie is made here
        "LANG": "C.UTF-8",
        MARKER: str(tmp),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(tmp / "mnesia"),
        "RABBITMQ_LOG_BASE": str(tmp / "log"),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_CONFIG_FILE": str(tmp / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(tmp / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(tmp / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(tmp / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(tmp / "rabbitmq.pid"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_PORT": str(epmd_port),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }


@contextmanager
def running_rabbitmq() -> Iterator[RabbitMqServer]:
    epmd_binary = _require_installed()
    with tempfile.TemporaryDirectory(prefix="rabbitmq-") as tmp_name:
        tmp = Path(tmp_name)
        port, dist_port, epmd_port = _free_port(), _free_port(), _free_port()
        node = f"nfvtest{port}@localhost"
        env = _environment(tmp, node=node, port=port, dist_port=dist_port, epmd_port=epmd_port)
        marker = f"{MARKER}={tmp}".encode()
        log = tmp / "rabbitmq.log"
        started = time.monotonic()
        with log.open("wb") as out:
            epmd = subprocess.Popen(
                [epmd_binary, "-port", str(epmd_port), "-address", "127.0.0.1"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            server: subprocess.Popen[bytes] | None = None
            try:
                deadline = time.monotonic() + START_TIMEOUT
                while not _listening(epmd_port):
                    if epmd.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"epmd did not listen on port {epmd_port}")
                    time.sleep(0.02)
                server = subprocess.Popen(
                    [str(SERVER_SCRIPT)],
                    cwd=tmp,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                while not _answers(port):
                    if server.poll() is not None:
                        raise RuntimeError(
                            f"rabbitmq-server exited ({server.returncode}): "
                            f"{log.read_text(errors='replace')[-3000:]}"
                        )
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"rabbitmq-server did not accept AMQP on port {port} within "
                            f"{START_TIMEOUT:.0f}s: {log.read_text(errors='replace')[-3000:]}"
                        )
                    time.sleep(POLL_SECONDS)
                yield RabbitMqServer(
                    port=port, node=node, log=log, startup_seconds=time.monotonic() - started
                )
            finally:
                try:
                    if server is not None:
                        _stop(server)
                    _stop(epmd)
                finally:
                    _kill_marked(marker, STOP_TIMEOUT)
