"""Writes for ratings: rate a vote (online Elo + pair counts), recompute a snapshot, import or replay a log."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from battles.models import Vote
from inference.models import ArenaModel
from inference.selectors import drawable_models
from inference.services import sampling_plan_store
from ratings import battle_logs, selectors
from ratings.engine import snapshot as fits
from ratings.engine.anomaly import outcome_table_from_counts, screen_judges
from ratings.engine.arena_votes import arena_votes_json
from ratings.engine.categories import canonical_json, labelled_counts_json
from ratings.engine.counts import WINNER_CODES, PairCounts
from ratings.engine.elo import elo_update
from ratings.engine.history import monthly_cutoffs, replay_history
from ratings.engine.leaderboard import json_safe
from ratings.engine.sampling import describe_policy, pair_list, policy_for_counts, policy_summary
from ratings.models import (
    FLAGGED_PREFIXES,
    UNLABELLED,
    EloRating,
    ImportedLog,
    JudgeFlag,
    LeaderboardPolicy,
    LeaderboardSnapshot,
    PairCount,
    PromptCount,
    RatedVote,
    RatingHistory,
    SnapshotArenaVotes,
    SnapshotInput,
)
from ratings.prompt_labels import high_frequency_threshold, keep_prompt_vote

logger = logging.getLogger(__name__)

ELO_K = 4.0
ELO_SCALE = 400.0
ELO_BASE = 10.0

PAIR_FIELDS = ("a_wins", "b_wins", "ties", "both_bad")  # in engine outcome-code order


class LeaderboardEmpty(Exception):
    """Nothing to rate yet: no pair has any battle."""


class ImportRefused(Exception):
    """The log was imported before (same content); adding it again would double count."""


def _vote_mark_rated(*, vote_id: int) -> None:
    Vote.objects.filter(pk=vote_id, rated_at__isnull=True).update(rated_at=timezone.now())


def _pair_count_change(*, model_a_id: int, model_b_id: int, labels: str, change: dict[str, int]) -> None:
    """Add to (or, negative, take from) an ordered pair's counts under its labels: `change` by field, e.g.
    {"a_wins": 1} for one vote, in one UPDATE."""
    pair, _ = PairCount.objects.get_or_create(model_a_id=model_a_id, model_b_id=model_b_id, labels=labels)
    PairCount.objects.filter(pk=pair.pk).update(**{field: F(field) + n for field, n in change.items()})


@transaction.atomic
def vote_rate(*, vote_id: int) -> bool:
    """Take one vote into the ratings, once: its RatedVote record (style and timing kept for later fits),
    the online Elo update and its pair count. Returns False if it was already handled, is gone, is not
    blind, or its session or address is flagged (then it is recorded but left out of the counts)."""
    vote = Vote.objects.select_for_update().select_related("battle").filter(pk=vote_id).first()
    if vote is None or vote.rated_at is not None:
        return False
    if vote.excluded_reason:
        _vote_mark_rated(vote_id=vote.pk)  # handled: kept for the record, counted nowhere
        return False
    fields = selectors.rated_vote_fields(vote)
    # Until this vote is counted or not, a flag or clear of its session or of its address waits for it.
    # Session first, then address: every vote takes them in this order, and a flag or clear takes only one
    # (after the flags' own lock, which no vote takes), so no two wait on each other.
    _judge_lock(JudgeFlag.Kind.SESSION, fields["judge_hash"])
    if fields["client_hash"]:
        _judge_lock(JudgeFlag.Kind.ADDRESS, fields["client_hash"])
    rated = RatedVote.objects.create(**fields)
    flag = _flag_holding(rated)
    if flag is None:
        _prompts_counted([rated])
        left_out = _down_sampled_reason(rated.prompt_occurrence, LeaderboardPolicy.current().duplicate_prompt_threshold)
    else:
        # Nor is it counted towards how often its prompt has been seen (until its flag is cleared,
        # _judge_votes_counted): a flagged judge voting again and again on the commonest prompts made honest
        # votes on them down-sampled sooner.
        rated.prompt_occurrence = PROMPT_NOT_COUNTED
        left_out = _flagged_reason(flag)
    if left_out:
        RatedVote.objects.filter(pk=rated.pk).update(
            in_counts=False, left_out_reason=left_out, prompt_occurrence=rated.prompt_occurrence
        )
        _vote_mark_rated(vote_id=vote.pk)
        return False
    a_id, b_id = rated.model_a_id, rated.model_b_id
    # Lock rating rows in model-id order, whatever the sides, so two concurrent votes can't deadlock.
    for model_id in sorted({a_id, b_id}):
        EloRating.objects.get_or_create(model_id=model_id)
    ratings = {
        r.model_id: r
        for r in EloRating.objects.select_for_update().filter(model_id__in=[a_id, b_id]).order_by("model_id")
    }
    new_a, new_b = elo_update(
        ratings[a_id].rating, ratings[b_id].rating, rated.outcome, k=ELO_K, scale=ELO_SCALE, base=ELO_BASE
    )
    EloRating.objects.filter(model_id=a_id).update(rating=float(new_a), votes=F("votes") + 1, updated=timezone.now())
    EloRating.objects.filter(model_id=b_id).update(rating=float(new_b), votes=F("votes") + 1, updated=timezone.now())
    _pair_count_change(model_a_id=a_id, model_b_id=b_id, labels=rated.labels, change={PAIR_FIELDS[rated.outcome]: 1})
    _vote_mark_rated(vote_id=vote.pk)
    return True


# A rated vote's prompt_occurrence while it has not been counted towards its prompt's votes (its judge was
# flagged when it was rated); occurrences count from 1.
PROMPT_NOT_COUNTED = 0


def _prompts_counted(rated_votes: list[RatedVote]) -> None:
    """Count these votes, in order, towards how often their normalised prompts have been seen, and store which
    occurrence each is (1-based). A few statements whatever their number (a clear may bring back thousands
    on as many prompts): the prompts' rows are created if missing, locked in one order, and written back."""
    if not rated_votes:
        return
    by_prompt = defaultdict(list)
    for rated in rated_votes:
        by_prompt[rated.prompt_hash].append(rated)
    PromptCount.objects.bulk_create([PromptCount(prompt_hash=digest) for digest in by_prompt], ignore_conflicts=True)
    counts = list(PromptCount.objects.select_for_update().filter(prompt_hash__in=by_prompt).order_by("prompt_hash"))
    for count in counts:
        for rated in by_prompt[count.prompt_hash]:
            count.votes += 1
            rated.prompt_occurrence = count.votes
    PromptCount.objects.bulk_update(counts, ["votes"], batch_size=1000)
    RatedVote.objects.bulk_update(rated_votes, ["prompt_occurrence"], batch_size=1000)


