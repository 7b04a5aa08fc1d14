"""The admin's login: failed guesses are limited per address, in Redis, across processes."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/"


@pytest.fixture
def admin_account(settings):
    settings.ADMIN_LOGIN_FAILURES = 3
    return get_user_model().objects.create_superuser("root", "root@example.org", "right-password-1")


def attempt(client: Client, password: str):
    return client.post(LOGIN, {"username": "root", "password": password, "next": "/admin/"})


def test_an_address_that_keeps_failing_is_refused_before_its_password_is_checked(admin_account):
    """Django's admin took any number of guesses (each one also a password hash on the sync thread that HTTP
    votes and pages share)."""
    guesser = Client(REMOTE_ADDR="203.0.113.5")
    for _ in range(3):
        assert attempt(guesser, "wrong").status_code == 200  # the form again, saying why
    refused = attempt(guesser, "right-password-1")
    assert refused.status_code == 429 and "Too many failed logins" in refused.content.decode()
    assert refused["Retry-After"] == "900"
    assert guesser.get("/admin/").status_code == 302  # not logged in
    # Another address is not held by this one's failures (an IPv6 visitor counts by its /64).
    assert attempt(Client(REMOTE_ADDR="2001:db8:1:2::5"), "right-password-1").status_code == 302


def test_logins_that_succeed_are_not_counted(admin_account):
    for _ in range(5):
        client = Client(REMOTE_ADDR="203.0.113.6")
        assert attempt(client, "right-password-1").status_code == 302
    assert attempt(Client(REMOTE_ADDR="203.0.113.6"), "wrong").status_code == 200


def test_a_neighbour_in_the_same_ipv6_64_shares_the_allowance(admin_account):
    for last in range(3):
        attempt(Client(REMOTE_ADDR=f"2001:db8:9:9::{last + 1}"), "wrong")
    assert attempt(Client(REMOTE_ADDR="2001:db8:9:9::ff"), "right-password-1").status_code == 429


def test_a_burst_of_attempts_sent_at_once_gets_no_more_than_the_allowance(admin_account):
    """Checked first and counted after the password, attempts sent at once all passed the check: a burst of
    guesses got through in one window, however small the allowance."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def guess(_):
        try:
            return attempt(Client(REMOTE_ADDR="203.0.113.7"), "wrong").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(guess, range(8)))
    assert sorted(answers) == [200] * 3 + [429] * 5


def test_behind_a_local_proxy_each_visitor_has_its_own_allowance(admin_account):
    """With PROXY_HEADERS off (the default) every request through nginx came from 127.0.0.1: anyone's three
    wrong passwords locked every admin out."""
    for forged in range(3):  # the proxy appends its client: the entries before it are the client's own words
        guesser = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"10.0.0.{forged}, 203.0.113.8")
        attempt(guesser, "wrong")
    assert attempt(guesser, "right-password-1").status_code == 429
    admin = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert attempt(admin, "right-password-1").status_code == 302
    for _ in range(3):  # a proxy that names its client in X-Real-IP instead
        attempt(Client(REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="203.0.113.9"), "wrong")
    real_ip = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "203.0.113.9"}
    assert attempt(Client(**real_ip), "right-password-1").status_code == 429
    assert attempt(Client(**{**real_ip, "HTTP_X_REAL_IP": "198.51.100.5"}), "right-password-1").status_code == 302
