"""The NAT fast-path process (the VNFD's nat_fastpath command: python -m vnfs.nat.fastpath).

The NAT needs nothing of its own in the fast path: the SDK agent runs the
datapath, and every NAT decision arrives as rules from the slow path. The
NAT config model is still used so a bad NAT property fails this unit's start
with the same one-line error as the slow path's.
"""

from __future__ import annotations

from vnfs.nat.config import NatUnitConfig
from vnfs.sdk.agent import main

if __name__ == "__main__":
    main(NatUnitConfig)
