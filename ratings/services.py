"""Writes for ratings: rate a vote (online Elo + pair counts), recompute a snapshot, import a log."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from battles.models import Vote
from battles.services import vote_mark_rated
from inference.models import ArenaModel
from ratings import battle_logs, selectors
from ratings.engine.bradley_terry import ranks
from ratings.engine.counts import PairCounts, pair_outcome_counts
from ratings.engine.elo import elo_update
from ratings.engine.leaderboard import compute_leaderboard
from ratings.engine.position import fit_position
from ratings.engine.style import fit_style_controlled, style_features
from ratings.models import EloRating, ImportedLog, LeaderboardSnapshot, PairCount

logger = logging.getLogger(__name__)

ELO_K = 4.0
ELO_SCALE = 400.0
ELO_BASE = 10.0
# Fewer rated arena votes than this and the style-controlled fit is skipped (too few to say anything).
STYLE_MIN_VOTES = 200
# The style bootstrap refits battle by battle, so it is capped below the board's rounds.
STYLE_BOOTSTRAP_ROUNDS = 100
# Fewer and the left-seat advantage is not reported.
POSITION_MIN_VOTES = 50

PAIR_FIELDS = ("a_wins", "b_wins", "ties", "both_bad")  # in engine outcome-code order


class LeaderboardEmpty(Exception):
    """Nothing to rate yet: no pair has any battle."""


class ImportRefused(Exception):
    """The log was imported before (same content); adding it again would double count."""


def jsonable(value):
    """Engine output (numpy scalars and arrays, NaN) as plain JSON: NaN and infinities become null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


@transaction.atomic
def vote_rate(*, vote_id: int) -> bool:
    """Apply one vote's online Elo update and pair count, once. Returns False if it was already applied
    (or the vote is gone), so a task that runs twice counts the vote once."""
    vote = Vote.objects.select_for_update().select_related("battle").filter(pk=vote_id).first()
    if vote is None or vote.rated_at is not None:
        return False
    if vote.excluded_reason:
        vote_mark_rated(vote_id=vote.pk)  # handled: kept for the record, counted nowhere
        return False
    a_id, b_id = vote.battle.model_a_id, vote.battle.model_b_id
    # Lock rating rows in model-id order, whatever the sides, so two concurrent votes can't deadlock.
    for model_id in sorted({a_id, b_id}):
        EloRating.objects.get_or_create(model_id=model_id)
    ratings = {
        r.model_id: r
        for r in EloRating.objects.select_for_update().filter(model_id__in=[a_id, b_id]).order_by("model_id")
    }
    outcome = selectors.OUTCOME_CODES[vote.outcome]
    new_a, new_b = elo_update(
        ratings[a_id].rating, ratings[b_id].rating, outcome, k=ELO_K, scale=ELO_SCALE, base=ELO_BASE
    )
    EloRating.objects.filter(model_id=a_id).update(rating=float(new_a), votes=F("votes") + 1, updated=timezone.now())
    EloRating.objects.filter(model_id=b_id).update(rating=float(new_b), votes=F("votes") + 1, updated=timezone.now())
    pair, _ = PairCount.objects.get_or_create(model_a_id=a_id, model_b_id=b_id)
    field = PAIR_FIELDS[outcome]
    PairCount.objects.filter(pk=pair.pk).update(**{field: F(field) + 1})
    vote_mark_rated(vote_id=vote.pk)
    return True


