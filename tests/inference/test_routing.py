"""Routing over the shared Redis state: slots under each replica's cap, least-loaded first, no leaks."""

import asyncio
import random
import time
from urllib.parse import urlsplit

import pytest
import redis

from arena import shared_state
from inference import health, routing
from inference.circuit import DEGRADED, DOWN, HEALTHY, Health
from inference.routing import Replica, ReplicaState


def replica(endpoint_id: int, cap: int = 2, model_id: int = 1) -> Replica:
    return Replica(endpoint_id, model_id, f"http://r{endpoint_id}/v1", "m", "", cap)


def test_preference_is_healthy_then_degraded_then_a_due_trial_each_least_loaded_first():
    now = 1000.0
    states = [
        ReplicaState(replica(1), Health(state=DEGRADED), 0),
        ReplicaState(replica(2), Health(state=HEALTHY), 1),
        ReplicaState(replica(3), Health(state=HEALTHY), 0),
        ReplicaState(replica(4), Health(state=DOWN, retry_at=now - 1), 0),
        ReplicaState(replica(5), Health(state=DOWN, retry_at=now + 60), 0),  # not yet: skipped
        ReplicaState(replica(6), Health(state=HEALTHY), 2),  # full: skipped
    ]
    order = routing.preference_order(states, now=now, rng=random.Random(0))
    assert [s.replica.endpoint_id for s in order] == [3, 2, 1, 4]


async def test_slots_are_shared_and_capped_and_come_back_on_release():
    replicas = [replica(1, cap=2)]
    first = await routing.reserve(replicas, hold_seconds=60)
    second = await routing.reserve(replicas, hold_seconds=60)
    assert first and second and not first.local
    assert await routing.reserve(replicas, hold_seconds=60) is None  # cap reached
    [state] = await routing.replica_states(replicas)
    assert state.in_flight == 2
    await routing.release(first)
    assert await routing.reserve(replicas, hold_seconds=60) is not None


async def test_a_lease_of_a_process_that_died_lapses_on_its_own():
    replicas = [replica(1, cap=1)]
    assert await routing.reserve(replicas, hold_seconds=0.5) is not None  # never released
    assert await routing.reserve(replicas, hold_seconds=60) is None
    await asyncio.sleep(0.6)
    assert await routing.reserve(replicas, hold_seconds=60) is not None


async def test_a_cancelled_stream_still_releases_its_slot():
    replicas = [replica(1, cap=1)]

    async def stream():
        lease = await routing.reserve(replicas, hold_seconds=60)
        try:
            await asyncio.sleep(30)  # the visitor closes the socket meanwhile
        finally:
            await routing.release(lease)

    task = asyncio.ensure_future(stream())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [state] = await routing.replica_states(replicas)
    assert state.in_flight == 0


async def test_a_release_after_a_whole_answer_notes_the_endpoints_success_with_the_slot():
    replicas = [replica(1, cap=1)]
    await health.record_failure(1, error="a blip")
    lease = await routing.reserve(replicas, hold_seconds=60)
    await routing.release(lease, answered=routing.Answered(ttft=0.25, duration=3.0))
    [state] = await routing.replica_states(replicas)
    assert state.in_flight == 0
    assert (state.health.failures, state.health.ttft, state.health.duration) == (0, 0.25, 3.0)
    assert state.health.last_ok_at > 0
    lease = await routing.reserve(replicas, hold_seconds=60)
    await routing.release(lease)  # a stream that failed or was cut short notes no success
    [state] = await routing.replica_states(replicas)
    assert (state.in_flight, state.health.ttft) == (0, 0.25)


