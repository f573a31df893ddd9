"""A notification consumer on loopback that records what it is sent.

GET answers 204 (the SOL013 endpoint test) and POST records the JSON body;
`fail_next` makes the next POSTs answer an error status, to exercise retries.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.http_server import serving


@dataclass
class Received:
    """One request the consumer got."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Consumer:
    """What a running consumer has received, and how it should answer."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    get_status: int = 204
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.method == "POST"]

    def wait_posts(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.posts()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(self.posts())} notifications, expected {count}")
            time.sleep(0.02)
        return self.posts()


def _handler(consumer: Consumer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _record(self, body: Any) -> None:
            with consumer.lock:
                consumer.received.append(
                    Received(self.command, self.path, dict(self.headers.items()), body)
                )

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self._record(None)
            self._answer(consumer.get_status)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with consumer.lock:
                status = consumer.fail_next.pop(0) if consumer.fail_next else 204
            if status == 204:
                self._record(json.loads(raw) if raw else None)
            self._answer(status)

    return Handler


@contextmanager
def running_consumer() -> Iterator[Consumer]:
    consumer = Consumer()
    with serving(_handler(consumer)) as url:
        consumer.url = url
        yield consumer
