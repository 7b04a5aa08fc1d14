"""Visitor sessions: issued by the arena when a visitor first starts a battle, never for a page view.

A session key the arena did not issue (a made-up cookie) loads as an empty session here, so it can never
own a battle or spend a budget of its own.
"""

from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase

from battles import budgets

ISSUED = "arena_visitor"


class SessionRefused(Exception):
    """Too many new sessions from one address; the message is safe to show."""


def session_of_cookies(cookies: dict[str, str]) -> SessionBase:
    """The session a request's cookies name (loaded from the store when first read)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return store(cookies.get(settings.SESSION_COOKIE_NAME))


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
