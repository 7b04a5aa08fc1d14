"""Reads for ratings: pair counts for the engine, online Elo, snapshots and the leaderboard payload."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import numpy as np
from django.conf import settings
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from battles.models import Vote
from inference.models import ArenaModel
from inference.selectors import drawable_models
from ratings.answer_style import answer_style, conv_metadata
from ratings.engine.arena_votes import STYLE_COUNTS, ArenaVotes
from ratings.engine.categories import (
    OVERALL,
    LabelledPairCounts,
    category_definitions,
    category_order,
    labelled_counts_from_json,
)
from ratings.engine.counts import A_WINS, B_WINS, BOTH_BAD, TIE, PairCounts
from ratings.engine.history import average_win_rate, snapshot_series
from ratings.engine.leaderboard import json_safe
from ratings.engine.matrices import battle_count_matrix
from ratings.engine.matrices import head_to_head as head_to_head_records
from ratings.models import (
    FLAGGED_PREFIXES,
    EloRating,
    ImportedLog,
    JudgeFlag,
    LeaderboardPolicy,
    LeaderboardSnapshot,
    PairCount,
    RatedVote,
    RatingHistory,
    SnapshotArenaVotes,
    SnapshotInput,
)
from ratings.prompt_labels import FLAGS, labels_key, parse_labels_key, prompt_hash, prompt_labels

# Vote.outcome -> engine outcome code (0 = A wins, 1 = B wins, 2 = tie, 3 = both bad).
OUTCOME_CODES = {Vote.Outcome.A: A_WINS, Vote.Outcome.B: B_WINS, Vote.Outcome.TIE: TIE, Vote.Outcome.BOTH_BAD: BOTH_BAD}
# Vote.outcome -> FastChat clean_battle `winner`.
WINNER_NAMES = {Vote.Outcome.A: "model_a", Vote.Outcome.B: "model_b", Vote.Outcome.TIE: "tie",
                Vote.Outcome.BOTH_BAD: "tie (bothbad)"}  # fmt: skip

METHOD_BT = "bradley-terry"
METHOD_ELO = "elo"


def labelled_pair_counts_load() -> LabelledPairCounts:
    """Every stored count per (ordered pair, labels key) as engine input: one query, O(pairs x label
    combinations). Only models with battles appear."""
    rows = list(
        PairCount.objects.order_by("model_a__name", "model_b__name", "labels").values_list(
            "model_a__name", "model_b__name", "labels", "a_wins", "b_wins", "ties", "both_bad"
        )
    )
    rows = [r for r in rows if r[3] + r[4] + r[5] + r[6] > 0]
    models = sorted({r[0] for r in rows} | {r[1] for r in rows})
    index = {name: i for i, name in enumerate(models)}
    pairs = np.array([(index[r[0]], index[r[1]]) for r in rows], dtype=np.int64).reshape(-1, 2)
    counts = np.array([r[3:] for r in rows], dtype=np.int64).reshape(-1, 4)
    return LabelledPairCounts(models, pairs, [r[2] for r in rows], counts)


def pair_counts_load() -> PairCounts:
    """All stored pair counts, labels summed: the overall board's input. Only models with battles appear."""
    return labelled_pair_counts_load().total()


def votes_unrated_ids(*, created_before: datetime):
    """The ids of the votes not rated yet that were cast before `created_before`, oldest first (read through
    the partial index of the votes still to rate, battles.Vote.Meta)."""
    return (
        Vote.objects.filter(rated_at__isnull=True, created__lte=created_before)
        .order_by("created", "pk")
        .values_list("pk", flat=True)
    )


def vote_figures() -> dict:
    """Votes by state, exactly: `total`; `counted` in the ratings; `left_out` after rating (a flagged judge, a
    down-sampled prompt); `excluded` as not blind (counted nowhere); `unrated` yet, and `oldest_unrated`, when
    the oldest of those was cast (None if none waits)."""
    waiting = Q(rated_at__isnull=True)
    figures = Vote.objects.aggregate(
        total=Count("pk"),
        excluded=Count("pk", filter=~Q(excluded_reason="")),
        unrated=Count("pk", filter=waiting),
        oldest_unrated=Min("created", filter=waiting),
    )
    figures |= RatedVote.objects.aggregate(
        counted=Count("pk", filter=Q(in_counts=True)), left_out=Count("pk", filter=Q(in_counts=False))
    )
    return figures


