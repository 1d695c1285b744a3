"""Give freed heap memory back to the operating system, now and then.

Under a tick storm the console allocates and frees millions of small objects a minute.
glibc's malloc keeps much of what is freed in its arenas instead of returning it, so
the resident size of a console left running all week climbs although the live heap
does not: ``benchmarks/bench_gui.py --memory`` measured +3.9 MB a minute at 20,000
ticks/s, and +0.8 MB a minute with ``malloc_trim(0)`` before each sample. So the
session calls ``malloc_trim`` every :data:`TRIM_INTERVAL_S` seconds, in a worker
thread (ctypes releases the GIL; the call can take milliseconds on a large heap, which
the GUI loop must not wait for). Elsewhere than glibc (macOS, Windows, musl) there is
nothing to call and nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Seconds between two trims.
TRIM_INTERVAL_S = 60.0


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


async def trim_heap_forever(interval: float = TRIM_INTERVAL_S) -> None:
    """Trim the heap every ``interval`` seconds until cancelled (a session task)."""
    trim = malloc_trim()
    if trim is None:
        log.debug("no malloc_trim in this C library: the heap is left as it is")
        return
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        t0 = time.perf_counter()
        await loop.run_in_executor(None, trim, 0)
        log.debug("heap trimmed in %.1f ms", (time.perf_counter() - t0) * 1000)
