"""Visitor sessions: issued by the arena when a visitor first starts a battle, never for a page view.

A session key the arena did not issue (a made-up cookie) loads as an empty session here, so it can never
own a battle or spend a budget of its own.
"""

from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import cache

from battles import budgets

ISSUED = "arena_visitor"


class SessionRefused(Exception):
    """Too many new sessions from one address; the message is safe to show."""


# A battle socket asks whether its session was issued each time it opens (a query, 2% of a busy web
# process's CPU). A session is issued once and never revoked, only expires, so a yes is remembered in this
# process for a few minutes: at worst a session opens sockets that long past its expiry.
ISSUED_MEMORY_SECONDS = 300
_LONGEST_KEY = 64  # Django's keys are 32 characters; a longer cookie is not worth a cache entry


def session_recently_issued(key: str) -> bool:
    """Whether this process saw the session issued lately (memory only: safe on the event loop)."""
    return len(key) <= _LONGEST_KEY and bool(cache.get(_issued_memo(key)))


def session_key_issued(key: str) -> bool:
    """Whether the session with this key was issued by the arena (reads the session store)."""
    issued = session_is_issued(import_module(settings.SESSION_ENGINE).SessionStore(key))
    if issued and len(key) <= _LONGEST_KEY:
        cache.set(_issued_memo(key), True, ISSUED_MEMORY_SECONDS)
    return issued


def _issued_memo(key: str) -> str:
    return f"arena:session-issued:{key}"


def session_is_issued(session: SessionBase) -> bool:
    """Whether the arena issued this session (reads it from the session store)."""
    return bool(session.get(ISSUED))


def session_issue(session: SessionBase, *, address: str) -> str:
    """The visitor's session key, issuing (and storing) a session first if it has none yet."""
    if not session_is_issued(session):
        limit = settings.SESSIONS_PER_HOUR
        try:
            budgets.spend("sessions", limit, session="", address=address,
                          message=f"Too many new visitors from your address in the last hour (limit {limit}); "
                          "please come back later.")  # fmt: skip
        except budgets.OverBudget as exc:
            raise SessionRefused(str(exc)) from None
        session.cycle_key()  # never adopt a key the visitor sent us
        session[ISSUED] = True
        session.save()
    return session.session_key
