"""Endpoint API keys are encrypted at rest with a key kept outside the database (inference/fields.py)."""

from django.db import migrations, models

import inference.fields


def encrypt_existing(apps, schema_editor):
    Endpoint = apps.get_model("inference", "Endpoint")
    for endpoint in Endpoint.objects.exclude(api_key=""):
        Endpoint.objects.filter(pk=endpoint.pk).update(api_key=inference.fields.encrypt(endpoint.api_key))


def decrypt_existing(apps, schema_editor):
    Endpoint = apps.get_model("inference", "Endpoint")
    for endpoint in Endpoint.objects.exclude(api_key=""):
        Endpoint.objects.filter(pk=endpoint.pk).update(api_key=inference.fields.decrypt(endpoint.api_key))


class Migration(migrations.Migration):
    dependencies = [
        ("inference", "0002_fleet_lifecycle_and_gpu_fit"),
    ]

    operations = [
        # Room for the token first (it is longer than the key), then encrypt in place, then read it as such.
        migrations.AlterField(model_name="endpoint", name="api_key", field=models.TextField(blank=True)),
        migrations.RunPython(encrypt_existing, decrypt_existing),
        migrations.AlterField(
            model_name="endpoint", name="api_key", field=inference.fields.EncryptedTextField(blank=True)
        ),
    ]
