"""Celery entry points of the battles app."""

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task(name="battles.tasks.sessions_clear_expired")
def sessions_clear_expired() -> int:
    """Delete expired visitor sessions (beat runs this hourly); returns how many were removed."""
    removed, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return removed
