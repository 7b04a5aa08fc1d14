"""Project-level pages: operators' metrics."""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from arena.metrics import exposition

# Headers a reverse proxy adds: a request carrying one came through a proxy, whatever address it comes from.
PROXY_HEADER_NAMES = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Proto", "X-Forwarded-Host", "Via")


def metrics_allowed(request) -> bool:
    """Staff, a request with the metrics token, or (unless turned off) one made on this machine. A request from
    a local reverse proxy looks local too: with PROXY_HEADERS off (the default), every visitor behind nginx was
    127.0.0.1 and could read the streams in flight per model while its answers streamed, naming both models
    before the vote. One carrying a proxy's header is not taken for local."""
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    try:
        loopback = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        loopback = False
    proxied = any(name in request.headers for name in PROXY_HEADER_NAMES)
    return settings.METRICS_FROM_LOOPBACK and loopback and not proxied


@require_GET
def metrics(request):
    if not metrics_allowed(request):
        return HttpResponseForbidden("Metrics are for operators: log in as staff or send the metrics token.")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