def _flag_holding(rated: RatedVote) -> JudgeFlag | None:
    """The flag that keeps this vote out of the counts: its session's, else its address's (None: neither)."""
    judges = Q(kind=JudgeFlag.Kind.SESSION, judge_hash=rated.judge_hash)
    if rated.client_hash:
        judges |= Q(kind=JudgeFlag.Kind.ADDRESS, judge_hash=rated.client_hash)
    flags = JudgeFlag.objects.filter(judges, state=JudgeFlag.State.FLAGGED)
    return min(flags, key=lambda flag: flag.kind != JudgeFlag.Kind.SESSION, default=None)


def _down_sampled_reason(occurrence: int, threshold: int) -> str:
    """Why this occurrence of a prompt stays out of the counts, or '' if it is among the sample kept."""
    if keep_prompt_vote(occurrence, threshold):
        return ""
    return (
        f"Frequent prompt (vote {occurrence} on it; more than {threshold}): down-sampled, as the official "
        "leaderboard does with its most frequent prompts."
    )


def _flagged_reason(flag: JudgeFlag) -> str:
    return f"{FLAGGED_PREFIXES[flag.kind]}{flag.reason}"[:300]


# Which RatedVote field names a judge of each kind, and the field naming the judge of the other kind.
_JUDGE_FIELDS = {JudgeFlag.Kind.SESSION: ("judge_hash", "client_hash"),
                 JudgeFlag.Kind.ADDRESS: ("client_hash", "judge_hash")}  # fmt: skip
_OTHER_KIND = {JudgeFlag.Kind.SESSION: JudgeFlag.Kind.ADDRESS, JudgeFlag.Kind.ADDRESS: JudgeFlag.Kind.SESSION}


def _advisory_lock(name: str) -> None:
    """Take this name's lock for the rest of the transaction (PostgreSQL; SQLite runs one writer at a time)."""
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _judge_lock(kind: str, judge_hash: str) -> None:
    """Take the judge's lock (a session's or an address's) for the rest of the transaction. Rating a vote and
    flagging or clearing its session or its address take turns: a vote rated while its judge was flagged read
    "not flagged", and the flag, blind to the vote not yet committed, could not take it out, so it stayed
    counted for a flagged judge (and a clear racing a vote that read "flagged" left it out for good)."""
    _advisory_lock(f"judge:{kind}:{judge_hash}")


def _flags_lock() -> None:
    """One flag or clear at a time (taken before the judge's lock). Clearing a session asks whether each of its
    votes' addresses is flagged, and clearing an address the same of its votes' sessions: a flag of the other
    kind committed meanwhile could not take out a vote it saw left out, which the clear then counted."""
    _advisory_lock("judge flags")


