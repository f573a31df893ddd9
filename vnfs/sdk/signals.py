"""Running a unit's main coroutine until the VIM asks it to stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_until_signalled(
    main: Callable[[asyncio.Event], Awaitable[None]],
    signals: Sequence[signal.Signals] = STOP_SIGNALS,
) -> None:
    """Await `main(stop)`; `stop` is set when one of `signals` arrives (SIGTERM from a VIM)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await main(stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
