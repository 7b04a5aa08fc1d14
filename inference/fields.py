"""A model field whose value is encrypted at rest (Fernet: AES-128-CBC with an HMAC), for endpoint API keys.

The key lives outside the database (ARENA_ENCRYPTION_KEY, or var/encryption_key, owner-only): a copy of
the database alone does not give the keys away. Several comma-separated keys rotate: the first encrypts,
all of them decrypt.
"""

import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import connection, models

logger = logging.getLogger(__name__)


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in settings.ENCRYPTION_KEYS])


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(token: str) -> str:
    """The plain value; '' (and an error in the log) when no configured key opens it."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        logger.error("A stored secret cannot be decrypted with ARENA_ENCRYPTION_KEY (was the key changed?)")
        return ""


def undecryptable_pks(model: type[models.Model], field_name: str) -> list:
    """The rows whose stored secret in this field no configured key opens (the database restored without
    its encryption key, say: a new one is generated and the old secrets read as empty)."""
    quote = connection.ops.quote_name
    table, column = quote(model._meta.db_table), quote(model._meta.get_field(field_name).column)
    pk = quote(model._meta.pk.column)
    fernet = _fernet()
    with connection.cursor() as cursor:
        # Raw: through the ORM, the field would already have turned an unreadable value into "".
        cursor.execute(f"SELECT {pk}, {column} FROM {table} WHERE {column} <> %s", [""])
        stored = cursor.fetchall()
    unreadable = []
    for row_pk, token in stored:
        try:
            fernet.decrypt(token.encode())
        except InvalidToken:
            unreadable.append(row_pk)
    return unreadable


class EncryptedTextField(models.TextField):
    """Text stored encrypted; Python code only ever sees the plain value."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value is not None else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else value