def _judge_votes_counted(kind: str, judge_hash: str, *, counted: bool, reason: str = "") -> int:
    """Put a judge's rated votes into the pair counts (counted=True) or take them out; returns how many
    moved. Each vote moves once, whatever the order of calls (RatedVote.in_counts says where it is).
    A vote is counted only while neither its session nor its address is flagged: a clear leaves a vote the
    other kind of flag still holds out, under that flag's reason. The online Elo is not rewound: it is a
    live indicator; snapshots are fitted from the counts."""
    field, other_field = _JUDGE_FIELDS[kind]
    votes = RatedVote.objects.select_for_update().filter(**{field: judge_hash}, in_counts=not counted)
    if counted:  # only what this flag took out comes back
        votes = votes.filter(left_out_reason__startswith=FLAGGED_PREFIXES[kind])
    votes = list(votes.order_by("vote_id"))
    holding = {}
    if counted:
        others = {getattr(rated, other_field) for rated in votes}
        flags = JudgeFlag.objects.filter(kind=_OTHER_KIND[kind], judge_hash__in=others, state=JudgeFlag.State.FLAGGED)
        holding = {flag.judge_hash: flag for flag in flags}
    threshold = LeaderboardPolicy.current().duplicate_prompt_threshold
    arriving = []
    if counted:
        # Votes the flag held since they were rated come in now: only now are they counted towards how often
        # their prompts have been seen (in the order they were cast), and down-sampled as any vote is when it
        # is first counted. A vote counted before the flag took it out comes back as it was: its occurrence was
        # decided then (asked again, under a threshold that has moved since, it could be left out for good).
        arriving = [
            rated for rated in votes
            if rated.prompt_occurrence == PROMPT_NOT_COUNTED and getattr(rated, other_field) not in holding
        ]  # fmt: skip
        _prompts_counted(arriving)
    first_counted = {rated.pk for rated in arriving}
    moved, kept_out, by_row = [], defaultdict(list), defaultdict(Counter)
    for rated in votes:
        left_out = ""
        if counted:
            other = holding.get(getattr(rated, other_field))
            if other:
                left_out = _flagged_reason(other)
            elif rated.pk in first_counted:
                left_out = _down_sampled_reason(rated.prompt_occurrence, threshold)
        if left_out:
            kept_out[left_out].append(rated.pk)
            continue
        by_row[(rated.model_a_id, rated.model_b_id, rated.labels)][PAIR_FIELDS[rated.outcome]] += 1 if counted else -1
        moved.append(rated.pk)
    # Summed per pair row, one UPDATE each: an address with tens of thousands of votes was as many statements,
    # every vote's rating waiting on the locks meanwhile.
    for (model_a_id, model_b_id, labels), change in sorted(by_row.items()):
        _pair_count_change(model_a_id=model_a_id, model_b_id=model_b_id, labels=labels, change=change)
    # By primary key, the rows locked and moved above: the filter run again could take in a vote rated and
    # committed meanwhile, flipping it without moving its count (counted twice by a later clear, or lost).
    RatedVote.objects.filter(pk__in=moved).update(in_counts=counted, left_out_reason="" if counted else reason)
    for left_out, pks in kept_out.items():
        RatedVote.objects.filter(pk__in=pks).update(left_out_reason=left_out)
    return len(moved)


@transaction.atomic
def judge_flag(
    *,
    judge_hash: str,
    reason: str,
    kind: str = JudgeFlag.Kind.SESSION,
    p_values: dict | None = None,
    votes: int = 0,
    by: str = "",
    only_new: bool = False,
) -> JudgeFlag | None:
    """Flag a judge, a session or an address (every session's votes from it): its votes stay stored but leave
    the counts (and so every later snapshot), and its new votes are left out as they are rated. `only_new`
    (the screen): None, and nothing done, if the judge has a flag already, flagged or cleared, as seen under
    the lock (a screen's own list, read before, may predate an admin's clearing)."""
    if kind == JudgeFlag.Kind.ADDRESS and not judge_hash:
        raise ValueError("Votes without an address are no one judge: they can't be flagged by address.")
    _flags_lock()
    _judge_lock(kind, judge_hash)
    if only_new and JudgeFlag.objects.filter(kind=kind, judge_hash=judge_hash).exists():
        return None
    flag, _ = JudgeFlag.objects.update_or_create(
        kind=kind, judge_hash=judge_hash,
        defaults={"state": JudgeFlag.State.FLAGGED, "reason": reason, "p_values": p_values or {}, "votes": votes,
                  "changed_by": by},
    )  # fmt: skip
    _judge_votes_counted(kind, judge_hash, counted=False, reason=_flagged_reason(flag))
    return flag


