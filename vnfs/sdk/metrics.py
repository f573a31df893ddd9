"""Prometheus exposition and /healthz for VNF units.

Every unit serves GET /metrics (Prometheus text format) and GET /healthz
(200 or 503 with a small JSON body) on its management address, port 9100 by
default. The runtime's event loop builds metric families once per tick from
its own counters and publishes them (`SnapshotCollector`); the HTTP server
runs in its own thread and only reads what was published, so a scrape never
touches the datapath or the logic, and a stuck event loop shows as unhealthy
(`LoopWatch`) instead of hanging the probe.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import make_wsgi_app
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

DEFAULT_PORT = 9100

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Environ = dict[str, Any]


@dataclass(frozen=True, slots=True)
class HealthReport:
    healthy: bool
    detail: str = ""
    facts: Mapping[str, object] = field(default_factory=dict)


class LoopWatch:
    """Notices an event loop that stopped ticking (a hung logic hook, a blocking driver)."""

    def __init__(self, max_silence: float) -> None:
        self.max_silence = max_silence
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def silence(self) -> float:
        return time.monotonic() - self._last

    def stalled(self) -> bool:
        return self.silence() > self.max_silence


class SnapshotCollector(Collector):
    """Serves the metric families the owner last published (thread-safe by replacement)."""

    def __init__(self) -> None:
        self._families: tuple[Metric, ...] = ()

    def publish(self, families: Iterable[Metric]) -> None:
        self._families = tuple(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


class RateMeter:
    """Per-second rates of cumulative counters, between two successive samples."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._last_time: float | None = None
        self.rates: dict[str, float] = {}

    def sample(self, values: Mapping[str, int], now: float | None = None) -> dict[str, float]:
        now = time.monotonic() if now is None else now
        if self._last_time is not None and now > self._last_time:
            elapsed = now - self._last_time
            self.rates = {
                # A counter that went backwards was reset (datapath restarted): no rate.
                name: max(0, value - self._last.get(name, value)) / elapsed
                for name, value in values.items()
            }
        self._last = dict(values)
        self._last_time = now
        return self.rates


def counter(
    name: str, documentation: str, value: float, labels: Mapping[str, str]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def gauge(
    name: str, documentation: str, value: float, labels: Mapping[str, str]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the unit's log."""


class MetricsServer:
    """/metrics and /healthz on one address, served from a daemon thread."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Callable[[], HealthReport],
    ) -> None:
        self.host = host
        self.requested_port = port
        self.registry = registry
        self.health = health
        self._metrics_app = make_wsgi_app(registry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the metrics server is not running")
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._server = make_server(
            self.host,
            self.requested_port,
            self._app,
            server_class=_ThreadingServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()
        log.info("metrics and /healthz on http://%s:%d", self.host, self.port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _app(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _respond(start_response, "405 Method Not Allowed", b"GET only\n")
        if path == "/metrics":
            body: Iterable[bytes] = self._metrics_app(environ, start_response)
            return body
        if path == "/healthz":
            try:
                report = self.health()
            except Exception as exc:  # the probe must answer even if the check is broken
                report = HealthReport(False, f"health check failed: {exc}")
            document = {"healthy": report.healthy, "detail": report.detail, **report.facts}
            status = "200 OK" if report.healthy else "503 Service Unavailable"
            payload = json.dumps(document, default=str).encode() + b"\n"
            return _respond(start_response, status, payload, "application/json")
        return _respond(start_response, "404 Not Found", b"try /metrics or /healthz\n")


def _respond(
    start_response: StartResponse, status: str, body: bytes, content_type: str = "text/plain"
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