async def test_without_redis_a_release_notes_the_success_in_the_processs_own_view(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    replicas = [replica(1, cap=1)]
    lease = await routing.reserve(replicas, hold_seconds=60)
    assert lease is not None and lease.local
    await routing.release(lease, answered=routing.Answered(ttft=0.5, duration=2.0))
    assert health.local_health([1])[1].ttft == 0.5
    # A lease taken in Redis before Redis went away: its answer is noted here all the same.
    taken_in_redis = routing.Lease(replicas[0], "lease-id", local=False)
    await routing.release(taken_in_redis, answered=routing.Answered(ttft=1.5, duration=2.0))
    assert health.local_health([1])[1].ttft == pytest.approx(0.5 + health.POLICY.smoothing * (1.5 - 0.5))


async def test_availability_tells_ready_from_busy_with_a_wait_from_the_average_answer():
    await health.record_success(2, ttft=0.1, duration=8.0)
    fleet = {10: [replica(1, cap=1, model_id=10)], 20: [replica(2, cap=1, model_id=20)]}
    await routing.reserve(fleet[20], hold_seconds=60)
    ready = await routing.availability(fleet)
    assert ready.ready == {10} and ready.busy == {20} and ready.retry_after == 4


async def test_without_redis_each_process_counts_its_own_slots(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    replicas = [replica(1, cap=1)]
    began = time.monotonic()
    lease = await routing.reserve(replicas, hold_seconds=60)
    assert lease is not None and lease.local
    assert await routing.reserve(replicas, hold_seconds=60) is None
    await routing.release(lease)
    assert await routing.reserve(replicas, hold_seconds=60) is not None
    assert time.monotonic() - began < 2  # one short timeout, then Redis is left alone for a while
    assert not shared_state.shared_state_available()


async def test_a_reserve_chooses_by_the_states_it_was_given_and_still_takes_the_slot_atomically():
    """A battle just drawn chooses its first replica by the look that drew it (no second look), yet a stale
    look cannot overfill a replica: the slot is taken in Redis under the cap."""
    replicas = [replica(1, cap=4), replica(2, cap=4), replica(3, cap=1)]
    await routing.reserve([replicas[0]], hold_seconds=60)  # now: 1 has a stream, 2 none, 3 none
    await routing.reserve([replicas[2]], hold_seconds=60)  # and 3 is full
    # The look saw otherwise: 3 and 1 free, 2 busy.
    seen = {
        1: ReplicaState(replicas[0], Health(), 0),
        2: ReplicaState(replicas[1], Health(), 2),
        3: ReplicaState(replicas[2], Health(), 0),
    }
    without_seen = await routing.reserve(replicas[:2], hold_seconds=60)
    assert without_seen.replica.endpoint_id == 2  # a fresh look: 2 is the least loaded
    with_seen = await routing.reserve(replicas[:2], hold_seconds=60, seen=seen)
    assert with_seen.replica.endpoint_id == 1  # by the look it was given
    # 3 looked free and first, but is full: its slot is refused, and the next by the look (2) is taken.
    seen[1] = ReplicaState(replicas[0], Health(), 3)
    assert (await routing.reserve(replicas, hold_seconds=60, seen=seen)).replica.endpoint_id == 2
    assert [s.in_flight for s in await routing.replica_states(replicas)] == [2, 2, 1]


async def test_a_slot_redis_could_not_be_told_about_comes_back_once_redis_answers_again(monkeypatch):
    monkeypatch.setattr(shared_state, "RETRY_AFTER_SECONDS", 0.2)
    replicas = [replica(1, cap=1)]
    lease = await routing.reserve(replicas, hold_seconds=60)
    shared_state.mark_down(TimeoutError("a call took over 0.5 s"))  # Redis is left alone for a while
    await routing.release(lease)
    await asyncio.sleep(0.5)  # Redis answers again
    [state] = await routing.replica_states(replicas)
    assert state.in_flight == 0  # not held until the lease's expiry, a minute from now
    assert await routing.reserve(replicas, hold_seconds=60) is not None


class SlowReplies:
    """A TCP link to Redis that can hold Redis's replies back (a slow network, a starved client): a test
    double at the edge. Commands go through at once, so Redis runs them, and their replies come `delay`
    late; or commands are held too (`command_delay`), as when the network to Redis is cut."""

    def __init__(self, redis_url: str):
        self.target = urlsplit(redis_url)
        self.delay = 0.0
        self.command_delay = 0.0

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self.target.path}"

    async def _link(self, reader, writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(self.target.hostname, self.target.port)

        async def carry(source, sink, delay):
            loop = asyncio.get_running_loop()
            while data := await source.read(65536):
                if delay():
                    loop.call_later(delay(), sink.write, data)
                else:
                    sink.write(data)
            sink.close()

        await asyncio.gather(
            carry(reader, upstream_writer, lambda: self.command_delay),
            carry(upstream_reader, writer, lambda: self.delay),
            return_exceptions=True,
        )


@pytest.fixture
async def slow_redis(settings, monkeypatch):
    """The code under test reaches Redis through a SlowReplies link; `link.slots_held()` reads endpoint 1's
    leases straight from Redis. An owed release is retried every 0.2 s."""
    monkeypatch.setattr(shared_state, "RETRY_AFTER_SECONDS", 0.2)
    direct = redis.Redis.from_url(settings.REDIS_URL)
    leases_key = f"{settings.SHARED_STATE_PREFIX}:endpoint:1:leases"
    async with SlowReplies(settings.REDIS_URL) as link:
        settings.REDIS_URL = link.url()
        link.slots_held = lambda: direct.zcard(leases_key)
        yield link


async def test_a_slot_taken_by_a_call_whose_reply_came_too_late_is_given_back_once_redis_answers(slow_redis):
    link, replicas = slow_redis, [replica(1, cap=1)]
    [seen] = await routing.replica_states(replicas)  # connected through the link while it is quick
    link.delay = 1.0  # past the 0.5 s a call may take
    lease = await routing.reserve(replicas, hold_seconds=60, seen={1: seen})
    assert lease is not None and lease.local  # Redis looked unreachable: counted in this process
    assert link.slots_held() == 1  # yet Redis ran the call and took the slot
    link.delay = 0.0  # Redis answers in time again
    await routing.release(lease)
    await asyncio.sleep(0.6)
    assert link.slots_held() == 0  # not held until the lease's expiry, a minute from now
    assert (await routing.reserve(replicas, hold_seconds=60)).local is False


async def test_a_slot_taken_as_its_stream_was_cancelled_is_given_back(slow_redis):
    """The visitor left while Redis took the slot: the reply is never read, yet the slot comes back."""
    link, replicas = slow_redis, [replica(1, cap=1)]
    [seen] = await routing.replica_states(replicas)
    link.delay = 0.3  # within the 0.5 s a call may take
    reserving = asyncio.ensure_future(routing.reserve(replicas, hold_seconds=60, seen={1: seen}))
    await asyncio.sleep(0.15)
    assert link.slots_held() == 1  # Redis took the slot; its reply is on its way
    reserving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reserving
    link.delay = 0.0
    await asyncio.sleep(0.6)
    assert link.slots_held() == 0  # not held until the lease's expiry, a minute from now


async def test_a_release_cancelled_while_redis_is_slow_still_gives_the_slot_back(slow_redis):
    link, replicas = slow_redis, [replica(1, cap=1)]
    lease = await routing.reserve(replicas, hold_seconds=60)
    link.delay = link.command_delay = 60.0  # cut off: the release cannot reach Redis; it times out at 0.5 s
    releasing = asyncio.ensure_future(routing.release(lease))
    await asyncio.sleep(0.1)
    releasing.cancel()  # its stream's task is cancelled again meanwhile
    with pytest.raises(asyncio.CancelledError):
        await releasing
    await asyncio.sleep(0.6)  # the release timed out in the background
    assert link.slots_held() == 1
    link.delay = link.command_delay = 0.0
    await asyncio.sleep(0.6)
    assert link.slots_held() == 0  # not held until the lease's expiry, a minute from now