@transaction.atomic
def judge_clear(*, judge_hash: str, by: str, kind: str = JudgeFlag.Kind.SESSION) -> JudgeFlag:
    """Clear a flagged judge (a session or an address): its votes return to the counts, but for those the
    other kind of flag still holds, and the screen will not flag it again."""
    _flags_lock()
    _judge_lock(kind, judge_hash)
    flag = JudgeFlag.objects.select_for_update().get(kind=kind, judge_hash=judge_hash)
    flag.state, flag.changed_by = JudgeFlag.State.CLEARED, by
    flag.save(update_fields=["state", "changed_by", "changed_at"])
    _judge_votes_counted(kind, judge_hash, counted=True)
    return flag


def judges_screen(*, alpha: float) -> list[JudgeFlag]:
    """Screen every judge's votes against the current fit (ratings/engine/anomaly.py) and flag the ones
    the screen flags, unless an admin cleared them. Returns the judges flagged by this run.

    A judge is a session, and also an address: every vote cast from it, whatever the sessions, so that a
    visitor who takes a new session every few votes (each under the 10 votes a session is screened from) is
    screened all the same. Under the null every honest vote is an independent draw from the fitted table,
    whoever cast it, so the votes of several honest sessions at one address are screened exactly as one
    judge's, and the engine's bound holds for them as it does for a session.

    `alpha` is split between the two looks: each session is screened at alpha / 2, each address at
    alpha / 2. An honest session at an address whose votes are all honest has its votes left out (flagged
    itself, or with its address) with probability at most alpha over every checkpoint, as when sessions alone
    were screened at alpha. Votes whose battle had no address are screened by session only (and a vote with no
    session, by address only: "" is no one judge), and an address whose votes are all one session's is that
    session's look already (`selectors.judge_votes`)."""
    votes = selectors.judge_votes()
    if votes.judge.size == 0:
        return []
    table = outcome_table_from_counts(votes.counts)
    known = set(JudgeFlag.objects.values_list("kind", "judge_hash"))
    flagged = []
    for kind, judge in ((JudgeFlag.Kind.SESSION, votes.judge), (JudgeFlag.Kind.ADDRESS, votes.address)):
        rows = judge != ""
        if not rows.any():
            continue
        screening = screen_judges(
            judge[rows], votes.model_a[rows], votes.model_b[rows], votes.outcome[rows], table,
            seconds_to_vote=votes.seconds_to_vote[rows], seconds_to_read=votes.seconds_to_read[rows],
            models=votes.counts.models, alpha=alpha / 2,
        )  # fmt: skip
        for row in screening.rows():
            if row["flagged"] and (kind, row["judge"]) not in known:
                reason = row["reason"]
                if kind == JudgeFlag.Kind.ADDRESS:
                    sessions = np.unique(votes.judge[votes.address == row["judge"]]).size
                    reason = f"{sessions} sessions from one address, their votes screened together: {reason}"
                flag = judge_flag(kind=kind, judge_hash=row["judge"], reason=reason, p_values=row["p_values"],
                                  votes=row["votes"], by="anomaly screen", only_new=True)  # fmt: skip
                if flag is not None:
                    flagged.append(flag)
    return flagged


@dataclass(frozen=True)
class PendingRated:
    applied: int  # votes taken into the counts by this run
    more: bool  # the run stopped at its limit: more votes may be waiting


# Unrated vote ids read at a time: a backlog of any size is never read whole into memory.
PENDING_PAGE = 500
# A vote whose rating failed for itself is left out of this process's runs for this long (then tried again):
# a backlog is rated in chained runs, and each retried (and logged) every such vote before its chunk.
FAILED_VOTE_PAUSE = 600.0
_failed_votes: dict[int, float] = {}  # vote id -> when its rating last failed (monotonic)


def forget_failed_votes() -> None:
    """Try every vote again at the next run (tests)."""
    _failed_votes.clear()


