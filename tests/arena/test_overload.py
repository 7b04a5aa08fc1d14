"""The web process's measure of its own load: how late its event loop's timers run."""

import asyncio
import time

from arena import overload


async def calm_again(pace, calm: float, within: float = 3.0) -> None:
    """The pace falls back to `calm` as the smoothed load decays (within a few seconds)."""
    until = time.monotonic() + within
    while pace() != calm and time.monotonic() < until:
        await asyncio.sleep(overload.TICK)
    assert pace() == calm


async def test_the_lag_rises_while_the_loop_is_held_up_and_falls_back_when_it_is_free():
    monitor = overload.loop_lag()
    assert overload.loop_lag() is monitor  # one monitor per loop
    await asyncio.sleep(0.2)
    assert monitor.seconds < 0.05
    pace = overload.frame_pacer(0.05, 0.2)  # asked again as the load changes
    assert pace() == 0.05
    for _ in range(4):  # the loop is held for 0.3 s at a time, as by work that hogs the core
        time.sleep(0.3)
        await asyncio.sleep(0)
    assert monitor.seconds > 0.15
    assert overload.overloaded(0.15) and not overload.overloaded(0)  # 0 turns the check off
    await asyncio.sleep(overload.TICK * 2)  # the frames' verdict is taken once a tick
    assert pace() == 0.2  # a late loop sends fewer, larger frames
    await asyncio.sleep(2)
    assert monitor.seconds < 0.1 and not overload.overloaded(0.15)
    await calm_again(pace, 0.05)


async def test_cpu_use_rises_while_the_process_computes_and_falls_back_when_it_waits(monkeypatch):
    monkeypatch.setattr(overload, "FRAMES_BUSY_CORES", 0.3)
    monitor = overload.cpu_busy()
    pace = overload.frame_pacer(0.05, 0.2)
    await asyncio.sleep(0.3)
    assert monitor.cores < 0.3
    computing_until = time.monotonic() + 1.5
    while time.monotonic() < computing_until:  # busy, though the loop still runs its timers about on time
        sum(range(20_000))
        await asyncio.sleep(0)
    # A whole core for 1.5 s reads about 0.78 (smoothed over a second); on a crowded test machine, less.
    assert monitor.cores > 0.35
    assert overload.overloaded(0, 0.3) and not overload.overloaded(0, 0)  # 0 turns the check off
    await asyncio.sleep(overload.TICK * 2)
    assert pace() == 0.2  # a busy process sends fewer, larger frames
    await asyncio.sleep(2)
    assert monitor.cores < 0.3 and not overload.overloaded(0, 0.3)
    await calm_again(pace, 0.05)


async def test_the_recent_turn_delay_averages_the_last_seconds_and_is_zero_when_none_came(monkeypatch):
    monkeypatch.setattr(overload, "WINDOW", 0.3)
    delays = overload.turn_delays()
    assert delays.recent() == 0.0
    delays.note(0.2)
    delays.note(0.6)
    assert abs(delays.recent() - 0.4) < 1e-9
    assert overload.overloaded(0.3) and not overload.overloaded(0.5)
    await asyncio.sleep(0.4)  # no turn reached the models since: no backlog is assumed
    assert delays.recent() == 0.0 and not overload.overloaded(0.3)


async def test_a_turn_still_waiting_counts_before_it_gets_through_and_a_refused_one_leaves_no_trace():
    delays = overload.turn_delays()
    slow = delays.begin()
    await asyncio.sleep(0.25)
    assert delays.recent() >= 0.25 and overload.overloaded(0.2)  # seen while it waits, not only after
    refused = delays.begin()
    delays.end(refused, reached_models=False)
    delays.end(slow)
    assert len(delays.samples) == 1 and delays.samples[0][1] >= 0.25 and not delays.waiting


async def test_a_turn_kept_waiting_by_its_own_process_means_fewer_larger_frames():
    """Two processes sharing a machine's cores each use well under a core when it is full; their turns run
    late, and that is what tells them to send fewer frames."""
    pace = overload.frame_pacer(0.05, 0.2)
    await asyncio.sleep(overload.TICK * 2)
    assert pace() == 0.05
    waiting = overload.turn_delays().begin()
    await asyncio.sleep(overload.FRAMES_BUSY_DELAY + overload.TICK * 2)
    assert pace() == 0.2
    overload.turn_delays().end(waiting, reached_models=False)
    await asyncio.sleep(overload.TICK * 2)
    assert pace() == 0.05


def test_a_closed_loop_leaves_no_monitor_behind():
    """One monitor per loop, forgotten with its loop: a process that makes many loops (tests, tools) keeps
    none of them alive."""
    import gc
    import weakref

    async def watch():
        overload.loop_lag()
        overload.turn_delays().begin()
        await asyncio.sleep(0.1)  # a tick or two of the lag timer has run

    loop = asyncio.new_event_loop()
    loop.run_until_complete(watch())
    assert loop in overload._monitors
    loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None  # and with it, its entry in the registry
