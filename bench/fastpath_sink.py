"""The receiver of bench/fastpath.py's flow-setup latency, in the server namespace.

A process of its own (so the sender's work never delays a timestamp): it reads
the probe datagrams the bench sends, stamps each with CLOCK_MONOTONIC as soon as
recvfrom returns, and on SIGTERM (or after `--max-seconds`) writes one line per
datagram to `--out`: sequence number, kind, the sender's CLOCK_MONOTONIC send
time and the arrival time, in ns. Sender and receiver share the host's clock,
so arrival - send is the one-way latency (receiver wake-up included).

    python bench/fastpath_sink.py --address 198.51.100.2 --port 5001 --out probes.txt
"""

from __future__ import annotations

import argparse
import signal
import socket
import struct
import time
from pathlib import Path
from types import FrameType

PROBE = struct.Struct("!IBQ")
"""sequence number, kind (see fastpath.py), send time in CLOCK_MONOTONIC ns"""
READY = "ready"
_stopping = False


def _stop(signum: int, frame: FrameType | None) -> None:
    global _stopping
    _stopping = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    records: list[tuple[int, int, int, int]] = []
    buffer = bytearray(2048)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((args.address, args.port))
        # Wake up now and then to notice the stop flag and the deadline.
        sock.settimeout(0.2)
        print(READY, flush=True)
        deadline = time.monotonic() + args.max_seconds
        while not _stopping and time.monotonic() < deadline:
            try:
                size = sock.recv_into(buffer)
            except TimeoutError:
                continue
            except InterruptedError:
                continue
            arrived = time.monotonic_ns()
            if size >= PROBE.size:
                seq, kind, sent = PROBE.unpack_from(buffer)
                records.append((seq, kind, sent, arrived))
    lines = "".join(f"{seq} {kind} {sent} {arrived}\n" for seq, kind, sent, arrived in records)
    args.out.write_text(lines)


if __name__ == "__main__":
    main()