def votes_rate_pending(*, older_than_seconds: float, limit: int | None = None) -> PendingRated:
    """Rate the votes still unrated after `older_than_seconds`, oldest first: all of them, or `limit` of them
    (then `more` says the caller should come back for the rest). A vote whose rating fails for itself (a
    stored figure the table refuses, say) is logged, not counted against `limit` (no number of such votes
    can hold up the ones after them) and left out of this process's runs for FAILED_VOTE_PAUSE (so a
    backlog's chained runs do not each retry it first). A database that cannot be reached stops the run (the
    task retries)."""
    pending = selectors.votes_unrated_ids(created_before=timezone.now() - timedelta(seconds=older_than_seconds))
    now = time.monotonic()
    for vote_id, when in list(_failed_votes.items()):
        if now - when >= FAILED_VOTE_PAUSE:
            del _failed_votes[vote_id]
    failed = set(_failed_votes)
    handled = applied = 0
    while limit is None or handled < limit:
        room = PENDING_PAGE if limit is None else min(PENDING_PAGE, limit - handled)
        # Skipped here, not in the query: thousands of failed ids would pass SQLite's limit on parameters.
        page = [vote_id for vote_id in pending[: room + len(failed)] if vote_id not in failed][:room]
        if not page:
            return PendingRated(applied=applied, more=False)
        for vote_id in page:
            try:
                applied += vote_rate(vote_id=vote_id)
            except (OperationalError, InterfaceError, SoftTimeLimitExceeded):
                raise  # not this vote's fault: the database, or the task's time
            except Exception:  # noqa: BLE001 - one vote's own fault must not stop every vote after it
                logger.exception("vote %s could not be rated; it is tried again in %.0f s", vote_id, FAILED_VOTE_PAUSE)
                failed.add(vote_id)
                _failed_votes[vote_id] = time.monotonic()
            else:
                handled += 1
    return PendingRated(applied=applied, more=True)


# Bump when the engine's results for the same inputs change, so a recompute is not taken for a repeat.
ENGINE_VERSION = "2026-12-07.5"  # exact none-seen tie bound; anchored boards keep rounds the anchor sat out


def _fingerprint(inputs_sha256: str, params: dict) -> str:
    return hashlib.sha256(f"{inputs_sha256}|{json.dumps(params, sort_keys=True)}".encode()).hexdigest()


def _latest_if_unchanged(fingerprint: str) -> LeaderboardSnapshot | None:
    """The newest snapshot (is_new False) if it has this fingerprint: nothing new to store."""
    latest = selectors.snapshot_latest()
    if latest is None or latest.fingerprint != fingerprint:
        return None
    latest.is_new = False
    return latest


def leaderboard_recompute(
    *,
    rounds: int,
    seed: int,
    anchor: tuple[str, float] | None = None,
    bootstrap: bool = True,
    progress: Callable[[int, int], None] | None = None,
    style_min_votes: int = fits.STYLE_MIN_VOTES,
    category_min_votes: int | None = None,
) -> LeaderboardSnapshot:
    """Fit the board (and a board per category) from the stored labelled pair counts and add it as the
    newest snapshot, with its exact inputs; `snapshot.is_new` says whether one was added.

    When nothing changed since the newest snapshot (same counts, parameters and engine), nothing is added
    and that snapshot is returned. Reads O(pairs x label combinations) rows and stored numbers (never
    conversations), computes outside any transaction, then inserts; if anything fails on the way, nothing
    is written and the previous snapshot keeps being served.
    """
    started = time.perf_counter()
    policy = LeaderboardPolicy.current()
    _duplicate_threshold_refresh(policy)  # a write: before the reads below, which see one moment
    category_min_votes = settings.CATEGORY_MIN_VOTES if category_min_votes is None else category_min_votes
    # The counts, the newest vote they hold and the arena votes the style and position fits use are read at
    # one moment: read one after the other, a vote rated in between was in the style board and named as the
    # newest included, yet missing from the counts the snapshot publishes.
    with _one_moment():
        lpc = selectors.labelled_pair_counts_load()
        pc = lpc.total()
        if pc.n_battles == 0:
            raise LeaderboardEmpty("No battles have been rated or imported yet.")
        inputs = labelled_counts_json(lpc)
        inputs_sha256 = hashlib.sha256(canonical_json(inputs).encode()).hexdigest()
        params = {"engine": ENGINE_VERSION, "rounds": rounds if bootstrap else 0, "seed": seed,
                  "anchor": list(anchor) if anchor else None, "category_min_votes": category_min_votes,
                  "style_min_votes": style_min_votes, "top_k": policy.top_k}  # fmt: skip
        # The policy's shares shape only the sampling plan, made with each new snapshot: changed in the admin,
        # they make one at the next recompute (the same board) rather than wait for a new vote.
        fingerprint = _fingerprint(inputs_sha256, {**params, "shares": [policy.exploration_share, policy.boost_share]})
        unchanged = _latest_if_unchanged(fingerprint)
        if unchanged is not None:
            return unchanged
        cutoff = selectors.votes_rated_cutoff()
        votes = selectors.arena_votes()
    board = fits.overall_board(pc, rounds=rounds, seed=seed, anchor=anchor, bootstrap=bootstrap, progress=progress)
    categories = fits.categories(
        lpc, rounds=rounds if bootstrap else 0, seed=seed, min_votes=category_min_votes, anchor=anchor
    )
    style, position = fits.arena_vote_boards(
        votes, rounds=rounds if bootstrap else 0, seed=seed, style_min_votes=style_min_votes, anchor=anchor
    )
    # The votes the style board and the left-seat effect are fitted on, published beside the pair counts.
    votes_download = arena_votes_json(votes)
    votes_sha256 = hashlib.sha256(canonical_json(votes_download).encode()).hexdigest()
    extras = {key: json_safe(board[key]) for key in ("matrices", "ties") if key in board}
    # Which ratings exist and which compare: the board's note, its groups and the models not rated yet.
    extras["comparison"] = json_safe({key: board[key] for key in ("note", "groups", "not_rated")})
    extras["position"] = position
    robust_started = time.perf_counter()
    extras["robustness"] = fits.robustness(pc, top_k=policy.top_k)
    extras["robustness"]["compute_seconds"] = time.perf_counter() - robust_started
    extras["sampling"] = sampling_plan_refresh(pc)
    with transaction.atomic():
        # Two recomputes at once (`leaderboard --save` during the scheduled one, two beats on one database)
        # both found nothing new to them above and each stored the same snapshot: the second to get here now
        # finds the first's. The prune takes the same lock, so it cannot drop inputs taken up here meanwhile.
        _advisory_lock(SNAPSHOTS_LOCK)
        unchanged = _latest_if_unchanged(fingerprint)
        if unchanged is not None:
            return unchanged
        stored_inputs, _ = SnapshotInput.objects.get_or_create(sha256=inputs_sha256, defaults={"counts": inputs})
        stored_votes, _ = SnapshotArenaVotes.objects.get_or_create(
            sha256=votes_sha256, defaults={"votes": votes_download}
        )
        snapshot = LeaderboardSnapshot.objects.create(
            method=board.get("method", selectors.METHOD_BT), params=json_safe({**board.get("params", {}), **params}),
            seed=seed, data_cutoff=cutoff, vote_count=pc.n_battles, rows=json_safe(board["models"]),
            style_rows=style, extras=extras, categories=json_safe(categories), inputs=stored_inputs,
            arena_votes=stored_votes, fingerprint=fingerprint, compute_seconds=time.perf_counter() - started,
        )  # fmt: skip
    snapshot.is_new = True
    return snapshot


