"""The admin site, with failed logins limited per address.

Django's admin login takes any number of guesses, each also costing a password hash (PBKDF2, about a million
iterations in Django 5.2) on the web process's one sync thread, which HTTP votes and the pages share. An
address that has tried `ADMIN_LOGIN_FAILURES` times in 15 minutes without logging in is refused before any
password is checked (its right password too, until the window moves on): it can no longer guess, nor tie up
that thread. Each attempt is taken from the allowance before it is checked, atomically in Redis
(arena/rate_limits.py): a burst of attempts sent at once gets no more than the allowance, in every web
process; a login that succeeds gives the address its allowance back. By address, not by username, so that
no one can lock the admins out by failing under their names.
"""

import ipaddress

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpResponse
from limits import RateLimitItemPerMinute

from arena import rate_limits

WINDOW_MINUTES = 15


def _client_address(request) -> str:
    """Whose attempt this is: REMOTE_ADDR, unless that is this machine and a local proxy forwarded the request
    (PROXY_HEADERS off, the default): then every visitor was 127.0.0.1, and ten wrong passwords from anyone
    locked every admin out. The proxy names its client last in X-Forwarded-For (or in X-Real-IP); a request
    made on this machine could forge them, but it is on this machine already."""
    remote = request.META.get("REMOTE_ADDR", "")
    try:
        local = ipaddress.ip_address(remote).is_loopback
    except ValueError:
        local = False
    forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip() or request.headers.get("X-Real-IP")
    return forwarded if local and forwarded else remote


def _failures() -> RateLimitItemPerMinute:
    return RateLimitItemPerMinute(settings.ADMIN_LOGIN_FAILURES, WINDOW_MINUTES)


class ArenaAdminSite(admin.AdminSite):
    def login(self, request, extra_context=None):
        if request.method != "POST":
            return super().login(request, extra_context)
        address = rate_limits.address_key(_client_address(request))
        if not rate_limits.hit(_failures(), "admin-login", address):
            return HttpResponse(
                f"Too many failed logins from your address: try again in {WINDOW_MINUTES} minutes.",
                status=429, content_type="text/plain; charset=utf-8", headers={"Retry-After": str(WINDOW_MINUTES * 60)},
            )  # fmt: skip
        response = super().login(request, extra_context)
        if request.user.is_authenticated and request.user.is_staff:  # logged in: its earlier attempts are forgiven
            rate_limits.clear(_failures(), "admin-login", address)
        return response


class ArenaAdminConfig(AdminConfig):
    default_site = "arena.admin_site.ArenaAdminSite"


class RecordAdmin(admin.ModelAdmin):
    """A record the arena keeps through its services (battles, votes, counts, snapshots): shown in the admin,
    never added, changed or deleted there. Such an edit or delete skips the services' bookkeeping: a deleted
    vote's count stayed in the pair counts for good, a deleted import could be imported twice, a battle saved
    while it streamed wrote its old lease back."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
