"""Visitor sessions: which keys the arena issued, and the per-process memory of them."""

import pytest
from django.contrib.sessions.backends.db import SessionStore

from battles import visitors
from battles.visitors import ISSUED

pytestmark = pytest.mark.django_db


def issued_key() -> str:
    session = SessionStore()
    session[ISSUED] = True
    session.create()
    return session.session_key


def test_an_issued_session_is_remembered_once_read_and_a_made_up_one_never():
    key = issued_key()
    assert not visitors.session_recently_issued(key)  # not read yet in this process
    assert visitors.session_key_issued(key)
    assert visitors.session_recently_issued(key)

    made_up = "x" * 32
    assert not visitors.session_key_issued(made_up)
    assert not visitors.session_recently_issued(made_up)


def test_a_session_the_arena_did_not_issue_is_not_issued_even_if_it_exists():
    session = SessionStore()
    session["something"] = "else"  # e.g. an admin's login, with no battles of its own
    session.create()
    assert not visitors.session_key_issued(session.session_key)


def test_an_overlong_cookie_is_checked_against_the_store_but_never_remembered():
    overlong = "y" * 5000
    assert not visitors.session_key_issued(overlong)
    assert not visitors.session_recently_issued(overlong)