@contextmanager
def _one_moment() -> Iterator[None]:
    """Reads that all see the database as it was at their first: a REPEATABLE READ transaction on
    PostgreSQL (one snapshot for every statement in it). SQLite runs one writer at a time, and its reads
    in one transaction see one state. Inside an outer transaction (tests) the isolation is the outer one's."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # before any other statement
        yield


def _duplicate_threshold_refresh(policy: LeaderboardPolicy) -> None:
    """Votes per prompt beyond which new votes on it are down-sampled: the top 0.1% of prompts (at least 10)."""
    threshold = high_frequency_threshold(PromptCount.objects.values_list("votes", flat=True).iterator(10_000))
    if threshold != policy.duplicate_prompt_threshold:
        LeaderboardPolicy.objects.filter(pk=policy.pk).update(duplicate_prompt_threshold=threshold)


# How long every new snapshot keeps its arena votes, whichever snapshots come after it (three at the default
# recompute interval).
ARENA_VOTES_GRACE = timedelta(minutes=30)


SNAPSHOTS_LOCK = "leaderboard snapshots"


@transaction.atomic
def snapshots_prune(*, keep_days: int, now=None) -> int:
    """Keep every snapshot of the last `keep_days` days, and before that the newest of each day; returns how
    many were deleted. Inputs no snapshot uses any more go too. Arena votes (a row per vote: they grow with the
    arena, where pair counts do not) are kept only with the newest snapshot of each of the last `keep_days`
    days, the newest of all among them, and with every snapshot made in the last ARENA_VOTES_GRACE (a page
    loaded just before a recompute still links to its snapshot's votes: without the grace, that download was
    gone at once)."""
    _advisory_lock(SNAPSHOTS_LOCK)
    now = now or timezone.now()
    old = LeaderboardSnapshot.objects.filter(created__lt=now - timedelta(days=keep_days))
    deleted, _ = old.exclude(pk__in=_newest_of_each_day(old)).delete()
    keeping_votes = _newest_of_each_day(
        LeaderboardSnapshot.objects.filter(created__gte=now - timedelta(days=keep_days))
    ) + list(LeaderboardSnapshot.objects.filter(created__gte=now - ARENA_VOTES_GRACE).values_list("id", flat=True))
    newest = LeaderboardSnapshot.objects.order_by("-id").values_list("id", flat=True).first() or 0
    # Up to the newest read here: one saved meanwhile (`leaderboard --save`) keeps its votes.
    LeaderboardSnapshot.objects.filter(pk__lte=newest).exclude(pk__in=[*keeping_votes, newest]).exclude(
        arena_votes=None
    ).update(arena_votes=None)
    # Their ids alone: deleting loads each row first, and arena votes are megabytes.
    SnapshotInput.objects.filter(snapshots__isnull=True).only("id").delete()
    SnapshotArenaVotes.objects.filter(snapshots__isnull=True).only("id").delete()
    return deleted


def _newest_of_each_day(snapshots) -> list[int]:
    """The id of the newest of these snapshots on each calendar day (UTC)."""
    newest: dict = {}
    for snapshot_id, created in snapshots.order_by("created", "id").values_list("id", "created"):
        newest[created.date()] = snapshot_id
    return list(newest.values())


def sampling_plan_refresh(pc: PairCounts) -> dict:
    """Work out how the next battles' pairs should be drawn from these counts (ratings/engine/sampling.py)
    and hand the plan to inference, which draws from it. Returns the plan's plain-words summary."""
    policy = LeaderboardPolicy.current()
    drawable = {model.name: model for model in drawable_models()}
    if len(drawable) < 2:
        return {"reason": "Fewer than two models can be drawn."}
    names = sorted(set(pc.models) | set(drawable))
    counts = pc.with_models(names)
    live = [drawable.get(name) for name in names]
    plan = policy_for_counts(
        counts,
        admin_weights=[m.sampling_weight if m else 0.0 for m in live],
        boost_targets=[m.target_votes if m else 0 for m in live],
        # Health is left to the draw (inference skips models that can't answer at that moment).
        available=[m is not None for m in live],
        exploration=policy.exploration_share, boost_share=policy.boost_share, top_k=policy.top_k,
    )  # fmt: skip
    pairs = [[live[i].pk, live[j].pk, p] for i, j, p in pair_list(plan.probabilities)]
    summary = json_safe(policy_summary(plan))
    summary["description"] = describe_policy(policy_summary(plan))
    summary["top"] = [names[i] for i in plan.top.tolist()]
    summary["boosted"] = [names[i] for i in plan.boosted.tolist()]
    sampling_plan_store(pair_probabilities=pairs, summary=summary)
    return summary


