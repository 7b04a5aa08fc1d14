"""System checks `migrate` runs at every start (`make run`): problems an admin should hear of before a
visitor does."""

from django.core import checks
from django.db import DatabaseError

# The migration that encrypted the keys stored before it as plain text.
ENCRYPTING_MIGRATION = ("inference", "0003_encrypt_api_keys")


@checks.register(checks.Tags.database)
def api_keys_readable(app_configs=None, databases=None, **kwargs):
    """Endpoint API keys that the configured encryption key cannot open: the database was restored or
    copied without var/encryption_key (a new key was generated) or ARENA_ENCRYPTION_KEY changed. Those
    endpoints send no key and their API refuses every answer; a warning, not an error, so the rest of
    the arena still starts."""
    if not databases:
        return []
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    from inference.models import Endpoint
    from inference.selectors import endpoints_with_unreadable_keys

    try:
        if ENCRYPTING_MIGRATION not in MigrationRecorder(connection).applied_migrations():
            return []  # not migrated yet: the table is missing, or its keys are plain text until this runs
        unreadable = endpoints_with_unreadable_keys()
    except DatabaseError:  # the database itself cannot be read: migrate says so next
        return []
    if not unreadable:
        return []
    names = Endpoint.objects.filter(pk__in=unreadable).values_list("model__name", "base_url")
    listed = ", ".join(f"{name} ({url})" for name, url in names)
    return [
        checks.Warning(
            f"{len(unreadable)} endpoint API key(s) cannot be decrypted with the configured encryption key: {listed}",
            hint="Restore the encryption_key file of ARENA_VAR_DIR (or ARENA_ENCRYPTION_KEY) that went with this "
            "database, or type each key again in the admin.",
            id="inference.W001",
        )
    ]
