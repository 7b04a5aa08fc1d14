"""Stopping a running stream from wherever its battle is taken over.

A visitor whose connection dropped mid-answer gets a new socket and presses Regenerate; the web server may
not notice the old socket is gone for tens of seconds (its pings time out), and meanwhile the old stream
would hold the battle and its models' slots. The regenerate takes the battle over instead
(services.turn_regenerate), and the old stream is stopped here: at once when it runs in this process, through
one Redis channel that every web process listens on when it runs in another. A stop lost on the way (Redis
down, a process not yet subscribed) still lands at the old stream's next renewal, which finds its hold gone
(streaming._keep_stream).

The channel carries only stream ids (random, unguessable, never shown to a visitor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

import redis.asyncio as aioredis
from django.conf import settings

from arena import shared_state

logger = logging.getLogger(__name__)


def channel() -> str:
    """The Redis channel of this arena's stops (arenas sharing a Redis keep apart by their prefix)."""
    return f"{settings.SHARED_STATE_PREFIX}:stream-stops"


class _LoopStreams:
    """The streams running on one event loop, by id, each with the call that stops it; and the loop's
    listener on the channel, started with its first stream."""

    def __init__(self) -> None:
        self.stops: dict[str, Callable[[], None]] = {}
        self.listener: asyncio.Task | None = None


# By loop: one in a web process; many in tests, or in code run with asyncio.run. (Not weakly keyed: an
# entry's listener task holds its loop. A closed loop's entry goes when the next loop's comes.)
_loops: dict[asyncio.AbstractEventLoop, _LoopStreams] = {}


def _here() -> _LoopStreams:
    loop = asyncio.get_running_loop()
    streams = _loops.get(loop)
    if streams is None:
        for closed in [other for other in _loops if other.is_closed()]:
            del _loops[closed]
        streams = _loops[loop] = _LoopStreams()
    return streams


def stream_running(stream_id: str, stop: Callable[[], None]) -> None:
    """Note a stream starting on this loop; `stop()` ends it (called on this loop, at most once)."""
    streams = _here()
    streams.stops[stream_id] = stop
    if streams.listener is None or streams.listener.done():
        streams.listener = asyncio.ensure_future(_listen(streams))


def stream_ended(stream_id: str) -> None:
    """The stream is ending: a stop from now on finds nothing to stop."""
    _here().stops.pop(stream_id, None)


def stop_here(stream_id: str) -> bool:
    """Stop the stream if it runs on this loop; whether it did."""
    stop = _here().stops.pop(stream_id, None)
    if stop is None:
        return False
    stop()
    return True


async def stream_stop(stream_id: str) -> None:
    """Stop the stream wherever it runs: here, or in whichever web process listens and has it. Best effort
    when Redis is down (the stream then stops at its next renewal)."""
    if stop_here(stream_id):
        return
    with contextlib.suppress(shared_state.SharedStateDown):
        await shared_state.run(lambda client: client.publish(channel(), stream_id))


# A subscription waits on its connection with no timeout, and redis-py checks its health only before a
# read: a connection dropped without a word (a NAT or proxy timing it out, a failover) would leave the
# process deaf to stops for good. TCP keepalive finds it gone within about 25 s (Linux's options).
KEEPALIVE = {
    getattr(socket, name): value
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
    if hasattr(socket, name)
}


async def _listen(streams: _LoopStreams) -> None:
    """Stop this loop's streams as their stops are published, reconnecting after Redis goes away."""
    warned = False
    while True:
        client = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=shared_state.TIMEOUT_SECONDS, health_check_interval=30,
            socket_keepalive=True, socket_keepalive_options=KEEPALIVE,
        )  # fmt: skip
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(channel())
                warned = False
                async for message in pubsub.listen():
                    stop = streams.stops.pop(message["data"].decode(errors="replace"), None)
                    if stop is not None:
                        stop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Redis went away: stops fall back on renewals meanwhile
            if not warned:  # once an outage, not every few seconds of it
                logger.warning("not listening for stream stops (Redis: %s); retrying", exc)
                warned = True
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
        await asyncio.sleep(shared_state.RETRY_AFTER_SECONDS)
