"""How late this process's event loop runs: the web tier's own measure of being overloaded.

A web process that has more work than its core can do does not fail; every coroutine on its loop just
runs later, and a visitor who starts a battle then waits seconds for the first token. A timer that asks
to run every TICK seconds and notes how late it actually ran measures that delay directly, whatever
causes it (streams, database threads holding the GIL, a slow request). New battles are refused, with a
plain "busy" message, while the smoothed delay is above WEB_MAX_LOOP_LAG; battles already running carry on.
"""

from __future__ import annotations

import asyncio
import math
import weakref

from arena import metrics

TICK = 0.05
# The smoothing's time constant: about the last second counts, so one slow callback does not refuse
# anybody, and a sustained backlog does within a second or two.
SMOOTHING_SECONDS = 1.0


class LoopLag:
    """Smoothed lateness of one event loop's timers, in seconds."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.seconds = 0.0
        self._last = loop.time()
        loop.call_later(TICK, self._tick, self._last + TICK)

    def _tick(self, expected: float) -> None:
        now = self.loop.time()
        late = max(0.0, now - expected)
        # Weighted by the time since the last tick: a loop held up for a second counts for a second.
        keep = math.exp(-(now - self._last) / SMOOTHING_SECONDS)
        self.seconds = keep * self.seconds + (1 - keep) * late
        self._last = now
        metrics.LOOP_LAG.set(self.seconds)
        self.loop.call_later(TICK, self._tick, now + TICK)


_monitors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = weakref.WeakKeyDictionary()


def loop_lag() -> LoopLag:
    """The running loop's monitor, started on first use (uvicorn runs without lifespan events)."""
    loop = asyncio.get_running_loop()
    monitor = _monitors.get(loop)
    if monitor is None:
        monitor = _monitors[loop] = LoopLag(loop)
    return monitor


def overloaded(max_lag: float) -> bool:
    """Whether new work should wait: the loop runs more than `max_lag` seconds late (0 turns this off)."""
    return max_lag > 0 and loop_lag().seconds > max_lag
