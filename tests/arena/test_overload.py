"""The web process's measure of its own load: how late its event loop's timers run."""

import asyncio
import time

from arena import overload


async def test_the_lag_rises_while_the_loop_is_held_up_and_falls_back_when_it_is_free():
    monitor = overload.loop_lag()
    assert overload.loop_lag() is monitor  # one monitor per loop
    await asyncio.sleep(0.3)
    assert monitor.seconds < 0.05
    for _ in range(6):  # the loop is held for 0.3 s at a time, as by work that hogs the core
        time.sleep(0.3)
        await asyncio.sleep(0)
    assert monitor.seconds > 0.1
    assert overload.overloaded(0.1) and not overload.overloaded(0)  # 0 turns the check off
    await asyncio.sleep(3)
    assert monitor.seconds < 0.05 and not overload.overloaded(0.1)
