"""Redis for state that every web process shares (endpoint health, in-flight streams, rate-limit counters),
reached so that a Redis outage degrades only what needs it: each call is short, and after a failure
Redis is left alone for a few seconds, callers getting `SharedStateDown` at once to fall back on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings

logger = logging.getLogger(__name__)

# After a failed call, skip Redis for this long: a battle should not wait on a dead server every time.
RETRY_AFTER_SECONDS = 5.0
TIMEOUT_SECONDS = 0.5
# Connections per web process. A call past them waits (up to TIMEOUT_SECONDS) for one to come back rather
# than failing: a burst of battles is not a Redis outage.
MAX_CONNECTIONS = 256


class SharedStateDown(Exception):
    """Redis is unreachable (now, or it was within the last few seconds); use the local fallback."""


_down_until = 0.0
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def shared_state_available() -> bool:
    return time.monotonic() >= _down_until


def mark_down(exc: BaseException) -> None:
    global _down_until
    if shared_state_available():
        logger.warning("Shared state (Redis) unreachable; falling back to per-process state: %s", exc)
    _down_until = time.monotonic() + RETRY_AFTER_SECONDS


def _async_client() -> aioredis.Redis:
    """One client (and connection pool) per event loop: asyncio connections can't cross loops."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, max_connections=MAX_CONNECTIONS, timeout=TIMEOUT_SECONDS,
            socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS, health_check_interval=30,
        )  # fmt: skip
        client = aioredis.Redis.from_pool(pool)  # closing the client closes its pool
        _clients[loop] = client
    return client


async def run(operation):
    """Await `operation(client)`; raise SharedStateDown (at once, while Redis was recently down) on failure."""
    if not shared_state_available():
        raise SharedStateDown("recently unreachable")
    try:
        return await operation(_async_client())
    except (TimeoutError, redis.RedisError, OSError) as exc:
        mark_down(exc)
        raise SharedStateDown(str(exc)) from exc


_sync_clients: dict[str, redis.Redis] = {}


def sync_client() -> redis.Redis:
    """This process's short-timeout client for synchronous code (database threads, tasks), one per Redis URL.
    Its pool is thread-safe and reconnects after a fork."""
    url = settings.REDIS_URL
    client = _sync_clients.get(url)
    if client is None:
        client = _sync_clients.setdefault(
            url,
            redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS),
        )
    return client


async def close_loop_client() -> None:
    """Close this event loop's client (a task that runs its own short-lived loop calls this at the end)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def reset_local() -> None:
    """Forget a recent outage (tests)."""
    global _down_until
    _down_until = 0.0
