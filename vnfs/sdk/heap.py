"""The cyclic garbage collector's settings for a slow-path process.

A slow path keeps its VNF's state for as long as the flows live: millions of
small objects (a NAT: about 20 per session), all freed by reference counting
when their flows end. With CPython's default thresholds (700, 10, 10) the
collector walks that whole long-lived heap each time it has grown by a
quarter: while a table fills, most of the time spent per new flow goes there
(bench/slowpath.py), and at a million sessions each walk is a pause of
seconds in which no punted packet is decided.

`tune_collector` keeps the young collections as they are (they catch the
cycles short-lived objects make: asyncio futures, exceptions) and makes full
collections rare: considered only every FULL_EVERY middle collections
(tens of millions of net allocations) and, as always, only once the heap grew
by a quarter since the last one. What the process loaded before serving is
frozen out of the collector's way. The price: cyclic garbage that outlived
two young collections waits longer for a full collection.
"""

from __future__ import annotations

import gc

FULL_EVERY = 10_000
"""middle-generation collections between two checks for a full collection (default 10)"""


def tune_collector() -> None:
    """Apply the slow path's collector settings; call once, before serving."""
    young, middle, _ = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, middle, FULL_EVERY)
