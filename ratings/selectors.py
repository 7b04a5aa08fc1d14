"""Reads for ratings: pair counts for the engine, online Elo, snapshots and the leaderboard payload."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import numpy as np
from django.db.models import Max
from django.utils import timezone

from battles.models import Vote
from ratings.answer_style import answer_style, conv_metadata
from ratings.engine.counts import A_WINS, B_WINS, BOTH_BAD, TIE, PairCounts
from ratings.models import EloRating, LeaderboardSnapshot, PairCount

# Vote.outcome -> engine outcome code (0 = A wins, 1 = B wins, 2 = tie, 3 = both bad).
OUTCOME_CODES = {Vote.Outcome.A: A_WINS, Vote.Outcome.B: B_WINS, Vote.Outcome.TIE: TIE, Vote.Outcome.BOTH_BAD: BOTH_BAD}
# Vote.outcome -> FastChat clean_battle `winner`.
WINNER_NAMES = {Vote.Outcome.A: "model_a", Vote.Outcome.B: "model_b", Vote.Outcome.TIE: "tie",
                Vote.Outcome.BOTH_BAD: "tie (bothbad)"}  # fmt: skip

METHOD_BT = "bradley-terry"
METHOD_ELO = "elo"


def pair_counts_load() -> PairCounts:
    """All stored pair counts as engine input: one query, O(pairs). Only models with battles appear."""
    rows = list(PairCount.objects.values_list("model_a__name", "model_b__name", "a_wins", "b_wins", "ties", "both_bad"))
    rows = [r for r in rows if r[2] + r[3] + r[4] + r[5] > 0]
    models = sorted({r[0] for r in rows} | {r[1] for r in rows})
    index = {name: i for i, name in enumerate(models)}
    pairs = np.array([(index[r[0]], index[r[1]]) for r in rows], dtype=np.int64).reshape(-1, 2)
    counts = np.array([r[2:] for r in rows], dtype=np.int64).reshape(-1, 4)
    return PairCounts(models, pairs, counts)


def votes_rated_cutoff() -> datetime | None:
    """Time of the newest vote already counted in PairCount."""
    return Vote.objects.counted().aggregate(newest=Max("created"))["newest"]


def style_votes() -> Iterator[tuple[str, str, int, dict, dict]]:
    """Rated arena votes with each side's style counts (see answer_style):
    (model_a, model_b, outcome code, style_a, style_b). Streams, so conversations are never all in memory."""
    fields = ["battle__model_a__name", "battle__model_b__name", "outcome", "conversation_a", "conversation_b",
              "timings_a", "timings_b"]  # fmt: skip
    rows = Vote.objects.counted().order_by("pk").values_list(*fields)
    for a, b, outcome, conv_a, conv_b, timings_a, timings_b in rows.iterator(2000):
        yield a, b, OUTCOME_CODES[outcome], answer_style(conv_a, timings_a), answer_style(conv_b, timings_b)


def clean_battle_records() -> Iterator[dict]:
    """The arena's own votes in FastChat clean_battle format, with FastChat's style `conv_metadata`.
    Judges are the stored HMACs; no session keys, no IPs. Excluded votes (not blind) are left out."""
    fields = ["battle_id", "battle__model_a__name", "battle__model_b__name", "outcome", "judge_hash", "created",
              "conversation_a", "conversation_b", "timings_a", "timings_b"]  # fmt: skip
    rows = Vote.objects.filter(excluded_reason="").order_by("created", "pk").values_list(*fields)
    for battle_id, a, b, outcome, judge, created, conv_a, conv_b, timings_a, timings_b in rows.iterator(2000):
        yield {
            "question_id": str(battle_id),
            "model_a": a,
            "model_b": b,
            "winner": WINNER_NAMES[outcome],
            "judge": judge,
            "conversation_a": conv_a,
            "conversation_b": conv_b,
            "turn": sum(1 for m in conv_a if m.get("role") == "user"),
            "anony": True,
            "language": "unknown",
            "tstamp": created.timestamp(),
            "conv_metadata": conv_metadata(conv_a, conv_b, timings_a, timings_b),
        }


def elo_rows() -> list[dict]:
    """Online Elo of every model with at least one rated vote, best first, ranked by rating."""
    rows = (
        EloRating.objects.filter(votes__gt=0)
        .order_by("-rating", "model__name")
        .values_list("model__name", "rating", "votes")
    )
    return [{"name": name, "rating": rating, "votes": votes} for name, rating, votes in rows]


def snapshot_latest() -> LeaderboardSnapshot | None:
    return LeaderboardSnapshot.objects.order_by("-id").first()


def snapshot_get(snapshot_id: int) -> LeaderboardSnapshot | None:
    return LeaderboardSnapshot.objects.filter(pk=snapshot_id).first()


def snapshot_choices(limit: int = 50) -> list[dict]:
    """The newest snapshots, for the picker."""
    return list(LeaderboardSnapshot.objects.order_by("-id").values("id", "created", "method", "vote_count")[:limit])


class SnapshotNotFound(LookupError):
    pass


def snapshot_meta(snapshot: LeaderboardSnapshot) -> dict:
    return {
        "id": snapshot.pk,
        "created": snapshot.created.isoformat(),
        "method": snapshot.method,
        "params": snapshot.params,
        "seed": snapshot.seed,
        "data_cutoff": snapshot.data_cutoff.isoformat() if snapshot.data_cutoff else None,
        "vote_count": snapshot.vote_count,
        "compute_seconds": snapshot.compute_seconds,
    }


def _elo_as_models(elo: list[dict]) -> list[dict]:
    """Online Elo rows shaped like leaderboard rows: no intervals, rank by rating (equal ratings share)."""
    rows, rank, previous = [], 0, None
    for position, row in enumerate(elo, start=1):
        if row["rating"] != previous:
            rank, previous = position, row["rating"]
        rows.append({**row, "ci_lower": None, "ci_upper": None, "rank": rank})
    return rows


def leaderboard_payload(*, snapshot_id: int | None = None, method: str | None = None) -> dict:
    """What /api/leaderboard serves: the newest snapshot (or a chosen one), else online Elo.

    Raises SnapshotNotFound for an unknown snapshot id and ValueError for an unknown method.
    """
    if method not in (None, METHOD_BT, METHOD_ELO):
        raise ValueError(f"Unknown method {method!r}; use {METHOD_BT} or {METHOD_ELO}.")
    elo = elo_rows()
    elo_updated = EloRating.objects.filter(votes__gt=0).aggregate(newest=Max("updated"))["newest"]
    snapshot = None
    if method != METHOD_ELO:
        snapshot = snapshot_latest() if snapshot_id is None else snapshot_get(snapshot_id)
        if snapshot_id is not None and snapshot is None:
            raise SnapshotNotFound(f"No leaderboard snapshot with id {snapshot_id}.")
    if snapshot is None:
        models, used = _elo_as_models(elo), METHOD_ELO
    else:
        models, used = snapshot.rows, snapshot.method
    stamps = [t for t in (elo_updated, snapshot.created if snapshot else None) if t is not None]
    return {
        "method": used,
        "models": models,
        "snapshot": snapshot_meta(snapshot) if snapshot else None,
        "style_controlled": snapshot.style_rows if snapshot else None,
        "matrices": (snapshot.extras or {}).get("matrices") if snapshot else None,
        "position": (snapshot.extras or {}).get("position") if snapshot else None,
        "ties": (snapshot.extras or {}).get("ties") if snapshot else None,
        "online_elo": elo,
        "updated": max(stamps).isoformat() if stamps else timezone.now().isoformat(),
    }