def _historical_models(names: list[str]) -> dict[str, int]:
    """Ids for these names; names not yet registered become inactive historical models (no endpoint)."""
    known = dict(ArenaModel.objects.filter(name__in=names).values_list("name", "id"))
    missing = [name for name in names if name not in known]
    ArenaModel.objects.bulk_create(
        [ArenaModel(name=name, is_active=False, is_historical=True, sampling_weight=0.0) for name in missing],
        batch_size=500,
    )
    return dict(ArenaModel.objects.filter(name__in=names).values_list("name", "id"))


def pair_counts_add(pc: PairCounts) -> int:
    """Add an outside log's counts to PairCount in bulk (a few statements per thousand pairs, never one per
    battle), as unlabelled: their prompts were never seen here.

    Call inside a transaction. Missing rows are created empty first, then every affected row is locked
    and its new totals written back in one upsert, so a vote rated meanwhile waits instead of being lost.
    """
    ids = _historical_models(pc.models)
    keyed = {}
    for (a, b), row in zip(pc.pairs.tolist(), pc.counts.tolist(), strict=True):
        if sum(row):
            keyed[(ids[pc.models[a]], ids[pc.models[b]])] = row
    PairCount.objects.bulk_create(
        [PairCount(model_a_id=a, model_b_id=b, labels=UNLABELLED) for a, b in keyed], ignore_conflicts=True,
        batch_size=1000,
    )  # fmt: skip
    model_ids = {a for a, _ in keyed} | {b for _, b in keyed}
    locked = PairCount.objects.select_for_update().filter(
        model_a_id__in=model_ids, model_b_id__in=model_ids, labels=UNLABELLED
    )
    totals = []
    for pair in locked:
        row = keyed.get((pair.model_a_id, pair.model_b_id))
        if row is not None:
            new = {field: getattr(pair, field) + add for field, add in zip(PAIR_FIELDS, row, strict=True)}
            totals.append(PairCount(model_a_id=pair.model_a_id, model_b_id=pair.model_b_id, labels=UNLABELLED, **new))
    # An upsert of rows that all exist and are locked: one multi-row statement per batch, where
    # bulk_update's CASE expressions cost seconds of ORM time for a few thousand pairs.
    PairCount.objects.bulk_create(
        totals, update_conflicts=True, unique_fields=["model_a", "model_b", "labels"], update_fields=PAIR_FIELDS,
        batch_size=1000,
    )  # fmt: skip
    return len(totals)