def votes_rated_cutoff() -> datetime | None:
    """Time of the newest vote now in the pair counts."""
    return RatedVote.objects.filter(in_counts=True).aggregate(newest=Max("voted_at"))["newest"]


# Words a second in which a reader can take in two answers side by side, skimming. A vote sooner than the
# answers' words at this pace (counted from when they began to stream) is one nobody could have read for.
SKIM_WORDS_PER_SECOND = 15.0


def rated_vote_fields(vote: Vote) -> dict:
    """The RatedVote record of a vote: pair, outcome, judge and address, prompt labels and hash, both answers'
    style counts, and timing."""
    style = {
        side: answer_style(getattr(vote, f"conversation_{side}"), getattr(vote, f"timings_{side}")) for side in "ab"
    }
    last_turn = vote.battle.turns.order_by("-index").first()
    shown_at = last_turn.version_started if last_turn else None
    words = len(last_turn.answer_a.split()) + len(last_turn.answer_b.split()) if last_turn else 0
    return {
        "vote": vote,
        "model_a_id": vote.battle.model_a_id,
        "model_b_id": vote.battle.model_b_id,
        "outcome": OUTCOME_CODES[vote.outcome],
        "judge_hash": vote.judge_hash,
        "client_hash": vote.battle.client_hash,
        "voted_at": vote.created,
        "seconds_to_vote": (vote.created - shown_at).total_seconds() if shown_at else None,
        "seconds_to_read": words / SKIM_WORDS_PER_SECOND if last_turn else None,
        "labels": labels_key(prompt_labels(vote.conversation_a)),
        "prompt_hash": prompt_hash(vote.conversation_a),
        **{f"{key}_{side}": style[side][key] for side in "ab" for key in STYLE_COUNTS},
    }


def _names_by_id(ids) -> dict[int, str]:
    return dict(ArenaModel.objects.filter(pk__in=set(ids)).values_list("pk", "name"))


def arena_votes() -> ArenaVotes:
    """Arena votes now in the counts as engine arrays, with each side's stored style counts: one query over
    numbers, never the conversations."""
    fields = ["model_a_id", "model_b_id", "outcome"] + [f"{key}_{side}" for side in "ab" for key in STYLE_COUNTS]
    rows = np.array(
        list(RatedVote.objects.filter(in_counts=True).order_by("vote_id").values_list(*fields)), dtype=np.int64
    ).reshape(-1, len(fields))
    names = _names_by_id(rows[:, :2].ravel().tolist())
    models = sorted(set(names.values()))
    position = {model_id: models.index(name) for model_id, name in names.items()}
    to_index = np.vectorize(position.__getitem__, otypes=[np.int64])
    column = {name: rows[:, i] for i, name in enumerate(fields)}
    return ArenaVotes(
        models=models,
        model_a=to_index(column["model_a_id"]) if rows.size else np.zeros(0, dtype=np.int64),
        model_b=to_index(column["model_b_id"]) if rows.size else np.zeros(0, dtype=np.int64),
        outcome=column["outcome"],
        style_a={key: column[f"{key}_a"].astype(np.float64) for key in STYLE_COUNTS},
        style_b={key: column[f"{key}_b"].astype(np.float64) for key in STYLE_COUNTS},
    )


class JudgeVotes(NamedTuple):
    """Every rated vote in time order, with its session and address, and the fit's counts indexed the same way."""

    judge: np.ndarray  # judge hashes (sessions)
    address: np.ndarray  # client hashes where the vote is screened by address, else ""
    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray
    seconds_to_vote: np.ndarray  # NaN where unknown
    seconds_to_read: np.ndarray
    counts: PairCounts


