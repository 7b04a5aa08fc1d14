"""Load an outside battle log (FastChat clean_battle or pair counts) into PairCount, once per file."""

import time

from django.core.management.base import BaseCommand, CommandError

from ratings import battle_logs, services


class Command(BaseCommand):
    help = "Import a FastChat clean_battle JSON log or pair counts as historical (inactive) models and counts."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", choices=["auto", *battle_logs.FORMATS], default="auto")

    def handle(self, *args, **options):
        started = time.perf_counter()
        fmt = None if options["format"] == "auto" else options["format"]
        try:
            record = services.battles_import(path=options["file"], format=fmt)
        except (services.ImportRefused, battle_logs.BattleLogError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Imported {record.battle_count:,} battles between {record.model_count} models from "
            f"{record.filename} ({record.format}) in {time.perf_counter() - started:.1f} s."
        )
