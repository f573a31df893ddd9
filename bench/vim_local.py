"""Local VIM benchmark (not a test): create, scale, stop/start and update units.

Each run makes two virtual links and two units (fast path on both links,
slow path on one, each a Python HTTP server with a TCP health check),
measures until both are ready, then scales the fast path from 1 to 8
replicas and measures until all are ready; then stops the 8 (SIGTERM, which
the servers honour), starts them again until ready, and updates their
process (a rolling replacement, one replica ready before the next goes),
then removes everything. Runs as root; everything lives in namespaces and
bridges the run makes and removes.

    sudo .venv/bin/python bench/vim_local.py [--runs 5]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vim_adapters.interface import (  # noqa: E402
    ConnectionPointSpec,
    HealthCheck,
    NetworkSpec,
    Ownership,
    ProcessSpec,
    UnitSpec,
)
from vim_adapters.local.adapter import LocalVim  # noqa: E402


def _server(port: int) -> ProcessSpec:
    return ProcessSpec(
        name="server",
        command=(sys.executable, "-m", "http.server", "--bind", "0.0.0.0", str(port)),
    )


def one_run(state_dir: Path) -> dict[str, float]:
    vim = LocalVim(state_dir, prefix="b" + secrets.token_hex(2))
    owner = Ownership(vnf_instance_id="bench")
    data = NetworkSpec(name="data", cidr="10.232.1.0/24")
    punt = NetworkSpec(name="punt", cidr="10.232.2.0/24")
    fast = UnitSpec(
        name="fastpath",
        replicas=1,
        processes=(_server(8080),),
        connection_points=(
            ConnectionPointSpec(name="data0", network="data"),
            ConnectionPointSpec(name="punt0", network="punt"),
        ),
        health_check=HealthCheck(tcp_port=8080, period_seconds=0.05),
    )
    slow = UnitSpec(
        name="slowpath",
        replicas=1,
        processes=(_server(8081),),
        connection_points=(ConnectionPointSpec(name="punt0", network="punt"),),
        health_check=HealthCheck(tcp_port=8081, period_seconds=0.05),
    )
    try:
        start = time.perf_counter()
        vim.ensure_network(data, owner)
        vim.ensure_network(punt, owner)
        vim.ensure_unit(fast, owner)
        vim.ensure_unit(slow, owner)
        vim.wait_ready("fastpath", timeout=120)
        vim.wait_ready("slowpath", timeout=120)
        created = time.perf_counter() - start
        start = time.perf_counter()
        vim.scale_unit("fastpath", 8)
        vim.wait_ready("fastpath", timeout=120)
        scaled = time.perf_counter() - start
        start = time.perf_counter()
        vim.set_running("fastpath", False, graceful_timeout=5)
        stopped = time.perf_counter() - start
        start = time.perf_counter()
        vim.set_running("fastpath", True)
        vim.wait_ready("fastpath", timeout=120)
        started = time.perf_counter() - start
        newer = _server(8080).model_copy(update={"env": {"GENERATION": "2"}})
        start = time.perf_counter()
        vim.update_unit(fast.model_copy(update={"replicas": 8, "processes": (newer,)}))
        vim.wait_ready("fastpath", timeout=120)
        updated = time.perf_counter() - start
    finally:
        for unit in ("fastpath", "slowpath"):
            vim.delete_unit(unit)
        for network in ("data", "punt"):
            vim.delete_network(network)
        leaks = vim.leaks()
        if leaks:
            raise SystemExit(f"leaked: {leaks}")
    return {
        "2 links + 2-VDU unit set to ready": created,
        "scale fast path 1 -> 8 replicas to ready": scaled,
        "stop 8 replicas (SIGTERM honoured)": stopped,
        "start 8 stopped replicas to ready": started,
        "rolling update of 8 replicas to ready": updated,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-vim-") as tmp:
        for run in range(args.runs):
            for label, seconds in one_run(Path(tmp) / f"run{run}").items():
                results.setdefault(label, []).append(seconds)
    print(f"local VIM, {args.runs} runs (median, min, max)")
    print("| operation | median | min | max |")
    print("|---|---:|---:|---:|")
    for label, times in results.items():
        print(
            f"| {label} | {statistics.median(times) * 1000:.0f} ms "
            f"| {min(times) * 1000:.0f} ms | {max(times) * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