def judge_votes() -> JudgeVotes:
    """In time order, so that every session's and every address's votes come in the order they were cast.
    A vote's address is "" where its battle had none and where every vote from that address is one
    session's: that session's own look sees them already (the same votes, the same verdict, and a second
    flag for an admin to clear)."""
    rows = list(
        RatedVote.objects.order_by("voted_at", "vote_id").values_list(
            "judge_hash", "client_hash", "model_a_id", "model_b_id", "outcome", "seconds_to_vote", "seconds_to_read"
        )
    )
    counts = pair_counts_load()
    names = _names_by_id([r[2] for r in rows] + [r[3] for r in rows])
    models = sorted(set(counts.models) | set(names.values()))
    index = {name: i for i, name in enumerate(models)}
    sessions_at: dict[str, set[str]] = {}
    for judge, address, *_ in rows:
        if address:
            sessions_at.setdefault(address, set()).add(judge)

    def column(i, dtype):
        return np.array([r[i] for r in rows], dtype=dtype)

    def seconds(i):
        return np.array([np.nan if r[i] is None else r[i] for r in rows], dtype=np.float64)

    return JudgeVotes(
        judge=np.array([r[0] for r in rows], dtype=str),
        address=np.array([r[1] if len(sessions_at.get(r[1], ())) > 1 else "" for r in rows], dtype=str),
        model_a=np.array([index[names[r[2]]] for r in rows], dtype=np.int64),
        model_b=np.array([index[names[r[3]]] for r in rows], dtype=np.int64),
        outcome=column(4, np.int64),
        seconds_to_vote=seconds(5),
        seconds_to_read=seconds(6),
        counts=counts.with_models(models),
    )


def _left_out_by_a_flag() -> Q:
    """Rated votes a flagged session or address keeps out of the counts."""
    flagged = Q()
    for prefix in FLAGGED_PREFIXES.values():
        flagged |= Q(left_out_reason__startswith=prefix)
    return flagged


def clean_battle_records_left_out() -> dict[str, int]:
    """What clean_battle_records leaves out, counted, so that an export can say so: votes not blind, rated
    votes of flagged judges, votes not rated yet, and battles imported from outside logs (counts only)."""
    return {
        "not blind": Vote.objects.exclude(excluded_reason="").count(),
        "of flagged judges": RatedVote.objects.filter(_left_out_by_a_flag()).count(),
        "not rated yet": Vote.objects.filter(rated_at__isnull=True, excluded_reason="").count(),
        "imported as counts": sum(ImportedLog.objects.values_list("battle_count", flat=True)),
    }


def clean_battle_records() -> Iterator[dict]:
    """The arena's rated votes in FastChat clean_battle format, with FastChat's style `conv_metadata`, the
    prompt labels, and `dedup_tag` (a down-sampled frequent prompt has sampled=false, which readers of the
    format skip). Judges are the stored keyed hashes; no session keys, no IPs. Votes that are not blind or
    whose judge (session or address) is flagged are left out."""
    threshold = LeaderboardPolicy.current().duplicate_prompt_threshold
    rated = (
        RatedVote.objects.exclude(_left_out_by_a_flag())
        .select_related("vote", "model_a", "model_b")
        .order_by("voted_at", "vote_id")
    )
    for row in rated.iterator(2000):
        vote = row.vote
        labels = parse_labels_key(row.labels)
        yield {
            "question_id": str(vote.battle_id),
            "model_a": row.model_a.name,
            "model_b": row.model_b.name,
            "winner": WINNER_NAMES[vote.outcome],
            "judge": vote.judge_hash,
            "conversation_a": vote.conversation_a,
            "conversation_b": vote.conversation_b,
            "turn": sum(1 for m in vote.conversation_a if m.get("role") == "user"),
            "anony": True,
            "language": labels.language,
            "category_tag": {"labels": row.labels, **{flag: getattr(labels, flag) for flag in FLAGS}},
            # The threshold only grows: a vote down-sampled when it was rated may be under today's. Out of the
            # counts here (flagged judges' votes are not exported) is down-sampled, hence high-frequency.
            "dedup_tag": {
                "high_freq": row.prompt_occurrence > threshold or not row.in_counts,
                "sampled": row.in_counts,
            },
            "tstamp": vote.created.timestamp(),
            "conv_metadata": conv_metadata(vote.conversation_a, vote.conversation_b, vote.timings_a, vote.timings_b),
        }


