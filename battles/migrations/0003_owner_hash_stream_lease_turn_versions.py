"""Battles keep only a keyed hash of the owning session (under HASH_KEY, not SECRET_KEY), hold a stream
lease, and turns and votes carry the answers' version. Raw session keys stored before are hashed here and
dropped; judge ids are recomputed under HASH_KEY so a visitor's old and new votes share one id. Address
hashes made under SECRET_KEY cannot be recomputed (the addresses were never kept) and are cleared."""

import hashlib
import hmac

from django.conf import settings
from django.db import migrations, models


def _visitor_hash(session_key: str) -> str:
    return hmac.new(settings.HASH_KEY.encode(), f"session:{session_key}".encode(), hashlib.sha256).hexdigest()


def hash_owners(apps, schema_editor):
    Battle = apps.get_model("battles", "Battle")
    Vote = apps.get_model("battles", "Vote")
    for battle in Battle.objects.all().only("pk", "session_key").iterator():
        Battle.objects.filter(pk=battle.pk).update(owner_hash=_visitor_hash(battle.session_key), client_hash="")
        Vote.objects.filter(battle_id=battle.pk).update(judge_hash=_visitor_hash(battle.session_key))


class Migration(migrations.Migration):
    dependencies = [
        ("battles", "0002_vote_exclusion_and_client_hash"),
    ]

    operations = [
        migrations.AddField(
            model_name="battle",
            name="owner_hash",
            field=models.CharField(
                db_index=True, default="", max_length=64,
                help_text="Keyed hash of the visitor session that owns it (never the session).",
            ),
            preserve_default=False,
        ),
        migrations.RunPython(hash_owners, migrations.RunPython.noop),
        migrations.RemoveField(model_name="battle", name="session_key"),
        migrations.AlterField(
            model_name="battle",
            name="client_hash",
            field=models.CharField(blank=True, db_index=True, help_text="Keyed hash of the visitor's IP address.", max_length=64),
        ),
        migrations.AddField(model_name="battle", name="stream_id", field=models.CharField(blank=True, max_length=32)),
        migrations.AddField(model_name="battle", name="streaming_until", field=models.DateTimeField(blank=True, null=True)),
        migrations.AddField(model_name="turn", name="version", field=models.PositiveSmallIntegerField(default=1)),
        migrations.AddField(model_name="vote", name="turn_version", field=models.PositiveSmallIntegerField(default=1)),
        migrations.AlterField(
            model_name="vote",
            name="judge_hash",
            field=models.CharField(db_index=True, help_text="Keyed hash of the session; no raw id or IP.", max_length=64),
        ),
    ]
