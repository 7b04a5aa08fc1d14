"""What each visitor may spend, per session and per IP address: battles, answer pairs, new sessions.

Counted in Redis through arena/rate_limits.py (exact under any concurrency, across every web process).
"""

from __future__ import annotations

from limits import RateLimitItemPerHour

from arena import rate_limits


class OverBudget(Exception):
    """A visitor (session or address) has used its allowance; the message is safe to show."""


def spend(what: str, per_hour: int, *, session: str, address: str, message: str) -> None:
    """Take one `what` from the session's and the address's hourly allowance, or raise OverBudget."""
    item = RateLimitItemPerHour(per_hour)
    for scope, who in (("session", session), ("address", address)):
        if who and not rate_limits.hit(item, what, scope, who):
            raise OverBudget(message)