def elo_rows() -> list[dict]:
    """Online Elo of every model with at least one rated vote, best first, ranked by rating."""
    rows = (
        EloRating.objects.filter(votes__gt=0)
        .order_by("-rating", "model__name")
        .values_list("model__name", "rating", "votes")
    )
    return [{"name": name, "rating": rating, "votes": votes} for name, rating, votes in rows]


@dataclass(frozen=True)
class BoardVersion:
    """What the leaderboard's payload depends on: the newest snapshot and the last online-Elo change.
    Two cheap aggregate reads; the payload is built (and cached) only when this changes."""

    snapshot_id: int | None
    elo_updated: datetime | None
    # What marks rows (the admins' policy, which models are retired): a change shows at once.
    marks: str = ""
    # Votes in the online Elo, all models together: it grows with every rated vote, even one whose update is
    # stamped before the newest (two rating workers, the earlier one committing later), which the newest
    # update time alone would miss, leaving a stale board cached until the next vote.
    elo_votes: int = 0

    def etag(self, query: str) -> str:
        elo = self.elo_updated.isoformat() if self.elo_updated else "-"
        version = f"{self.snapshot_id}|{elo}|{self.elo_votes}|{self.marks}|{query}"
        return hashlib.sha256(version.encode()).hexdigest()[:32]


def board_version() -> BoardVersion:
    newest_id = LeaderboardSnapshot.objects.order_by("-id").values_list("id", flat=True).first()
    elo = EloRating.objects.filter(votes__gt=0).aggregate(newest=Max("updated"), votes=Sum("votes"))
    policy = LeaderboardPolicy.objects.filter(pk=1).values_list("provisional_votes", "hide_provisional").first()
    retired = ArenaModel.objects.filter(retired_at__isnull=False).order_by("pk").values_list("pk", flat=True)
    marks = f"{policy}|{list(retired)}"
    return BoardVersion(newest_id, elo["newest"], marks, elo_votes=elo["votes"] or 0)


def snapshot_latest() -> LeaderboardSnapshot | None:
    return LeaderboardSnapshot.objects.order_by("-id").first()


def snapshot_get(snapshot_id: int) -> LeaderboardSnapshot | None:
    return LeaderboardSnapshot.objects.filter(pk=snapshot_id).first()


def snapshot_choices(limit: int = 50) -> list[dict]:
    """The newest snapshots, for the picker."""
    return list(LeaderboardSnapshot.objects.order_by("-id").values("id", "created", "method", "vote_count")[:limit])


class SnapshotNotFound(LookupError):
    pass


class CategoryNotInSnapshot(SnapshotNotFound):
    """The snapshot exists, without a board for the category asked for (too few votes in it then)."""


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
        # The exact pair counts it was fitted on, for anyone to re-derive it (`manage.py leaderboard
        # --pair-counts` on the download gives the same board with the same parameters).
        "inputs_sha256": snapshot_download_sha256(snapshot.pk, "inputs") if snapshot.inputs_id else None,
        "inputs_url": f"/api/leaderboard/{snapshot.pk}/pair_counts.json" if snapshot.inputs_id else None,
        # And the arena votes its style-controlled board and left-seat effect were fitted on (`--arena-votes`).
        # Of each, the sha256 alone is read: the counts and the votes are megabytes on a large arena.
        "arena_votes_sha256": snapshot_download_sha256(snapshot.pk, "arena_votes") if snapshot.arena_votes_id else None,
        "arena_votes_url": f"/api/leaderboard/{snapshot.pk}/arena_votes.json" if snapshot.arena_votes_id else None,
    }


def _elo_as_models(elo: list[dict]) -> list[dict]:
    """Online Elo rows shaped like leaderboard rows: no intervals, rank by rating (equal ratings share)."""
    rows, rank, previous = [], 0, None
    for position, row in enumerate(elo, start=1):
        if row["rating"] != previous:
            rank, previous = position, row["rating"]
        rows.append({**row, "ci_lower": None, "ci_upper": None, "rank": rank})
    return rows