def votes_rate_pending(*, older_than_seconds: float) -> int:
    """Rate every vote still unrated after `older_than_seconds`; returns how many this call applied."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = (
        Vote.objects.filter(rated_at__isnull=True, created__lte=cutoff).order_by("created").values_list("pk", flat=True)
    )
    return sum(vote_rate(vote_id=vote_id) for vote_id in list(pending))


def arena_vote_fits(
    *,
    anchor: tuple[str, float] | None,
    rounds: int,
    seed: int,
    style_min_votes: int = STYLE_MIN_VOTES,
    position_min_votes: int = POSITION_MIN_VOTES,
) -> tuple[dict, dict]:
    """Fits that need single arena votes rather than pair counts: (style-controlled rows, left-seat advantage).

    Imported logs are left out: pair counts carry no style, and their sides may not be real seats. Each
    part comes back with a "reason" that is empty when it was fitted, else says why it was not.
    """
    votes = list(selectors.style_votes())
    models = sorted({v[0] for v in votes} | {v[1] for v in votes})
    index = {name: i for i, name in enumerate(models)}
    model_a = np.array([index[v[0]] for v in votes], dtype=np.int64)
    model_b = np.array([index[v[1]] for v in votes], dtype=np.int64)
    outcome = np.array([v[2] for v in votes], dtype=np.int64)
    scope = {"scope": "arena votes", "vote_count": len(votes)}

    if len(votes) < style_min_votes or len(models) < 2:
        style = {"models": [], "reason": f"Needs at least {style_min_votes} rated arena votes; there are {len(votes)}."}
    else:
        sides = {side: [v[3 + k] for v in votes] for k, side in enumerate("ab")}
        counts = {f"{side}_{key}": np.array([c[key] for c in sides[side]], dtype=np.float64)
                  for side in "ab" for key in ("tokens", "headers", "lists", "bold")}  # fmt: skip
        features = style_features(**counts)
        style_anchor = anchor if anchor and anchor[0] in index else None
        style_rounds = min(rounds, STYLE_BOOTSTRAP_ROUNDS)
        try:
            fit = fit_style_controlled(model_a, model_b, outcome, features, models, anchor=style_anchor,
                                       rounds=style_rounds, seed=seed)  # fmt: skip
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            logger.warning("Style-controlled fit failed", exc_info=True)
            style = {"models": [], "reason": f"The style-controlled fit failed: {exc}"}
        else:
            style = {"models": _ranked_rows(fit, models, model_a, model_b), "style": fit["style"],
                     "intervals": fit["intervals"], "rounds": fit["rounds"], "level": fit["level"],
                     "anchor": list(style_anchor) if style_anchor else None, "reason": ""}  # fmt: skip
    style.update(scope)

    if len(votes) < position_min_votes or len(models) < 2:
        position = {"reason": f"Needs at least {position_min_votes} rated arena votes; there are {len(votes)}."}
    else:
        try:
            fit = fit_position(pair_outcome_counts(model_a, model_b, outcome, models))
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            logger.warning("Position fit failed", exc_info=True)
            position = {"reason": f"The position fit failed: {exc}"}
        else:
            position = {key: fit[key] for key in ("elo_points", "ci_lower", "ci_upper", "level",
                                                  "left_score_between_equals")}  # fmt: skip
            position["reason"] = ""
    position.update(scope)
    return jsonable(style), jsonable(position)


def _ranked_rows(fit: dict, models: list[str], model_a: np.ndarray, model_b: np.ndarray) -> list[dict]:
    """Leaderboard-shaped rows (best first) from the engine's per-model arrays."""
    n = len(models)
    votes = np.bincount(model_a, minlength=n) + np.bincount(model_b, minlength=n)
    order = np.argsort(-np.asarray(fit["ratings"]), kind="stable")
    model_ranks = ranks(np.asarray(fit["ci_lower"])[order], np.asarray(fit["ci_upper"])[order])
    keys = ("ci_lower", "ci_upper", "sandwich_lower", "sandwich_upper")
    return [
        {
            "name": models[i],
            "rating": fit["ratings"][i],
            **{key: fit[key][i] for key in keys},
            "rank": int(rank),
            "votes": int(votes[i]),
        }  # fmt: skip
        for i, rank in zip(order.tolist(), model_ranks.tolist(), strict=True)
    ]


def leaderboard_recompute(
    *,
    rounds: int,
    seed: int,
    anchor: tuple[str, float] | None = None,
    bootstrap: bool = True,
    progress: Callable[[int, int], None] | None = None,
    style_min_votes: int = STYLE_MIN_VOTES,
) -> LeaderboardSnapshot:
    """Compute a Bradley-Terry board from the stored pair counts and add it as the newest snapshot.

    Reads O(pairs) rows, computes outside any transaction, then inserts one row; if anything fails
    on the way, nothing is written and the previous snapshot keeps being served.
    """
    started = time.perf_counter()
    cutoff = selectors.votes_rated_cutoff()
    pc = selectors.pair_counts_load()
    if pc.n_battles == 0:
        raise LeaderboardEmpty("No battles have been rated or imported yet.")
    # Ties come from the (order-free) pair counts; the left-seat term from arena votes only, below.
    board = compute_leaderboard(
        pc, rounds=rounds, seed=seed, anchor=anchor, bootstrap=bootstrap, progress=progress, ties=True
    )
    style, position = arena_vote_fits(
        anchor=anchor, rounds=rounds if bootstrap else 0, seed=seed, style_min_votes=style_min_votes
    )
    extras = {key: jsonable(board[key]) for key in ("matrices", "ties") if key in board}
    extras["position"] = position
    with transaction.atomic():
        return LeaderboardSnapshot.objects.create(
            method=board.get("method", selectors.METHOD_BT), params=jsonable(board.get("params", {})), seed=seed, data_cutoff=cutoff,
            vote_count=pc.n_battles, rows=jsonable(board["models"]), style_rows=style, extras=extras,
            compute_seconds=time.perf_counter() - started,
        )  # fmt: skip


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
    """Add counts to PairCount in bulk (a few statements per thousand pairs, never one per battle).

    Call inside a transaction. Missing rows are created empty first, then every affected row is locked
    and its new totals written back in one upsert, so a vote rated meanwhile waits instead of being lost.
    """
    ids = _historical_models(pc.models)
    keyed = {}
    for (a, b), row in zip(pc.pairs.tolist(), pc.counts.tolist(), strict=True):
        if sum(row):
            keyed[(ids[pc.models[a]], ids[pc.models[b]])] = row
    PairCount.objects.bulk_create(
        [PairCount(model_a_id=a, model_b_id=b) for a, b in keyed], ignore_conflicts=True, batch_size=1000
    )
    model_ids = {a for a, _ in keyed} | {b for _, b in keyed}
    locked = PairCount.objects.select_for_update().filter(model_a_id__in=model_ids, model_b_id__in=model_ids)
    totals = []
    for pair in locked:
        row = keyed.get((pair.model_a_id, pair.model_b_id))
        if row is not None:
            new = {field: getattr(pair, field) + add for field, add in zip(PAIR_FIELDS, row, strict=True)}
            totals.append(PairCount(model_a_id=pair.model_a_id, model_b_id=pair.model_b_id, **new))
    # An upsert of rows that all exist and are locked: one multi-row statement per batch, where
    # bulk_update's CASE expressions cost seconds of ORM time for a few thousand pairs.
    PairCount.objects.bulk_create(
        totals, update_conflicts=True, unique_fields=["model_a", "model_b"], update_fields=PAIR_FIELDS,
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
