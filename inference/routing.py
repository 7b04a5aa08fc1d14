"""Which replica serves a stream: the least-loaded healthy one with a free slot under its concurrency cap.

In-flight streams are leases in Redis, shared by every web process: one sorted set per endpoint, each
member a stream with its expiry as score. A stream releases its lease when it ends, however it ends; a
process that dies mid-stream cannot leak one, because a lease lapses on its own at the answer deadline.
With Redis unreachable, each process counts its own streams instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings

from arena import shared_state
from arena.shared_state import SharedStateDown
from inference import health
from inference.circuit import DEGRADED, DOWN, HEALTHY, Health

# Atomically: forget lapsed leases, then take a slot if one is free. KEYS[1] = the endpoint's lease set;
# ARGV = now, cap, lease id, expiry.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
  redis.call('EXPIRE', KEYS[1], 86400)
  return 1
end
return 0
"""
_local_in_flight: Counter[int] = Counter()  # fallback while Redis is unreachable


@dataclass(frozen=True)
class Replica:
    """An endpoint as routing sees it."""

    endpoint_id: int
    model_id: int
    base_url: str
    served_model_id: str
    api_key: str
    max_concurrency: int


@dataclass(frozen=True)
class ReplicaState:
    replica: Replica
    health: Health
    in_flight: int

    @property
    def free(self) -> bool:
        return self.in_flight < self.replica.max_concurrency

    @property
    def load(self) -> float:
        return self.in_flight / self.replica.max_concurrency


@dataclass(frozen=True)
class Lease:
    replica: Replica
    lease_id: str
    local: bool  # counted in this process only (Redis was down)
    expires_at: float = 0.0  # when Redis forgets it on its own (a lease taken in Redis)


def _key(endpoint_id: int) -> str:
    return f"{settings.SHARED_STATE_PREFIX}:endpoint:{endpoint_id}:leases"


async def replica_states(replicas: list[Replica]) -> list[ReplicaState]:
    """Health and in-flight count of each replica, in one round trip."""
    if not replicas:
        return []
    ids = [replica.endpoint_id for replica in replicas]
    now = time.time()
    try:

        async def read(client):
            async with client.pipeline(transaction=False) as pipe:
                for endpoint_id in ids:
                    health.queue_read(pipe, endpoint_id)
                    pipe.zcount(_key(endpoint_id), now, "+inf")
                return await pipe.execute()

        rows = await shared_state.run(read)
        healths = [health.from_read(row) for row in rows[0::2]]
        counts = rows[1::2]
    except SharedStateDown:
        local = health.local_health(ids)
        healths = [local[endpoint_id] for endpoint_id in ids]
        counts = [_local_in_flight[endpoint_id] for endpoint_id in ids]
    return [
        ReplicaState(replica, replica_health, int(in_flight))
        for replica, replica_health, in_flight in zip(replicas, healths, counts, strict=True)
    ]


def preference_order(states: list[ReplicaState], *, now: float, rng: random.Random | None = None) -> list[ReplicaState]:
    """Routable replicas with a free slot, best first: healthy before degraded before a due trial of a down
    one, then least loaded; equals in random order so no replica is everyone's first choice."""
    rng = rng or random
    rank = {HEALTHY: 0, DEGRADED: 1, DOWN: 2}
    candidates = [s for s in states if s.free and s.health.routable(now)]
    rng.shuffle(candidates)
    return sorted(candidates, key=lambda s: (rank[s.health.state], s.load))


async def _acquire(replica: Replica, lease_id: str, expires_at: float) -> bool | None:
    """True/False whether a slot was taken in Redis; None when Redis is unreachable."""
    sent = shared_state.shared_state_available()  # if not, the call is refused here and never reaches Redis
    try:
        return bool(
            await shared_state.run(
                lambda client: client.eval(
                    _ACQUIRE, 1, _key(replica.endpoint_id), time.time(), replica.max_concurrency, lease_id, expires_at
                )
            )
        )
    except SharedStateDown:
        if sent:
            # A call that timed out may still have run in Redis, its reply too late: the slot it may have
            # taken is given back once Redis answers (a lease id never taken is removed at no harm).
            _owe_release(replica.endpoint_id, lease_id, expires_at)
        return None


async def reserve(
    replicas: list[Replica],
    *,
    hold_seconds: float,
    exclude: set[int] = frozenset(),
    seen: dict[int, ReplicaState] | None = None,
) -> Lease | None:
    """A lease on the best replica with a free slot (skipping `exclude`d endpoints), or None if none has one.
    `seen`: the replicas' states as a look moments ago found them (Availability.states), to choose by
    instead of looking again; the slot itself is still taken atomically, so a stale count cannot overfill."""
    now = time.time()
    candidates = [r for r in replicas if r.endpoint_id not in exclude]
    if seen is not None and all(r.endpoint_id in seen for r in candidates):
        states = [ReplicaState(r, seen[r.endpoint_id].health, seen[r.endpoint_id].in_flight) for r in candidates]
    else:
        states = await replica_states(candidates)
    for state in preference_order(states, now=now):
        if state.health.state == DOWN and not await health.claim_trial(state.replica.endpoint_id):
            continue
        lease_id = uuid.uuid4().hex
        expires_at = time.time() + hold_seconds
        try:
            taken = await _acquire(state.replica, lease_id, expires_at)
        except asyncio.CancelledError:
            # The stream was cancelled (its visitor left) while Redis ran the call, or with its reply unread:
            # the slot it may have taken is given back.
            _owe_release(state.replica.endpoint_id, lease_id, expires_at)
            raise
        if taken is None:
            if _local_in_flight[state.replica.endpoint_id] >= state.replica.max_concurrency:
                continue
            _local_in_flight[state.replica.endpoint_id] += 1
            return Lease(state.replica, lease_id, local=True)
        if taken:
            return Lease(state.replica, lease_id, local=False, expires_at=expires_at)
    return None