def board_comparison(snapshot: LeaderboardSnapshot | None, category: str = OVERALL) -> dict:
    """What a snapshot board says about which ratings exist and compare: "note" (a plain paragraph, "" when
    every model is rated in one group), "groups" and "not_rated"; empty for online Elo."""
    if snapshot is None:
        stored = {}
    elif category == OVERALL:
        stored = (snapshot.extras or {}).get("comparison") or {}
    else:
        stored = (snapshot.categories or {}).get(category, {})
    return {
        "note": stored.get("note", ""),
        "groups": stored.get("groups", []),
        "not_rated": stored.get("not_rated", []),
    }


def _with_status(rows: list[dict], policy: LeaderboardPolicy) -> list[dict]:
    """Rows marked as the arena stands now: provisional under the policy's votes, retired if retired."""
    retired = set(ArenaModel.objects.filter(retired_at__isnull=False).values_list("name", flat=True))
    return [
        {**row, "provisional": row.get("votes", 0) < policy.provisional_votes, "retired": row["name"] in retired}
        for row in rows
    ]


def category_label(name: str) -> str:
    """A board's name as a tab shows it: "exclude_ties" -> "exclude ties", "language:en" -> "language: en"."""
    return name.replace("_", " ").replace(":", ": ")


def categories_of(snapshot: LeaderboardSnapshot | None) -> list[dict]:
    """The boards a snapshot has: overall first, then each category with its battle count."""
    if snapshot is None:
        return []
    boards = [{"name": OVERALL, "label": category_label(OVERALL), "battles": snapshot.vote_count}]
    stored = snapshot.categories or {}
    return boards + [
        {"name": name, "label": category_label(name), "battles": stored[name]["n_battles"]}
        for name in category_order(stored)
    ]


def leaderboard_payload(
    *, snapshot_id: int | None = None, method: str | None = None, category: str | None = None, public: bool = False
) -> dict:
    """What /api/leaderboard serves: the newest snapshot (or a chosen one) overall or for one category,
    else online Elo. Rows carry `provisional` and `retired`; `public` (the page) leaves provisional rows
    out when the policy says so. A row whose "rating" is None is a model not rated yet (its "note" says
    why); "note", "groups" and "not_rated" say which ratings exist and which compare (`board_comparison`).

    Raises SnapshotNotFound for an unknown snapshot id or category, ValueError for an unknown method.
    """
    if method not in (None, METHOD_BT, METHOD_ELO):
        raise ValueError(f"Unknown method {method!r}; use {METHOD_BT} or {METHOD_ELO}.")
    policy = LeaderboardPolicy.current()
    elo = elo_rows()
    elo_updated = EloRating.objects.filter(votes__gt=0).aggregate(newest=Max("updated"))["newest"]
    snapshot = None
    if method != METHOD_ELO:
        snapshot = snapshot_latest() if snapshot_id is None else snapshot_get(snapshot_id)
        if snapshot_id is not None and snapshot is None:
            raise SnapshotNotFound(f"No leaderboard snapshot with id {snapshot_id}.")
    category = category or OVERALL
    if snapshot is None:
        models, used = _elo_as_models(elo), METHOD_ELO
        if category != OVERALL:
            raise SnapshotNotFound(f"No board for category {category!r} yet: categories come with snapshots.")
    elif category == OVERALL:
        models, used = snapshot.rows, snapshot.method
    elif category in (snapshot.categories or {}):
        models, used = snapshot.categories[category]["models"], snapshot.method
    else:
        names = ", ".join(c["name"] for c in categories_of(snapshot))
        raise CategoryNotInSnapshot(f"No board for category {category!r} in this snapshot; it has: {names}.")
    models = _with_status(models, policy)
    shown = [row for row in models if not row["provisional"]] if public and policy.hide_provisional else models
    hidden, models = len(models) - len(shown), shown
    extras = (snapshot.extras or {}) if snapshot else {}
    stamps = [t for t in (elo_updated, snapshot.created if snapshot else None) if t is not None]
    return {
        "method": used,
        "category": category,
        "categories": categories_of(snapshot),
        "board": _board_settings(snapshot, category) if snapshot else None,
        "models": models,
        **board_comparison(snapshot, category),
        "provisional_votes": policy.provisional_votes,
        "hidden_provisional": hidden,
        "snapshot": snapshot_meta(snapshot) if snapshot else None,
        # Fitted on every arena vote: shown with the overall board, not under a category's name.
        "style_controlled": snapshot.style_rows if snapshot and category == OVERALL else None,
        "matrices": extras.get("matrices") if category == OVERALL else None,
        "position": extras.get("position") if category == OVERALL else None,
        "ties": extras.get("ties") if category == OVERALL else None,
        "robustness": extras.get("robustness") if category == OVERALL else None,
        "sampling": extras.get("sampling"),
        "online_elo": elo,
        "updated": max(stamps).isoformat() if stamps else timezone.now().isoformat(),
    }


