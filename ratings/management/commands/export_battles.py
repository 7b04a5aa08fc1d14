"""Write the arena's own votes as a FastChat clean_battle JSON log."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from battles.models import Vote
from ratings import battle_logs, selectors


class Command(BaseCommand):
    help = "Export every vote in FastChat clean_battle format (judges are hashed; no IPs or session keys)."

    def add_arguments(self, parser):
        parser.add_argument("out")

    def handle(self, *args, **options):
        records = tqdm(selectors.clean_battle_records(), total=Vote.objects.count(), unit="vote",
                       file=self.stderr._out, desc="export")  # fmt: skip
        try:
            written = battle_logs.write_clean_battles(records, options["out"])
        except battle_logs.BattleLogError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Wrote {written:,} battles to {options['out']}")
        left_out = {why: count for why, count in selectors.clean_battle_records_left_out().items() if count}
        if left_out:
            listed = ", ".join(f"{count:,} {why}" for why, count in left_out.items())
            self.stdout.write(f"Left out: {listed}")
