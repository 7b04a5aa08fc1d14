"""The web tier's own measure of being overloaded: how late this process runs its work.

A web process that has more work than its core can do does not fail; everything on it just runs later,
and a visitor who starts a battle waits seconds for the first token. Two delays are watched:
- how late the event loop's timers run (a callback asks to run every TICK seconds and notes how late it
  did), whatever causes it;
- how long this process's own part of a turn took lately: from the visitor's message to the moment the
  models can be asked (checks, the draw, the database writes and reads, queued behind everyone else's
  on the database threads and the GIL, which the loop's timers do not see).
New battles are refused, with a plain "busy" message, while either is above WEB_MAX_DELAY; battles
already running carry on. Before that, a busy process sends streamed text in fewer, larger frames
(frame_pacer).
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections import deque
from collections.abc import Callable

from arena import metrics

TICK = 0.05
# The smoothing's time constant: about the last second counts, so one slow callback does not refuse
# anybody, and a sustained backlog does within a second or two.
SMOOTHING_SECONDS = 1.0


def _smoothed(previous: float, sample: float, elapsed: float) -> float:
    """An exponential moving average weighted by the time since the last sample: a loop held up for a
    second counts for a second."""
    keep = math.exp(-elapsed / SMOOTHING_SECONDS)
    return keep * previous + (1 - keep) * sample


class LoopLag:
    """Smoothed lateness of one event loop's timers, in seconds. (It keeps no reference to its loop, so
    the registry below forgets a loop once it is closed and gone.)"""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.seconds = 0.0
        self._last = loop.time()
        loop.call_later(TICK, self._tick, self._last + TICK)

    def _tick(self, expected: float) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.seconds = _smoothed(self.seconds, max(0.0, now - expected), now - self._last)
        self._last = now
        metrics.LOOP_LAG.set(self.seconds)
        loop.call_later(TICK, self._tick, now + TICK)


class CpuBusy:
    """Smoothed CPU use of this process (every thread), in cores: the leading sign. A web process nearly
    always busy is about to run behind, before its loop's timers or its turns show it. A process starved
    of a core by others (a shared box) does not show here; the delays above catch that."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.cores = 0.0
        self._last = (loop.time(), time.process_time())
        loop.call_later(TICK, self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now, cpu = loop.time(), time.process_time()
        elapsed = now - self._last[0]
        if elapsed > 0:
            self.cores = _smoothed(self.cores, (cpu - self._last[1]) / elapsed, elapsed)
            metrics.CPU_BUSY.set(self.cores)
        self._last = (now, cpu)
        loop.call_later(TICK, self._tick)


# Turns whose own delay is averaged: those that reached the models in the last WINDOW seconds. With none
# (nobody admitted lately), the figure is 0, so a refusal never outlives the backlog that caused it.
WINDOW = 2.0


class TurnDelays:
    """This process's own delay before each turn can ask the models, in seconds: the turns waiting now
    (the oldest one's wait so far, a leading sign) and those that got through in the last WINDOW."""

    # A turn still "waiting" after this long was lost track of (it cannot really wait this long): ignored.
    STALE = 60.0

    def __init__(self):
        self.samples: deque[tuple[float, float]] = deque()
        self.waiting: dict[object, float] = {}

    def begin(self) -> object:
        """A visitor's message has arrived; returns its ticket for `end`."""
        ticket = object()
        self.waiting[ticket] = time.monotonic()
        return ticket

    def end(self, ticket: object, *, reached_models: bool = True) -> None:
        """The turn can ask the models now (its delay is noted), or it ended before that."""
        received = self.waiting.pop(ticket, None)
        if received is not None and reached_models:
            self.note(time.monotonic() - received)

    def note(self, seconds: float) -> None:
        self.samples.append((time.monotonic(), seconds))
        metrics.TURN_DELAY.set(self.recent())

    def recent(self) -> float:
        """The larger of: the mean delay of the turns that got through lately, the oldest wait now."""
        now = time.monotonic()
        while self.samples and self.samples[0][0] < now - WINDOW:
            self.samples.popleft()
        done = sum(seconds for _, seconds in self.samples) / len(self.samples) if self.samples else 0.0
        waits = [now - since for since in self.waiting.values() if now - since < self.STALE]
        return max(done, max(waits, default=0.0))


# A process is busy, and its turns send streamed text less often, while it uses more than this much of a
# core (smoothed), or its loop runs later than a tick, or its own part of a turn takes longer than this many
# seconds. Frames were a sixth of a busy process's CPU (py-spy, 100 battles at once); fewer, larger frames
# leave that CPU to first tokens. The CPU alone is not enough: two processes sharing a machine's cores
# each use well under one core when the machine is full, and then their turns run late.
FRAMES_BUSY_CORES = 0.7
FRAMES_BUSY_DELAY = 0.25


class FrameLoad:
    """Whether this process is busy enough for fewer, larger frames, decided once a tick from the monitors
    above (not at every piece of text: a turn delay is a pass over the turns waiting now)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, lag: LoopLag, delays: TurnDelays, cpu: CpuBusy):
        self.busy = False
        self._lag, self._delays, self._cpu = lag, delays, cpu
        loop.call_later(TICK, self._tick)

    def _tick(self) -> None:
        self.busy = (
            self._cpu.cores > FRAMES_BUSY_CORES or self._lag.seconds > TICK or self._delays.recent() > FRAMES_BUSY_DELAY
        )
        asyncio.get_running_loop().call_later(TICK, self._tick)


_monitors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[LoopLag, TurnDelays, CpuBusy, FrameLoad]] = (
    weakref.WeakKeyDictionary()
)


def _watch() -> tuple[LoopLag, TurnDelays, CpuBusy, FrameLoad]:
    loop = asyncio.get_running_loop()
    watched = _monitors.get(loop)
    if watched is None:
        lag, delays, cpu = LoopLag(loop), TurnDelays(), CpuBusy(loop)
        watched = _monitors[loop] = (lag, delays, cpu, FrameLoad(loop, lag, delays, cpu))
    return watched


def loop_lag() -> LoopLag:
    """The running loop's lag monitor, started on first use (uvicorn runs without lifespan events)."""
    return _watch()[0]


def turn_delays() -> TurnDelays:
    return _watch()[1]


def cpu_busy() -> CpuBusy:
    return _watch()[2]


def overloaded(max_delay: float, max_cores: float = 0.0) -> bool:
    """Whether new work should wait: the loop runs, or turns reach the models, more than `max_delay`
    seconds late, or the process has been using more than `max_cores` of CPU (0 turns a check off)."""
    late = max_delay > 0 and (loop_lag().seconds > max_delay or turn_delays().recent() > max_delay)
    return late or (max_cores > 0 and cpu_busy().cores > max_cores)


def frame_pacer(calm: float, busy: float) -> Callable[[], float]:
    """How often a turn's streamed text may go out now, as a function asked at each piece: every `calm`
    seconds, or every `busy` seconds while this process is busy (FrameLoad)."""
    load = _watch()[3]

    def interval() -> float:
        return max(calm, busy) if load.busy else calm

    return interval
