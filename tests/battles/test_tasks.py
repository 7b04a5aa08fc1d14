"""The battles app's periodic task: expired sessions are cleared."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from battles.tasks import sessions_clear_expired

pytestmark = pytest.mark.django_db


def test_expired_sessions_are_cleared_by_the_beat_task(client):
    from datetime import timedelta

    from django.utils import timezone

    client.post(reverse("battles:session"))
    Client().post(reverse("battles:session"))
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    assert sessions_clear_expired() == 1
    assert Session.objects.count() == 1
