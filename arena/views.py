"""Project-level pages: operators' metrics."""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from arena.metrics import exposition


def metrics_allowed(request) -> bool:
    """Staff, a request with the metrics token, or (unless turned off) one from this machine."""
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
    return settings.METRICS_FROM_LOOPBACK and loopback


@require_GET
def metrics(request):
    if not metrics_allowed(request):
        return HttpResponseForbidden("Metrics are for operators: log in as staff or send the metrics token.")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
