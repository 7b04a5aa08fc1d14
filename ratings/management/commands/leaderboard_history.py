"""Replay a timestamped FastChat clean_battle log as monthly cumulative boards, stored for the history charts."""

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ratings import battle_logs, services
from ratings.management.commands.leaderboard import parse_anchor


class Command(BaseCommand):
    help = (
        "Fit the board of all battles before each month start of a clean_battle log (battles need `tstamp`) and "
        "store them as that log's rating history, replacing an earlier replay of the same source. Replays are "
        "shown on the model and history pages; they never become the board the site serves."
    )

    def add_arguments(self, parser):
        parser.add_argument("--battles", metavar="FILE", required=True, help="FastChat clean_battle JSON log.")
        parser.add_argument("--anchor", metavar="NAME=RATING", help="Shift each board so that NAME has RATING.")
        parser.add_argument("--source", help="Name the history is stored under (default: the file's name).")

    def handle(self, *args, **options):
        started = time.perf_counter()
        anchor = parse_anchor(options["anchor"])
        with tqdm(desc="replay", unit="month", file=self.stderr._out) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                replay = services.rating_history_replay(
                    path=options["battles"], source=options["source"], anchor=anchor, progress=progress
                )
            except (battle_logs.BattleLogError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
        first, last = replay.cutoffs[0], replay.cutoffs[-1]
        self.stdout.write(
            f"Stored {len(replay.cutoffs)} monthly boards ({replay.points:,} points) of {replay.battles:,} battles "
            f"as {replay.source!r}, cutoffs {first:%Y-%m-%d} to {last:%Y-%m-%d}"
            f"{f'; {replay.skipped:,} records left out' if replay.skipped else ''}; "
            f"{time.perf_counter() - started:.1f} s."
        )
        # The first row is the main group's best, unless no model has a rating yet (say, only wins so far).
        if replay.last_board and replay.last_board[0]["rating"] is not None:
            leader = replay.last_board[0]
            self.stdout.write(f"At the last cutoff #1 is {leader['name']} ({leader['rating']:.1f}).")
