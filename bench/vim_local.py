"""Local VIM benchmark (not a test): create a 2-VDU unit set to ready, and scale 1 -> 8.

Each run makes two virtual links and two units (fast path on both links,
slow path on one, each a Python HTTP server with a TCP health check),
measures until both are ready, then scales the fast path from 1 to 8
replicas and measures until all are ready, then removes everything. Runs as
root; everything lives in namespaces and bridges the run makes and removes.

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


def one_run(state_dir: Path) -> tuple[float, float]:
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
    finally:
        for unit in ("fastpath", "slowpath"):
            vim.delete_unit(unit)
        for network in ("data", "punt"):
            vim.delete_network(network)
        leaks = vim.leaks()
        if leaks:
            raise SystemExit(f"leaked: {leaks}")
    return created, scaled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    created: list[float] = []
    scaled: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-vim-") as tmp:
        for run in range(args.runs):
            c, s = one_run(Path(tmp) / f"run{run}")
            created.append(c)
            scaled.append(s)
    print(f"local VIM, {args.runs} runs (median, min, max)")
    print("| operation | median | min | max |")
    print("|---|---:|---:|---:|")
    for label, times in (
        ("2 links + 2-VDU unit set to ready", created),
        ("scale fast path 1 -> 8 replicas to ready", scaled),
    ):
        print(
            f"| {label} | {statistics.median(times) * 1000:.0f} ms "
            f"| {min(times) * 1000:.0f} ms | {max(times) * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