@dataclass(frozen=True)
class Answered:
    """A stream that ended with a whole answer, for its endpoint's health (health.record_success)."""

    ttft: float | None
    duration: float | None


async def release(lease: Lease, *, answered: Answered | None = None) -> None:
    """Give the slot back, noting in the same round trip an answer given in full (`answered`) in the
    endpoint's health (a battle's two successes and two releases were four of its seven round trips; now
    two). Shielded, so a cancelled stream (a closed socket) still releases it."""
    endpoint_id = lease.replica.endpoint_id
    if lease.local:
        _local_in_flight[endpoint_id] -= 1
        if answered is not None:
            await health.record_success(endpoint_id, ttft=answered.ttft, duration=answered.duration)
        return
    now = time.time()

    async def remove(client):
        async with client.pipeline(transaction=False) as pipe:
            pipe.zrem(_key(endpoint_id), lease.lease_id)
            if answered is not None:
                health.queue_success(pipe, endpoint_id, ttft=answered.ttft, duration=answered.duration, now=now)
            return await pipe.execute()

    def unreached() -> None:
        if answered is not None:
            health.note_success_locally(endpoint_id, ttft=answered.ttft, duration=answered.duration, now=now)
        _owe_release(endpoint_id, lease.lease_id, lease.expires_at)

    removal = asyncio.ensure_future(shared_state.run(remove))
    try:
        await asyncio.shield(removal)
    except SharedStateDown:
        unreached()
    except asyncio.CancelledError:
        # The release goes on without its caller; should it fail, the slot is still owed.
        removal.add_done_callback(lambda done: unreached() if not done.cancelled() and done.exception() else None)
        raise


# Slots this process owes Redis: by lease set, lease id -> the lease's expiry (Redis forgets it then anyway).
# A release that cannot reach Redis (a call over 0.5 s leaves Redis alone for a few seconds) would otherwise
# leave its slot taken for the lease's whole hold (3.5 minutes by default), and once a model's slots were
# full of such leases every new battle was told the models were busy.
_owed: dict[str, dict[str, float]] = {}
_owed_flusher: asyncio.Task | None = None


def _owe_release(endpoint_id: int, lease_id: str, expires_at: float) -> None:
    """Give this slot back once Redis answers again, with every other slot owed then, in one round trip."""
    global _owed_flusher
    _owed.setdefault(_key(endpoint_id), {})[lease_id] = expires_at
    loop = asyncio.get_running_loop()
    if _owed_flusher is None or _owed_flusher.done() or _owed_flusher.get_loop() is not loop:
        _owed_flusher = loop.create_task(_flush_owed())


async def _flush_owed() -> None:
    """Every RETRY_AFTER_SECONDS, try to remove the owed leases not yet lapsed; done once none is owed."""
    while True:
        await asyncio.sleep(shared_state.RETRY_AFTER_SECONDS)
        now = time.time()
        for key, leases in list(_owed.items()):
            for lease_id in [lease_id for lease_id, until in leases.items() if until <= now]:
                del leases[lease_id]
            if not leases:
                del _owed[key]
        if not _owed:
            return
        batch = {key: list(leases) for key, leases in _owed.items()}

        async def remove(client, batch=batch):
            async with client.pipeline(transaction=False) as pipe:
                for key, lease_ids in batch.items():
                    pipe.zrem(key, *lease_ids)
                return await pipe.execute()

        with contextlib.suppress(SharedStateDown):
            await shared_state.run(remove)
            for key, lease_ids in batch.items():  # owed since the batch was taken stay owed
                leases = _owed.get(key, {})
                for lease_id in lease_ids:
                    leases.pop(lease_id, None)
                if not leases:
                    _owed.pop(key, None)
            if not _owed:
                return


@dataclass(frozen=True)
class Availability:
    """Which models can take a battle now, which are only busy, and when a busy one likely frees up."""

    ready: set[int]
    busy: set[int]
    retry_after: int  # seconds; meaningful when models are busy
    states: dict[int, ReplicaState] = field(default_factory=dict)  # what the look saw, by endpoint


# A busy model's next free slot is expected after about this share of its average answer.
_BUSY_WAIT_SHARE = 0.5


async def availability(replicas_by_model: dict[int, list[Replica]]) -> Availability:
    """Models with a routable replica that has a free slot (ready), and those whose routable replicas are
    all full (busy), from one look at the fleet's shared state."""
    everything = [replica for replicas in replicas_by_model.values() for replica in replicas]
    states = {state.replica.endpoint_id: state for state in await replica_states(everything)}
    now = time.time()
    ready, busy, waits = set(), set(), []
    for model_id, replicas in replicas_by_model.items():
        routable = [states[r.endpoint_id] for r in replicas if states[r.endpoint_id].health.routable(now)]
        if any(state.free for state in routable):
            ready.add(model_id)
        elif routable:
            busy.add(model_id)
            durations = [state.health.duration for state in routable if state.health.duration]
            waits.append(min(durations) * _BUSY_WAIT_SHARE if durations else 5.0)
    retry_after = max(1, min(60, math.ceil(min(waits)))) if waits else 5
    return Availability(ready=ready, busy=busy, retry_after=retry_after, states=states)


def reset_local() -> None:
    """Forget the per-process fallback counts and the slots owed (tests)."""
    _local_in_flight.clear()
    _owed.clear()
