"""Where a fast-path agent runs its driver's calls: off the event loop, in driver threads.

A driver call can take long: a batch install of thousands of rules, or a
table scan that walks a million entries in the kernel. Run on the event
loop, it would hold up rule pushes, registrations and heartbeats. The agent
runs them in two lanes instead:

* `change`: start, install, remove, counters lookups, close;
* `scan`: aging, dumps, table size, health and datapath counters.

Each lane is one thread, and the two are one and the same thread unless the
driver declares `concurrent_maintenance` (then a long scan does not hold up
installs): either way the driver gets its calls the way its interface says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from vnfs.sdk.driver import FastPathDriver

T = TypeVar("T")


class DriverLanes:
    """The agent's driver threads. `threaded=False` runs every call inline on the
    caller's thread (for tests of the protocol around a driver)."""

    def __init__(self, driver: FastPathDriver, *, threaded: bool = True) -> None:
        self._changes: ThreadPoolExecutor | None = None
        self._scans: ThreadPoolExecutor | None = None
        if threaded:
            self._changes = ThreadPoolExecutor(1, thread_name_prefix=f"{driver.name}-driver")
            self._scans = (
                ThreadPoolExecutor(1, thread_name_prefix=f"{driver.name}-scan")
                if driver.concurrent_maintenance
                else self._changes
            )

    @property
    def concurrent(self) -> bool:
        """Whether a scan and a change can run at the same time."""
        return self._scans is not self._changes

    async def change(self, call: Callable[[], T]) -> T:
        return await _run(self._changes, call)

    async def scan(self, call: Callable[[], T]) -> T:
        return await _run(self._scans, call)

    def close(self) -> None:
        """Wait for the calls under way and stop the threads (threads start on first use)."""
        for executor in {id(e): e for e in (self._changes, self._scans) if e}.values():
            executor.shutdown(wait=True, cancel_futures=True)


async def _run(executor: ThreadPoolExecutor | None, call: Callable[[], T]) -> T:
    if executor is None:
        return call()
    return await asyncio.get_running_loop().run_in_executor(executor, call)
