"""Endpoint API keys at rest: encrypted with a key outside the database, readable only with it."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from inference.models import Endpoint
from tests.factories import make_model

pytestmark = pytest.mark.django_db


def stored_api_key(endpoint: Endpoint) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM inference_endpoint WHERE id = %s", [endpoint.pk])
        return cursor.fetchone()[0]


def test_api_keys_are_stored_encrypted_and_read_back_plain():
    endpoint = make_model("keyed").endpoints.get()
    endpoint.api_key = "sk-very-secret-key"
    endpoint.save()
    raw = stored_api_key(endpoint)
    assert "sk-very-secret-key" not in raw and raw.startswith("gAAAA")  # a Fernet token
    assert Endpoint.objects.get(pk=endpoint.pk).api_key == "sk-very-secret-key"


def test_a_rotated_key_list_still_opens_old_secrets_and_a_wrong_key_opens_nothing(settings, caplog):
    endpoint = make_model("keyed").endpoints.get()
    endpoint.api_key = "sk-old"
    endpoint.save()
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.ENCRYPTION_KEYS]
    assert Endpoint.objects.get(pk=endpoint.pk).api_key == "sk-old"
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert Endpoint.objects.get(pk=endpoint.pk).api_key == ""
    assert "cannot be decrypted" in caplog.text