def battles_import(*, path: str | Path, format: str | None = None) -> ImportedLog:
    """Add an outside battle log's counts to PairCount, once per file content."""
    digest = battle_logs.file_sha256(path)
    previous = ImportedLog.objects.filter(sha256=digest).first()
    if previous is not None:
        raise ImportRefused(
            f"{path} was already imported on {previous.created:%Y-%m-%d %H:%M} as {previous.filename!r} "
            f"({previous.battle_count:,} battles); importing it again would count its battles twice."
        )
    log = battle_logs.read_battle_log(path, format)
    try:
        with transaction.atomic():
            record = ImportedLog.objects.create(
                sha256=digest, filename=Path(path).name, format=log.format,
                battle_count=log.counts.n_battles, model_count=len(log.counts.models),
            )  # fmt: skip
            pair_counts_add(log.counts)
    except IntegrityError:
        raise ImportRefused(f"{path} is being or was already imported; nothing was added.") from None
    return record


@dataclass(frozen=True)
class TimedBattles:
    """A clean_battle log's counted battles as engine arrays, with their Unix timestamps."""

    models: list[str]
    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray
    timestamp: np.ndarray
    skipped: int  # left out: named battles, down-sampled prompts, and battles without a timestamp


def timed_battles_read(path: str | Path) -> TimedBattles:
    """The battles of a FastChat clean_battle log that the official board counts and that carry `tstamp`."""
    # battle_logs.read_battle_log aggregates at once and drops the times; a replay needs each battle's.
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise battle_logs.BattleLogError(f"Can't read {path}: {exc}") from exc
    if battle_logs.detect_format(data) != battle_logs.CLEAN_BATTLE:
        raise battle_logs.BattleLogError(f"{path} holds pair counts; a replay needs a clean_battle log with times.")
    kept = [r for r in data if battle_logs.counted_battle(r) and r.get("tstamp") is not None]
    if not kept:
        raise battle_logs.BattleLogError(f"No counted battle in {path} carries a `tstamp`: nothing to replay.")
    try:
        models = sorted({r["model_a"] for r in kept} | {r["model_b"] for r in kept})
        index = {name: i for i, name in enumerate(models)}
        return TimedBattles(
            models=models,
            model_a=np.array([index[r["model_a"]] for r in kept], dtype=np.int64),
            model_b=np.array([index[r["model_b"]] for r in kept], dtype=np.int64),
            outcome=np.array([WINNER_CODES[r["winner"]] for r in kept], dtype=np.int64),
            timestamp=np.array([float(r["tstamp"]) for r in kept], dtype=np.float64),
            skipped=len(data) - len(kept),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise battle_logs.BattleLogError(f"Malformed battle in {path}: {exc!r}") from exc


@dataclass(frozen=True)
class HistoryReplay:
    source: str
    cutoffs: list[datetime]
    points: int  # rows stored
    battles: int
    skipped: int
    last_board: list[dict]


def rating_history_replay(
    *,
    path: str | Path,
    source: str | None = None,
    anchor: tuple[str, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> HistoryReplay:
    """Replay a timestamped clean_battle log as monthly cumulative boards and store them as `source`'s history
    (default: the file's name), replacing whatever that source had. Nothing is written until every board is
    fitted, so an interrupted replay leaves the previous history as it was."""
    battles = timed_battles_read(path)
    if anchor is not None and anchor[0] not in battles.models:
        raise ValueError(f"The anchor model {anchor[0]!r} has no battle in {path}.")
    source = source or Path(path).name
    cutoffs = monthly_cutoffs(battles.timestamp)
    boards = []
    if progress is not None:
        progress(0, len(cutoffs))
    # One cutoff per call, so progress can be shown and the work stopped between boards.
    for done, cutoff in enumerate(cutoffs.tolist(), start=1):
        boards += replay_history(
            battles.model_a, battles.model_b, battles.outcome, battles.timestamp, battles.models, [cutoff],
            anchor=anchor,
        )  # fmt: skip
        if progress is not None:
            progress(done, len(cutoffs))
    when = {cutoff: datetime.fromtimestamp(cutoff, UTC) for cutoff, _ in boards}
    # A model not rated yet at a cutoff (say, only wins so far) has no point there; nor has one outside the
    # board's main group, whose ratings do not compare with the others on one chart.
    points = [
        RatingHistory(source=source, cutoff=when[cutoff], model_name=row["name"], rating=row["rating"],
                      ci_lower=row["ci_lower"], ci_upper=row["ci_upper"], rank=row["rank"], votes=row["votes"])
        for cutoff, rows in boards
        for row in rows
        if row["rating"] is not None and row.get("group", 1) == 1
    ]  # fmt: skip
    with transaction.atomic():
        RatingHistory.objects.filter(source=source).delete()
        RatingHistory.objects.bulk_create(points, batch_size=2000)
    return HistoryReplay(source=source, cutoffs=list(when.values()), points=len(points),
                         battles=int(battles.outcome.size), skipped=battles.skipped,
                         last_board=boards[-1][1] if boards else [])  # fmt: skip
