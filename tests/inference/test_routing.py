"""Routing over the shared Redis state: slots under each replica's cap, least-loaded first, no leaks."""

import asyncio
import random
import time

import pytest

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
