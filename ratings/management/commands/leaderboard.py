"""Compute the Bradley-Terry leaderboard from the database, a clean_battle log or pair counts."""

import json
import os
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ratings import battle_logs, selectors, services
from ratings.engine import snapshot as fits
from ratings.engine.arena_votes import arena_votes_from_json
from ratings.engine.categories import OVERALL
from ratings.engine.leaderboard import format_table, json_safe


def parse_anchor(value: str | None) -> tuple[str, float] | None:
    if not value:
        return None
    name, sep, rating = value.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, float(rating)
    except ValueError:
        raise CommandError(
            f"--anchor must look like NAME=RATING, e.g. mixtral-8x7b-instruct-v0.1=1114; got {value!r}"
        ) from None


def refuse_unwritable(path: str) -> None:
    """A CommandError unless a file can be written at path: its directory exists and is writable, and the path
    is not itself a directory."""
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise CommandError(f"Can't write {path}: there is no directory {directory}.")
    if target.is_dir():
        raise CommandError(f"Can't write {path}: it is a directory.")
    if not os.access(target if target.exists() else directory, os.W_OK):
        raise CommandError(f"Can't write {path}: permission denied.")


class Command(BaseCommand):
    help = "Print the Bradley-Terry leaderboard (from the database unless --battles or --pair-counts is given)."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--battles", metavar="FILE", help="FastChat clean_battle JSON log.")
        source.add_argument("--pair-counts", metavar="FILE", help='Pair counts JSON: {"models", "X", "Y"}.')
        source.add_argument(
            "--arena-votes", metavar="FILE",
            help="A snapshot's arena_votes.json download: its style-controlled board and left-seat effect.",
        )  # fmt: skip
        parser.add_argument("--rounds", type=int, default=1000, help="Bootstrap rounds (default 1000).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--anchor", metavar="NAME=RATING", help="Shift ratings so that NAME has RATING.")
        parser.add_argument("--no-bootstrap", action="store_true", help="Sandwich intervals only (fast).")
        parser.add_argument(
            "--category", help="One category's board (coding, math, language:en, exclude_ties, ...): needs labelled "
            "counts, i.e. the database or a snapshot's pair_counts.json download.",
        )  # fmt: skip
        parser.add_argument(
            "--category-min-votes", type=int, default=None,
            help="Votes a category needs for a board (default CATEGORY_MIN_VOTES; a snapshot's params say which).",
        )  # fmt: skip
        parser.add_argument(
            "--ties", action="store_true",
            help="Also the two-tie (Davidson) model's tie and both-bad rates per model, as a snapshot's \"ties\".",
        )  # fmt: skip
        parser.add_argument(
            "--robustness", type=int, metavar="TOP_K", default=None,
            help="Also how many votes the order of the top TOP_K models rests on, as a snapshot's \"robustness\" "
            "(a snapshot's params name its top_k).",
        )  # fmt: skip
        parser.add_argument(
            "--style-min-votes", type=int, default=fits.STYLE_MIN_VOTES,
            help="Arena votes the style-controlled board needs (a snapshot's params say which).",
        )  # fmt: skip
        parser.add_argument("--json", metavar="OUT", help="Also write the full board as JSON here.")
        parser.add_argument(
            "--save", action="store_true", help="Store the result as the newest snapshot (database only)."
        )

    def handle(self, *args, **options):
        anchor = parse_anchor(options["anchor"])
        rounds, bootstrap = options["rounds"], not options["no_bootstrap"]
        if rounds < 0:
            raise CommandError("--rounds must be 0 or more.")
        source = options["battles"] or options["pair_counts"] or options["arena_votes"]
        if options["save"] and source:
            raise CommandError("--save stores a snapshot of the database; it can't be used with a file.")
        if options["json"]:
            refuse_unwritable(options["json"])  # now, not after minutes of bootstrap
        started = time.perf_counter()
        with tqdm(total=rounds if bootstrap else 0, desc="bootstrap", unit="round", disable=not bootstrap or rounds == 0,
                  file=self.stderr._out) as bar:  # fmt: skip

            def progress(done: int, total: int) -> None:
                bar.update(done - bar.n)

            try:
                if options["save"]:
                    snapshot = services.leaderboard_recompute(
                        rounds=rounds, seed=options["seed"], anchor=anchor, bootstrap=bootstrap, progress=progress
                    )
                    payload = selectors.leaderboard_payload(snapshot_id=snapshot.pk)
                    board = {**payload, "params": snapshot.params}
                elif options["arena_votes"]:
                    board = self._arena_votes_boards(options, anchor=anchor, rounds=rounds if bootstrap else 0)
                elif options["category"] and options["category"] != OVERALL:
                    # "overall" is the snapshot's own board (the exact bootstrap, below), not the shared
                    # bootstrap's approximate one that comes with the categories.
                    board = self._category_board(options, anchor=anchor, rounds=rounds if bootstrap else 0)
                else:
                    if source:
                        fmt = battle_logs.CLEAN_BATTLE if options["battles"] else battle_logs.PAIR_COUNTS
                        log = battle_logs.read_battle_log(source, fmt)
                        pc, label = log.counts, source
                    else:
                        pc, label = selectors.pair_counts_load(), "database"
                    if pc.n_battles == 0:
                        raise CommandError(f"No battles in {label}.")
                    board = fits.overall_board(
                        pc, rounds=rounds, seed=options["seed"], anchor=anchor, bootstrap=bootstrap, progress=progress,
                        ties=options["ties"],
                    )  # fmt: skip
                    if options["robustness"] is not None:
                        board["robustness"] = fits.robustness(pc, top_k=options["robustness"])
                    board["source"] = label
            except (battle_logs.BattleLogError, services.LeaderboardEmpty, ValueError) as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(format_table(board))
        for part in (board, board.get("position") or {}):
            if part.get("reason"):
                self.stdout.write(part["reason"])
        if board.get("position") and not board["position"]["reason"]:
            position = board["position"]
            self.stdout.write(f"Left-seat advantage: {position['elo_points']:.1f} Elo points "
                              f"(95% CI {position['ci_lower']:.1f} to {position['ci_upper']:.1f})")  # fmt: skip
        n_battles = sum(row["votes"] for row in board["models"]) // 2
        self.stdout.write(
            f"\n{len(board['models'])} models, {n_battles:,} battles, {time.perf_counter() - started:.1f} s"
        )
        if options["save"]:
            self.stdout.write(f"Saved snapshot #{snapshot.pk}.")
        if options["json"]:
            try:
                with open(options["json"], "w", encoding="utf-8") as handle:
                    json.dump(json_safe(board), handle, indent=1)
            except OSError as exc:  # changed since the check above
                raise CommandError(f"Can't write {options['json']}: {exc.strerror or exc}") from exc
            self.stdout.write(f"Wrote {options['json']}")

    def _arena_votes_boards(self, options, *, anchor, rounds) -> dict:
        """The style-controlled board and the left-seat effect, fitted as a snapshot fits them."""
        try:
            votes = arena_votes_from_json(json.loads(Path(options["arena_votes"]).read_text(encoding="utf-8")))
        except OSError as exc:
            raise CommandError(f"Can't read {options['arena_votes']}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"{options['arena_votes']} is not JSON: {exc}") from exc
        board, position = fits.arena_vote_boards(
            votes, rounds=rounds, seed=options["seed"], style_min_votes=options["style_min_votes"], anchor=anchor
        )
        return {**board, "position": position, "source": options["arena_votes"]}

    def _category_board(self, options, *, anchor, rounds) -> dict:
        """One category's board, fitted exactly as a snapshot fits it (same shared draws, same settings)."""
        if options["battles"]:
            raise CommandError("--category needs labelled counts: the database, or --pair-counts with a download.")
        if options["pair_counts"]:
            lpc = battle_logs.read_labelled_pair_counts(options["pair_counts"])
        else:
            lpc = selectors.labelled_pair_counts_load()
        min_votes = options["category_min_votes"]
        min_votes = settings.CATEGORY_MIN_VOTES if min_votes is None else min_votes
        boards = fits.categories(lpc, rounds=rounds, seed=options["seed"], min_votes=min_votes, anchor=anchor)
        if options["category"] not in boards:
            choices = ", ".join([OVERALL, *boards])
            raise CommandError(f"No board for {options['category']!r}; there are: {choices}.")
        return {**boards[options["category"]], "source": options["pair_counts"] or "database"}
