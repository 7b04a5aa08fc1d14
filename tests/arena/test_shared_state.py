"""Shared state reached from a busy event loop, against the real Redis."""

import asyncio
import time

from arena import shared_state

CALLS = 200  # more at once than the pool has connections


async def test_many_calls_at_once_on_a_busy_loop_overlap_and_stay_in_redis():
    """A loaded web process runs long loop iterations. Its battles' Redis calls must share the pool's
    connections together, not pass one per iteration (redis-py 6 held the pool's lock across a readiness
    check, and every call queued behind the one before: a second of waiting per battle under load), and a
    burst past the pool's size must wait for a connection rather than count as Redis being down."""
    await shared_state.close_loop_client()  # a new pool: its first connections are made during the burst
    iterations, stop = 0, False

    async def busy_loop() -> None:
        nonlocal iterations
        while not stop:
            time.sleep(0.002)  # every pass of the loop costs some work, as other battles' frames do
            iterations += 1
            await asyncio.sleep(0)

    ticker = asyncio.ensure_future(busy_loop())
    try:
        for _ in range(3):  # once formed, a queue would outlast the new connections: the later bursts show it
            before = iterations
            replies = await asyncio.gather(*(shared_state.run(lambda client: client.ping()) for _ in range(CALLS)))
            assert replies == [True] * CALLS
            assert iterations - before < CALLS // 4, "the calls took turns, one loop iteration each"
        assert shared_state.shared_state_available()
    finally:
        stop = True
        await ticker
        await shared_state.close_loop_client()
