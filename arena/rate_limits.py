"""Counting allowances in Redis with `limits` (a well-kept rate-limiting library), shared by every process.

Moving windows in Redis, where each hit is one atomic script: a limit holds exactly under any concurrency,
across every web process. If Redis is unreachable, each process counts on its own until it is back (looser,
never absent). Used for visitors' budgets (battles/budgets.py) and failed admin logins (arena/admin_site.py).
"""

from __future__ import annotations

import ipaddress
import logging
import threading

from django.conf import settings
from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_limiters: dict[str, MovingWindowRateLimiter] = {}


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


def _call(method: str, item: RateLimitItem, identifiers: tuple[str, ...], **kwargs):
    try:
        return getattr(_limiter("redis"), method)(item, settings.SHARED_STATE_PREFIX, *identifiers, **kwargs)
    except StorageError as exc:
        logger.warning("Rate limits fall back to per-process counting (Redis unreachable): %s", exc)
        return getattr(_limiter("memory"), method)(item, settings.SHARED_STATE_PREFIX, *identifiers, **kwargs)


def hit(item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
    """Take `cost` from the allowance of `identifiers`; False (and nothing taken) if it does not hold that."""
    return _call("hit", item, identifiers, cost=cost)


def clear(item: RateLimitItem, *identifiers: str) -> None:
    """Give `identifiers` their whole allowance back."""
    _call("clear", item, identifiers)


def address_key(ip: str) -> str:
    """The address an allowance counts by: an IPv4 address as such, an IPv6 one by its /64 (a home line or a
    server is given a whole /64 and may send from any address in it, each a new allowance if counted alone),
    an IPv4 address written as IPv6 (::ffff:a.b.c.d) as the IPv4 address it is."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])  # a zone (fe80::1%eth0) names no other host
    except ValueError:
        return ip  # not an address (a test client's name): counted as given
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network((address, 64), strict=False))
    return str(address)


def reset_local() -> None:
    """Forget the per-process limiters (tests)."""
    with _lock:
        _limiters.clear()
