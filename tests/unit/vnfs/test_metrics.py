"""The metrics exposition helpers: rates, published snapshots, /metrics and /healthz."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from vnfs.sdk.metrics import (
    HealthReport,
    MetricsServer,
    RateMeter,
    SnapshotCollector,
    counter,
    gauge,
)


def test_rates_between_samples_and_after_a_reset() -> None:
    meter = RateMeter()
    assert meter.sample({"rx": 100}, now=10.0) == {}
    assert meter.sample({"rx": 600}, now=12.0) == {"rx": 250.0}
    assert meter.sample({"rx": 50}, now=13.0) == {"rx": 0.0}  # the datapath restarted
    assert meter.sample({"rx": 150}, now=13.5) == {"rx": 200.0}


@pytest.fixture
def served() -> Iterator[Callable[[Callable[[], HealthReport]], MetricsServer]]:
    servers: list[MetricsServer] = []

    def start(health: Callable[[], HealthReport]) -> MetricsServer:
        registry = CollectorRegistry()
        collector = SnapshotCollector()
        registry.register(collector)
        labels = {"vnf_instance_id": "v1"}
        collector.publish(
            [counter("demo_packets", "packets", 7, labels), gauge("demo_up", "up", 1, labels)]
        )
        server = MetricsServer("127.0.0.1", 0, registry, health)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def fetch(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_metrics_serve_the_published_snapshot(served) -> None:
    server = served(lambda: HealthReport(True))
    status, text = fetch(f"http://127.0.0.1:{server.port}/metrics")
    assert status == 200
    assert 'demo_packets_total{vnf_instance_id="v1"} 7.0' in text
    assert 'demo_up{vnf_instance_id="v1"} 1.0' in text


def test_health_answers_200_503_and_survives_a_broken_check(served) -> None:
    healthy = served(lambda: HealthReport(True, "", {"epoch": "e1"}))
    status, body = fetch(f"http://127.0.0.1:{healthy.port}/healthz")
    assert (status, json.loads(body)) == (200, {"healthy": True, "detail": "", "epoch": "e1"})
    sick = served(lambda: HealthReport(False, "inside: link down"))
    status, body = fetch(f"http://127.0.0.1:{sick.port}/healthz")
    assert status == 503 and json.loads(body)["detail"] == "inside: link down"

    def broken() -> HealthReport:
        raise RuntimeError("boom")

    failing = served(broken)
    status, body = fetch(f"http://127.0.0.1:{failing.port}/healthz")
    assert status == 503 and "boom" in json.loads(body)["detail"]


def test_other_paths_and_methods(served) -> None:
    server = served(lambda: HealthReport(True))
    assert fetch(f"http://127.0.0.1:{server.port}/")[0] == 404
    assert fetch(f"http://127.0.0.1:{server.port}/metrics", method="POST")[0] == 405
