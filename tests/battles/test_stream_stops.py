"""Stopping a stream wherever it runs: directly in this process, through the real Redis from another."""

import asyncio
import time
import uuid

import pytest
import redis

from arena import shared_state
from battles import stream_stops


async def subscribed(url: str, timeout: float = 5.0) -> None:
    """Wait until this arena's stop channel has a listener (it subscribes with its loop's first stream)."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    while dict(client.pubsub_numsub(stream_stops.channel())).get(stream_stops.channel().encode(), 0) < 1:
        assert time.monotonic() < deadline, "the stop channel has no listener"
        await asyncio.sleep(0.02)


def running(stopped: asyncio.Event) -> str:
    stream_id = uuid.uuid4().hex
    stream_stops.stream_running(stream_id, stopped.set)
    return stream_id


async def test_a_stop_published_by_another_process_stops_the_stream_running_here(settings):
    stopped, other = asyncio.Event(), asyncio.Event()
    stream_id = running(stopped)
    running(other)
    await subscribed(settings.REDIS_URL)
    redis.Redis.from_url(settings.REDIS_URL).publish(stream_stops.channel(), stream_id)  # as another process would
    await asyncio.wait_for(stopped.wait(), timeout=5)
    assert not other.is_set()  # only the stream named
    stream_stops.stream_ended(stream_id)


async def test_a_stop_of_a_stream_here_needs_no_redis(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    stopped = asyncio.Event()
    stream_id = running(stopped)
    await asyncio.wait_for(stream_stops.stream_stop(stream_id), timeout=2)
    assert stopped.is_set()


async def test_a_stream_that_ended_is_not_stopped_and_a_stop_of_a_stream_elsewhere_is_published(settings):
    stopped = asyncio.Event()
    stream_id = running(stopped)
    stream_stops.stream_ended(stream_id)
    listener = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(stream_stops.channel())
    listener.get_message(timeout=1)  # the subscription's confirmation
    await stream_stops.stream_stop(stream_id)  # not here (any more): it goes to the other processes
    message = listener.get_message(timeout=2)
    assert message is not None and message["data"] == stream_id.encode()
    assert not stopped.is_set()
    listener.close()


@pytest.mark.timeout(60)
async def test_the_listener_comes_back_after_redis_goes_away_and_returns(settings, tmp_path, monkeypatch):
    """A Redis restart must not leave a web process deaf to stops for good (each would then wait for its
    stream's renewal)."""
    from arena.embedded_redis import embedded_redis

    monkeypatch.setattr(shared_state, "RETRY_AFTER_SECONDS", 0.2)
    with embedded_redis(data_dir=tmp_path / "first") as url:
        settings.REDIS_URL = url
        stopped = asyncio.Event()
        stream_id = running(stopped)
        await subscribed(url)
        port = redis.Redis.from_url(url).connection_pool.connection_kwargs["port"]
    # Redis is gone; another comes up on the same port.
    with embedded_redis(data_dir=tmp_path / "second", port=port) as url:
        shared_state.reset_local()
        await subscribed(url, timeout=10)
        await stream_stops.stream_stop(uuid.uuid4().hex)  # an unknown stream: published, nothing stops
        redis.Redis.from_url(url).publish(stream_stops.channel(), stream_id)
        await asyncio.wait_for(stopped.wait(), timeout=5)