def _board_settings(snapshot: LeaderboardSnapshot, category: str) -> dict:
    """How the board shown was made: its battles, intervals, rounds, seed and anchor. A category's are its own
    (fewer battles; the shared bootstrap refits each round `refit_steps` steps from the board's fit; its anchor
    is dropped where the anchor model has no rating in it), not the overall board's."""
    if category == OVERALL:
        params = snapshot.params or {}
        anchor = params.get("anchor")  # [name, rating]; {"model", "rating"} in snapshots of some earlier code
        if isinstance(anchor, list | tuple):
            anchor = {"model": anchor[0], "rating": float(anchor[1])}
        return {
            "n_battles": snapshot.vote_count, "intervals": params.get("intervals"), "rounds": params.get("rounds"),
            "seed": snapshot.seed, "refit_steps": None, "anchor": anchor or None,
        }  # fmt: skip
    stored = snapshot.categories[category]
    return {key: stored.get(key) for key in ("n_battles", "intervals", "rounds", "seed", "refit_steps", "anchor")}


def snapshot_inputs(snapshot_id: int) -> tuple[dict, str]:
    """The exact pair counts a snapshot was fitted on (download format) and their sha256."""
    snapshot = LeaderboardSnapshot.objects.select_related("inputs").filter(pk=snapshot_id).first()
    if snapshot is None or snapshot.inputs_id is None:
        raise SnapshotNotFound(f"No stored inputs for snapshot {snapshot_id}.")
    return snapshot.inputs.counts, snapshot.inputs.sha256


def snapshot_download_sha256(snapshot_id: int, what: str) -> str | None:
    """The sha256 of a snapshot's pair counts (`what` "inputs") or arena votes ("arena_votes"), read alone."""
    stored = SnapshotInput if what == "inputs" else SnapshotArenaVotes
    return stored.objects.filter(snapshots=snapshot_id).values_list("sha256", flat=True).first()


def snapshot_arena_votes(snapshot_id: int) -> tuple[dict, str]:
    """The arena votes a snapshot's style board and left-seat effect were fitted on, and their sha256."""
    stored = SnapshotArenaVotes.objects.filter(snapshots=snapshot_id).values_list("votes", "sha256").first()
    if stored is None:
        raise SnapshotNotFound(
            f"No stored arena votes for snapshot {snapshot_id}: they are kept for 30 minutes after a snapshot is "
            "made, then only with the newest snapshot of each recent day (and not for snapshots made before "
            "2026-12-07)."
        )
    return stored


# What researchers see beyond the board: its plots, history, a page per model and the about page.


def board_counts(inputs: dict, category: str = OVERALL) -> PairCounts | None:
    """The pair counts one board of a snapshot was fitted on, from the snapshot's stored inputs."""
    lpc = labelled_counts_from_json(inputs)
    if category == OVERALL:
        return lpc.total()
    # Any minimum will do: the snapshot already decided which boards it has; this only looks up the definition.
    definitions = {c.name: c for c in category_definitions(lpc, min_votes=0)}
    return definitions[category].counts(lpc) if category in definitions else None


def board_plot_data(snapshot_id: int, category: str = OVERALL) -> dict | None:
    """A snapshot board's battle counts per pair and each model's average win rate against all others
    (observed, and predicted by its fit), from the counts it was fitted on; None without stored inputs."""
    inputs = SnapshotInput.objects.filter(snapshots=snapshot_id).values_list("counts", flat=True).first()
    pc = board_counts(inputs, category) if inputs is not None else None
    if pc is None or pc.n_battles == 0:
        return None
    return {
        "models": pc.models,
        "battles": battle_count_matrix(pc).tolist(),
        "observed_win_rate": json_safe(average_win_rate(pc)),
        "predicted_win_rate": json_safe(average_win_rate(pc, predicted=True)),
    }


