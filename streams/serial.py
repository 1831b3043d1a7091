"""Long-running asyncio workers: a stop event tied to SIGTERM/SIGINT.

(Their one-at-a-time consumer loop is :class:`streams.loop.SerialLoop`.)
"""

from __future__ import annotations

import asyncio
import signal

__all__ = ["stop_on_signals"]


def stop_on_signals() -> asyncio.Event:
    """An event the running loop sets on SIGTERM or SIGINT (a worker's clean shutdown).

    Must be called from inside the running loop (``asyncio.get_running_loop``); raises
    ``RuntimeError`` otherwise.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
