"""Celery entry points: each calls a service, then tells open leaderboard pages. Also how a committed vote
gets its rating queued: one run for a burst of votes (a Redis flag), a backlog rated a chunk per run."""

import contextlib
import logging

import redis
from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from arena import shared_state
from ratings import events, selectors, services

logger = logging.getLogger(__name__)


def leaderboard_notify(*, reason: str) -> bool:
    latest = selectors.snapshot_latest()
    message = events.leaderboard_update(
        reason=reason,
        online_elo=selectors.elo_rows(),
        snapshot_id=latest.pk if latest else None,
        updated=timezone.now().isoformat(),
    )
    return events.leaderboard_broadcast(message)


def _leaderboard_notify_after(what: str, *, reason: str = "vote") -> None:
    """Tell open leaderboard pages that votes were rated or a snapshot made (`what`, for the log). Never
    raises: the ratings are stored, and a missed refresh is harmless (pages catch up on their next load)."""
    try:
        leaderboard_notify(reason=reason)
    except Exception:  # noqa: BLE001
        logger.warning("Leaderboard notification after %s failed", what, exc_info=True)


# Nothing queues this any more (votes queue votes_rate_waiting); it is kept for the messages an arena queued
# before that change, which a worker must still consume after an upgrade. A locked database (SQLite under
# load) is worth retrying; the service is idempotent, so a retry after a partial failure can't count the vote
# twice.
@shared_task(name="ratings.tasks.vote_rate", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def vote_rate(vote_id: int) -> bool:
    applied = services.vote_rate(vote_id=vote_id)
    if applied:
        _leaderboard_notify_after(f"vote {vote_id}")
    return applied


# Set while a run of votes_rate_waiting is queued and has not started: votes committed meanwhile leave their
# rating to it. It lapses on its own, should that run be lost (the sweep rates what it would have).
WAKE_SECONDS = 60


def _wake_key() -> str:
    return f"{settings.SHARED_STATE_PREFIX}:ratings:wake"


def vote_rating_queue(*, vote_id: int) -> bool:
    """See that the committed vote gets rated: queue a run of `votes_rate_waiting`, unless one is queued and
    has not started yet (it will rate this vote too). Under a burst of votes this queues one task where it
    queued one per vote (a Celery publish was a fifth of a vote's CPU in the web process, and the worker
    rated and announced each vote on its own). With Redis or the broker down the vote stays stored
    (unrated) and the periodic `votes_rate_pending` sweep rates it later: a Redis fault never loses or fails
    a vote."""
    return _rating_run_queue(f"vote {vote_id}")


def _rating_run_queue(what: str) -> bool:
    client = shared_state.sync_client()
    try:
        if not client.set(_wake_key(), what, nx=True, ex=WAKE_SECONDS):
            return True  # a queued run reads the waiting votes after it starts: these among them
        votes_rate_waiting.delay()
    except Exception:  # noqa: BLE001 - any Redis or broker failure; the sweep picks the votes up
        logger.warning("Could not queue the rating of %s; the sweep will rate it", what, exc_info=True)
        with contextlib.suppress(Exception):
            client.delete(_wake_key())  # so the next vote queues a run again
        return False
    return True


def _votes_rate(*, older_than_seconds: float, what: str) -> int:
    """Rate a chunk of the waiting votes (VOTE_RATING_CHUNK), tell leaderboard pages once, and queue a run for
    the rest behind the tasks queued meanwhile: after an outage a backlog of thousands of votes held the one
    worker for minutes (up to its time limit), and the endpoint probes, snapshots and judge screens queued
    behind it waited as long."""
    run = services.votes_rate_pending(older_than_seconds=older_than_seconds, limit=settings.VOTE_RATING_CHUNK)
    if run.applied:
        _leaderboard_notify_after(what)
    if run.more:
        _rating_run_queue("the votes still waiting")
    return run.applied


@shared_task(
    name="ratings.tasks.votes_rate_waiting", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5
)
def votes_rate_waiting() -> int:
    """Rate the votes waiting for their rating, oldest first, a chunk at a time; returns how many were
    counted."""
    # Cleared before the votes are read: a vote committed after this queues a run of its own, and one
    # committed before it (which found the flag set and queued nothing) is read below. Should Redis fail
    # here, the flag lapses on its own and the sweep rates what later votes left.
    with contextlib.suppress(redis.RedisError):
        shared_state.sync_client().delete(_wake_key())
    return _votes_rate(older_than_seconds=0, what="rating waiting votes")


@shared_task(name="ratings.tasks.votes_rate_pending")
def votes_rate_pending() -> int:
    """Rate votes whose task never ran (broker down when they were cast). Idempotent, so harmless if
    the original task also runs."""
    rated = _votes_rate(older_than_seconds=settings.VOTE_RATING_SWEEP_AGE, what="the sweep")
    if rated:
        logger.info("Rated %s vote(s) whose task had not run", rated)
    return rated


@shared_task(name="ratings.tasks.leaderboard_recompute")
def leaderboard_recompute(rounds: int | None = None, seed: int | None = None) -> int | None:
    """Add a new snapshot (beat runs this every LEADERBOARD_RECOMPUTE_INTERVAL). Returns its id."""
    try:
        snapshot = services.leaderboard_recompute(
            rounds=settings.LEADERBOARD_BOOTSTRAP_ROUNDS if rounds is None else rounds,
            seed=settings.LEADERBOARD_SEED if seed is None else seed,
        )
    except services.LeaderboardEmpty:
        logger.info("No battles yet; leaderboard snapshot skipped")
        return None
    pruned = services.snapshots_prune(keep_days=settings.SNAPSHOT_KEEP_DAYS)
    if pruned:
        logger.info("Removed %s old snapshot(s) beyond one a day", pruned)
    if not snapshot.is_new:
        logger.info("Nothing changed since snapshot %s; no new snapshot", snapshot.pk)
        return snapshot.pk
    _leaderboard_notify_after(f"snapshot {snapshot.pk}", reason="snapshot")
    return snapshot.pk


@shared_task(name="ratings.tasks.judges_screen")
def judges_screen() -> int:
    """Screen every judge's votes for anomalies, by session and by address (beat runs this every
    JUDGE_SCREEN_INTERVAL seconds); flagged judges' votes leave the counts until an admin clears them. Returns
    how many were flagged now."""
    flagged = services.judges_screen(alpha=settings.JUDGE_SCREEN_ALPHA)
    if flagged:
        logger.warning("Flagged %s judge(s) as anomalous: %s", len(flagged), [f"{f.kind}: {f.reason}" for f in flagged])
    return len(flagged)