def _iso_times(series: dict[str, dict[str, list]]) -> dict[str, dict[str, list]]:
    for points in series.values():
        points["time"] = [t.isoformat() if isinstance(t, datetime) else t for t in points["time"]]
    return series


def snapshot_history() -> dict[str, dict[str, list]]:
    """Each model's overall rating and interval over time, one point per snapshot: {model: {"time", "rating",
    "ci_lower", "ci_upper"}}, times ISO. A snapshot's time is its data cutoff (its newest vote), else when it
    was made; of snapshots with the same time, the newest is kept (it is the later look at the same votes).
    Only snapshots on the newest one's scale are drawn: one saved with an anchor (`leaderboard --save
    --anchor`) is shifted as a whole against the scheduled, centred ones, and mixing them would draw the shift."""
    boards = {}
    newest = LeaderboardSnapshot.objects.order_by("-id").values_list("params", flat=True).first()
    scale = (newest or {}).get("anchor")
    snapshots = LeaderboardSnapshot.objects.order_by("id").values_list("data_cutoff", "created", "rows", "params")
    for cutoff, created, rows, params in snapshots.iterator(100):
        if (params or {}).get("anchor") == scale:
            boards[cutoff or created] = rows
    return _iso_times(snapshot_series(boards.items()))


def history_stamp() -> str:
    """Changes whenever a replay stores history (a replay replaces its rows, so the newest id grows)."""
    stamp = RatingHistory.objects.aggregate(points=Count("id"), newest=Max("id"))
    return f"{stamp['points']}:{stamp['newest']}"


def replayed_history(model_name: str | None = None) -> dict[str, dict[str, dict[str, list]]]:
    """Stored replays of battle logs, per source: {source: {model: {"time", "rating", "ci_lower",
    "ci_upper"}}}, times ISO; only `model_name`'s points when given."""
    points = RatingHistory.objects.order_by("source", "cutoff", "rank", "model_name")
    if model_name is not None:
        points = points.filter(model_name=model_name)
    boards: dict[str, dict[datetime, list[dict]]] = {}
    fields = ("source", "cutoff", "model_name", "rating", "ci_lower", "ci_upper")
    for source, cutoff, name, rating, lower, upper in points.values_list(*fields).iterator(2000):
        row = {"name": name, "rating": rating, "ci_lower": lower, "ci_upper": upper}
        boards.setdefault(source, {}).setdefault(cutoff, []).append(row)
    return {source: _iso_times(snapshot_series(by_cutoff.items())) for source, by_cutoff in boards.items()}


class ModelNotFound(LookupError):
    pass


REGISTRY_FIELDS = ("organization", "license", "is_active", "is_historical", "retired_at", "sampling_weight",
                   "target_votes")  # fmt: skip


def model_marks(name: str) -> str:
    """What a model's page shows besides the board's version: its registry entry and the stored replays."""
    entry = ArenaModel.objects.filter(name=name).values_list(*REGISTRY_FIELDS).first()
    return f"{entry}|{history_stamp()}"


def _model_status(model: ArenaModel | None, row: dict | None) -> list[str]:
    """Live (drawn into battles now), retired, historical (imported, never served here) or inactive; plus
    provisional while the board's row has fewer votes than the policy asks."""
    if model is None:
        status = ["historical"]  # known only from a replayed battle log
    elif model.retired_at is not None:
        status = ["retired"]
    elif model.is_historical:
        status = ["historical"]
    else:
        status = ["live" if drawable_models().filter(pk=model.pk).exists() else "inactive"]
    return status + (["provisional"] if row and row["provisional"] else [])


def head_to_head(snapshot: LeaderboardSnapshot, name: str) -> list[dict]:
    """`name`'s record against every opponent in the counts the snapshot was fitted on (either side), with
    the win rate among decisive battles and the win probability the snapshot's ratings predict; most
    battles first (ratings/engine/matrices.py)."""
    if snapshot.inputs_id is None:
        return []
    return head_to_head_records(labelled_counts_from_json(snapshot.inputs.counts).total(), name, snapshot.rows)


