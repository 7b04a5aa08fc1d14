"""Every endpoint's live health, shared by all web processes through Redis.

Passive signals (each stream's outcome and time to first token) and the periodic probe
(`inference.tasks.endpoints_probe`) move an endpoint through `circuit.py`'s states. If Redis is down,
health is kept per process instead, so routing goes on with what this process has seen.
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings

from arena import shared_state
from arena.shared_state import SharedStateDown
from inference import circuit
from inference.circuit import Health

logger = logging.getLogger(__name__)

POLICY = circuit.Policy()
# A trial request to a down endpoint is granted to one stream at a time, for at most this long.
TRIAL_SECONDS = 30
_local: dict[int, Health] = {}  # fallback while Redis is unreachable


def _key(endpoint_id: int) -> str:
    return f"{settings.SHARED_STATE_PREFIX}:endpoint:{endpoint_id}:health"


async def health_of(endpoint_ids: list[int]) -> dict[int, Health]:
    """The current health of these endpoints (healthy for those never seen)."""
    if not endpoint_ids:
        return {}
    try:

        async def read(client):
            async with client.pipeline(transaction=False) as pipe:
                for endpoint_id in endpoint_ids:
                    pipe.hgetall(_key(endpoint_id))
                return await pipe.execute()

        rows = await shared_state.run(read)
    except SharedStateDown:
        return {endpoint_id: _local.get(endpoint_id, Health()) for endpoint_id in endpoint_ids}
    return {endpoint_id: Health.from_strings(row) for endpoint_id, row in zip(endpoint_ids, rows, strict=True)}


async def _update(endpoint_id: int, change) -> Health:
    """Apply `change(Health) -> Health` atomically (optimistic WATCH/MULTI, retried on a race)."""
    key = _key(endpoint_id)

    async def transact(client):
        for _ in range(5):
            async with client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    new = change(Health.from_strings(await pipe.hgetall(key)))
                    pipe.multi()
                    pipe.hset(key, mapping=new.as_strings())
                    pipe.expire(key, 7 * 24 * 3600)
                    await pipe.execute()
                    return new
                except redis.WatchError:
                    continue
        return new  # five races in a row: keep this process's view of it

    try:
        return await shared_state.run(transact)
    except SharedStateDown:
        _local[endpoint_id] = change(_local.get(endpoint_id, Health()))
        return _local[endpoint_id]


async def record_success(endpoint_id: int, *, ttft: float | None, duration: float | None) -> Health:
    now = time.time()
    return await _update(
        endpoint_id, lambda h: circuit.after_success(h, now=now, ttft=ttft, duration=duration, policy=POLICY)
    )


async def record_failure(endpoint_id: int, *, error: str) -> Health:
    now = time.time()
    health = await _update(endpoint_id, lambda h: circuit.after_failure(h, now=now, error=error, policy=POLICY))
    if health.state == circuit.DOWN and health.failures == POLICY.failures_to_open:
        logger.warning("Endpoint %s is down after %s failures in a row: %s", endpoint_id, health.failures, error)
    return health


async def record_probe(endpoint_id: int, *, ok: bool, error: str = "") -> Health:
    now = time.time()
    return await _update(endpoint_id, lambda h: circuit.after_probe(h, now=now, ok=ok, error=error, policy=POLICY))


async def claim_trial(endpoint_id: int) -> bool:
    """Whether this stream may be the one trial request sent to a down endpoint whose wait is over."""
    try:
        return bool(
            await shared_state.run(
                lambda client: client.set(
                    f"{settings.SHARED_STATE_PREFIX}:endpoint:{endpoint_id}:trial", "1", nx=True, ex=TRIAL_SECONDS
                )
            )
        )
    except SharedStateDown:
        return True  # per process: at worst each process sends one trial


def reset_local() -> None:
    """Forget the per-process fallback (tests)."""
    _local.clear()
