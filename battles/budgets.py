"""What each visitor may spend, per session and per IP address: battles, answer pairs, new sessions.

Counted with `limits` (a well-kept rate-limiting library) as moving windows in Redis, where each hit is
one atomic script: the limit holds exactly under any concurrency, across every web process. If Redis is
unreachable, each process counts on its own until it is back (looser, never absent).
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from limits import RateLimitItemPerHour
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_limiters: dict[str, MovingWindowRateLimiter] = {}


class OverBudget(Exception):
    """A visitor (session or address) has used its allowance; the message is safe to show."""


def _limiter(kind: str) -> MovingWindowRateLimiter:
    with _lock:
        if kind not in _limiters:
            if kind == "redis":
                storage = RedisStorage(
                    settings.REDIS_URL, key_prefix="limits", wrap_exceptions=True,
                    socket_timeout=0.5, socket_connect_timeout=0.5,
                )  # fmt: skip
            else:
                storage = MemoryStorage()
            _limiters[kind] = MovingWindowRateLimiter(storage)
        return _limiters[kind]


def _hit(item: RateLimitItemPerHour, *identifiers: str, cost: int = 1) -> bool:
    try:
        return _limiter("redis").hit(item, settings.SHARED_STATE_PREFIX, *identifiers, cost=cost)
    except StorageError as exc:
        logger.warning("Rate limits fall back to per-process counting (Redis unreachable): %s", exc)
        return _limiter("memory").hit(item, settings.SHARED_STATE_PREFIX, *identifiers, cost=cost)


def spend(what: str, per_hour: int, *, session: str, address: str, message: str) -> None:
    """Take one `what` from the session's and the address's hourly allowance, or raise OverBudget."""
    item = RateLimitItemPerHour(per_hour)
    for scope, who in (("session", session), ("address", address)):
        if who and not _hit(item, what, scope, who):
            raise OverBudget(message)


def reset_local() -> None:
    """Forget the per-process limiters (tests)."""
    with _lock:
        _limiters.clear()
