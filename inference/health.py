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
# An endpoint's health hash outlives its last change by a week.
HEALTH_LIFETIME_SECONDS = 7 * 24 * 3600
_local: dict[int, Health] = {}  # fallback while Redis is unreachable


def _key(endpoint_id: int) -> str:
    return f"{settings.SHARED_STATE_PREFIX}:endpoint:{endpoint_id}:health"


def queue_read(pipe, endpoint_id: int) -> None:
    """Add the read of one endpoint's health to a Redis pipeline (routing reads it with the leases)."""
    pipe.hgetall(_key(endpoint_id))


def from_read(row: dict) -> Health:
    return Health.from_strings(row)


def local_health(endpoint_ids: list[int]) -> dict[int, Health]:
    """This process's own view, while Redis is unreachable."""
    return {endpoint_id: _local.get(endpoint_id, Health()) for endpoint_id in endpoint_ids}


async def health_of(endpoint_ids: list[int]) -> dict[int, Health]:
    """The current health of these endpoints (healthy for those never seen)."""
    if not endpoint_ids:
        return {}
    try:

        async def read(client):
            async with client.pipeline(transaction=False) as pipe:
                for endpoint_id in endpoint_ids:
                    queue_read(pipe, endpoint_id)
                return await pipe.execute()

        rows = await shared_state.run(read)
    except SharedStateDown:
        return local_health(endpoint_ids)
    return {endpoint_id: from_read(row) for endpoint_id, row in zip(endpoint_ids, rows, strict=True)}


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
                    pipe.expire(key, HEALTH_LIFETIME_SECONDS)
                    await pipe.execute()
                    return new
                except redis.WatchError:
                    continue
        return new  # five races in a row: keep this process's view of it

    try:
        return await shared_state.run(transact)
    except SharedStateDown:
        return _change_local(endpoint_id, change)


def _change_local(endpoint_id: int, change) -> Health:
    """Apply `change` to this process's own view (while Redis is unreachable)."""
    _local[endpoint_id] = change(_local.get(endpoint_id, Health()))
    return _local[endpoint_id]


# circuit.after_success, done inside Redis so a success costs one round trip (it was three: WATCH, read,
# MULTI/EXEC, retried whenever two streams of a busy endpoint finished together). The circuit's rule stays
# the reference: the local fallback uses it, and the tests hold the two equal. KEYS[1] = the health hash;
# ARGV = smoothing, now, ttft, duration ('' when unknown), the slow first-token average, the hash's lifetime.
_SUCCESS = """
local h = redis.call('HMGET', KEYS[1], 'ttft', 'duration')
local smoothing = tonumber(ARGV[1])
local function average(previous, value)
  if value == '' then return previous or '' end
  if not previous or previous == '' then return value end
  return string.format('%.17g', (1 - smoothing) * tonumber(previous) + smoothing * tonumber(value))
end
local ttft = average(h[1], ARGV[3])
local state = 'healthy'
if ttft ~= '' and tonumber(ttft) > tonumber(ARGV[5]) then state = 'degraded' end
redis.call('HSET', KEYS[1], 'state', state, 'failures', '0', 'opens', '0', 'retry_at', '0.0',
           'ttft', ttft, 'duration', average(h[2], ARGV[4]), 'last_ok_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[6])
"""


def queue_success(pipe, endpoint_id: int, *, ttft: float | None, duration: float | None, now: float) -> None:
    """Add record_success's update to a Redis pipeline (routing sends it with the lease's release)."""
    observed = ("" if ttft is None else repr(ttft), "" if duration is None else repr(duration))
    args = (POLICY.smoothing, repr(now), *observed, POLICY.slow_ttft, HEALTH_LIFETIME_SECONDS)
    pipe.eval(_SUCCESS, 1, _key(endpoint_id), *args)


def note_success_locally(endpoint_id: int, *, ttft: float | None, duration: float | None, now: float) -> None:
    """record_success in this process's own view, while Redis is unreachable."""
    _change_local(endpoint_id, lambda h: circuit.after_success(h, now=now, ttft=ttft, duration=duration, policy=POLICY))


async def record_success(endpoint_id: int, *, ttft: float | None, duration: float | None) -> None:
    """An answer streamed in full: close the circuit and move the averages (circuit.after_success)."""
    now = time.time()

    async def update(client):
        async with client.pipeline(transaction=False) as pipe:
            queue_success(pipe, endpoint_id, ttft=ttft, duration=duration, now=now)
            await pipe.execute()

    try:
        await shared_state.run(update)
    except SharedStateDown:
        note_success_locally(endpoint_id, ttft=ttft, duration=duration, now=now)


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
