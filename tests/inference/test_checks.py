"""The checks `migrate` runs at every start: a database restored without its encryption key is told."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from tests.factories import make_model

pytestmark = pytest.mark.django_db


def test_migrate_warns_of_api_keys_the_configured_encryption_key_cannot_open(settings, capsys):
    keyed = make_model("keyed-api").endpoints.get()
    keyed.api_key = "sk-from-before-the-restore"
    keyed.save()
    make_model("keyless")
    call_command("migrate", "--noinput", verbosity=0, skip_checks=False)  # as `manage.py migrate` runs them
    assert "inference.W001" not in capsys.readouterr().err

    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # var/encryption_key lost with the restore
    call_command("migrate", "--noinput", verbosity=0, skip_checks=False)  # as `manage.py migrate` runs them
    err = capsys.readouterr().err
    assert "inference.W001" in err and "1 endpoint API key(s) cannot be decrypted" in err
    assert f"keyed-api ({keyed.base_url})" in err and "keyless" not in err

    call_command("models", "list")
    listing = capsys.readouterr().out
    assert "key unreadable: the encryption key that stored it is not configured" in listing
    assert listing.count("key unreadable") == 1