def model_profile(name: str) -> dict:
    """What a model's page shows: its registry entry and status, its rating and interval on the newest
    snapshot's boards (overall, else online Elo, and each category it is on), and its head-to-head records.

    Raises ModelNotFound unless the model is registered or a stored replay names it.
    """
    model = ArenaModel.objects.filter(name=name).first()
    if model is None and not RatingHistory.objects.filter(model_name=name).exists():
        raise ModelNotFound(f"No model named {name!r}.")
    policy = LeaderboardPolicy.current()
    snapshot = LeaderboardSnapshot.objects.select_related("inputs").order_by("-id").first()
    overall = snapshot.rows if snapshot else _elo_as_models(elo_rows())
    row = next((r for r in _with_status(overall, policy) if r["name"] == name), None)
    boards = [{**row, "board": OVERALL, "label": category_label(OVERALL)}] if row else []
    stored = (snapshot.categories or {}) if snapshot else {}
    for category in category_order(stored):
        rows = [r for r in stored[category]["models"] if r["name"] == name]
        boards += [{**r, "board": category, "label": category_label(category)} for r in _with_status(rows, policy)]
    return {
        "name": name,
        "registered": model is not None,
        "organization": model.organization if model else "",
        "license": model.license if model else "",
        "status": _model_status(model, row),
        "retired_at": model.retired_at if model else None,
        "target_votes": model.target_votes if model else 0,
        "row": row,
        "boards": boards,
        "head_to_head": head_to_head(snapshot, name) if snapshot else [],
        "snapshot": snapshot_meta(snapshot) if snapshot else None,
        "provisional_votes": policy.provisional_votes,
    }


def about_payload() -> dict:
    """The live figures the about page explains: the newest snapshot's parameters, pair-drawing plan,
    categories and robustness; the admins' policy and draw settings; and which votes are left out."""
    policy = LeaderboardPolicy.current()
    snapshot = snapshot_latest()
    extras = (snapshot.extras or {}) if snapshot else {}
    rows = _with_status(snapshot.rows if snapshot else _elo_as_models(elo_rows()), policy)
    votes = {row["name"]: row["votes"] for row in rows}
    drawable = list(drawable_models().order_by("name").values_list("name", "sampling_weight", "target_votes"))
    left_out = RatedVote.objects.aggregate(
        total=Count("pk"),
        flagged=Count("pk", filter=Q(in_counts=False) & _left_out_by_a_flag()),
        frequent=Count("pk", filter=Q(in_counts=False) & ~_left_out_by_a_flag()),
    )
    params = snapshot.params if snapshot else {}
    return {
        "snapshot": snapshot_meta(snapshot) if snapshot else None,
        "params": params,
        "anchor": params.get("anchor"),
        "category_min_votes": params.get("category_min_votes", settings.CATEGORY_MIN_VOTES),
        "style_min_votes": params.get("style_min_votes"),
        "style_controlled": snapshot.style_rows if snapshot else None,
        "categories": categories_of(snapshot),
        "sampling": extras.get("sampling"),
        "robustness": extras.get("robustness"),
        "policy": {field: getattr(policy, field) for field in ABOUT_POLICY_FIELDS},
        "drawable": len(drawable),
        "weights": [{"name": n, "weight": w} for n, w, _ in drawable if w != 1.0],
        "targets": [{"name": n, "target": t, "votes": votes.get(n, 0)} for n, _, t in drawable if t > 0],
        "provisional": [row["name"] for row in rows if row["provisional"]],
        "retired": [row["name"] for row in rows if row["retired"]],
        "rated_votes": left_out["total"],
        "left_out_flagged": left_out["flagged"],
        "left_out_frequent": left_out["frequent"],
        "flagged_judges": JudgeFlag.objects.filter(state=JudgeFlag.State.FLAGGED).count(),
        "judge_screen_alpha": settings.JUDGE_SCREEN_ALPHA,
        "recompute_interval": settings.LEADERBOARD_RECOMPUTE_INTERVAL,
        "health_probe_interval": settings.HEALTH_PROBE_INTERVAL,
    }


ABOUT_POLICY_FIELDS = ("provisional_votes", "hide_provisional", "exploration_share", "boost_share", "top_k",
                       "duplicate_prompt_threshold")  # fmt: skip
