"""A private Redis server for a test, from Debian's redis-server package.

It listens on 127.0.0.1 with an ephemeral port, keeps nothing on disk (no RDB, no AOF)
and runs from a temporary directory; it is stopped when the context ends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class RedisServer:
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail(
            "redis-server is not installed: run `make test`, which installs the system "
            "packages the tests need (Debian package redis-server)",
            pytrace=False,
        )
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    binary = _binary()
    with tempfile.TemporaryDirectory(prefix="redis-") as tmp:
        port = _free_port()
        log = Path(tmp) / "redis.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dir",
                    tmp,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "yes",
                    "--daemonize",
                    "no",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _answers(port):
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited ({proc.returncode}): {log.read_text()[-2000:]}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer on port {port}")
                time.sleep(0.05)
            yield RedisServer(port=port)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
