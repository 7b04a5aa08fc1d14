"""The leaderboard as one JSON-serialisable dict, and a plain-text table of it."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ratings.engine.bradley_terry import (
    PairData,
    bootstrap_intervals,
    fit_ratings,
    predicted_win_matrix,
    ranks,
    rated_anchor,
    sandwich_intervals,
)
from ratings.engine.counts import PairCounts
from ratings.engine.matrices import battle_count_matrix, win_fraction_matrix
from ratings.engine.position import fit_position
from ratings.engine.rated_groups import NOT_RATED, RatedGroups, board_note, unrated_notes
from ratings.engine.ties import fit_tie_model


def _number(value: float) -> float | None:
    """A float for JSON, with NaN and infinities as None."""
    value = float(value)
    return value if math.isfinite(value) else None


def _matrix(values: np.ndarray) -> list[list[float | None]]:
    """A float matrix as nested lists, NaN and infinities as None."""
    rows = values.tolist()
    # Patch only the non-finite cells: a per-cell Python check would dominate the default board's time.
    for i, j in zip(*np.nonzero(~np.isfinite(values)), strict=True):
        rows[i][j] = None
    return rows


def compute_leaderboard(
    pc: PairCounts,
    *,
    rounds: int = 1000,
    seed: int = 0,
    anchor: tuple[str, float] | None = None,
    bootstrap: bool = True,
    progress: Callable[[int, int], None] | None = None,
    level: float = 0.95,
    position: bool = False,
    ties: bool = False,
) -> dict:
    """Ratings, intervals, ranks and matrices; bootstrap=False uses the sandwich intervals throughout.

    Models without battles are left out of the board and the matrices. A model whose rating does not exist
    (e.g. only wins so far) has a row with its votes and a note but no rating, interval or rank, and takes
    no part in the centring; models that never met, directly or through others, are rated and ranked group
    by group ("groups", "note"). position=True adds the left-seat term (meaningful only when sides were
    kept); ties=True adds the two-tie Davidson model's summary.
    """
    data = PairData.from_counts(pc)
    groups = data.rated_groups()
    ratings = fit_ratings(pc, anchor=anchor, groups=groups)
    sandwich_lower, sandwich_upper = sandwich_intervals(pc, ratings, level=level, anchor=anchor, groups=groups)
    if bootstrap and rounds > 0:
        ci_lower, ci_upper, _ = bootstrap_intervals(
            pc, rounds=rounds, seed=seed, level=level, anchor=anchor, progress=progress
        )
        interval_method = "bootstrap"
    else:
        ci_lower, ci_upper = sandwich_lower, sandwich_upper
        interval_method = "sandwich"
    rows, shown = model_rows(pc, ratings, ci_lower, ci_upper, sandwich_lower, sandwich_upper, data=data, groups=groups)
    votes = pc.votes_per_model()
    used_anchor = anchor if rated_anchor(pc.models, anchor, groups) is not None else None
    grid = np.ix_(shown, shown)
    board = {
        "method": "bradley-terry",
        "params": {
            "scale": 400.0,
            "base": 10.0,
            "init_rating": 1000.0,
            "anchor": None if used_anchor is None else {"model": used_anchor[0], "rating": float(used_anchor[1])},
            "intervals": interval_method,
            "level": level,
            "rounds": rounds if interval_method == "bootstrap" else 0,
            "seed": seed,
            "ties": "half a win each (tie and both-bad)",
            "n_battles": pc.n_battles,
        },
        "models": rows,
        **comparison_summary(
            pc.models, groups, votes, anchor_dropped=anchor[0] if anchor and not used_anchor else None
        ),
        "matrices": {
            "models": [pc.models[i] for i in shown.tolist()],
            "battles": battle_count_matrix(pc)[grid].tolist(),
            "win_fraction": _matrix(win_fraction_matrix(pc)[grid]),
            "predicted": _matrix(predicted_win_matrix(ratings[shown], groups=groups.label[shown])),
        },
    }
    if position:
        board["position"] = json_safe(fit_position(pc, anchor=anchor, level=level))
    if ties:
        board["ties"] = json_safe(fit_tie_model(pc, anchor=anchor, level=level))
    return board


def comparison_summary(
    models: list[str], groups: RatedGroups, votes: np.ndarray, *, anchor_dropped: str | None = None
) -> dict:
    """What a board says about which ratings exist and compare: "groups" (1 = most battles), "not_rated"
    (models with battles but no rating yet) and "note", a plain paragraph ("" for one group, all rated)."""
    return {
        "groups": [
            {"group": group + 1, "models": int(np.sum(groups.label == group)), "battles": int(battles)}
            for group, battles in enumerate(groups.battles.tolist())
        ],
        "not_rated": [models[i] for i in np.flatnonzero((votes > 0) & ~groups.rated).tolist()],
        "note": board_note(groups, votes, anchor_dropped=anchor_dropped),
    }


def best_first(ratings: np.ndarray, shown: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Indices of the `shown` models: group by group (group 0 first), highest rating first within a group
    (ties keep model order), then the models without a rating in model order."""
    order = np.flatnonzero(shown)
    ratings = np.asarray(ratings, dtype=np.float64)
    if groups is None:
        return order[np.argsort(-ratings[order], kind="stable")]
    labels = np.asarray(groups)
    group_key = np.where(labels == NOT_RATED, labels.max(initial=0) + 1, labels)
    rating_key = np.where(np.isnan(ratings), 0.0, -ratings)
    return order[np.lexsort((rating_key[order], group_key[order]))]


def model_rows(
    pc: PairCounts,
    ratings: np.ndarray,
    ci_lower: np.ndarray,
    ci_upper: np.ndarray,
    sandwich_lower: np.ndarray,
    sandwich_upper: np.ndarray,
    *,
    data: PairData | None = None,
    groups: RatedGroups | None = None,
) -> tuple[list[dict], np.ndarray]:
    """A board's rows (its models with battles, each rated group best first and ranked by `ci_*` within it,
    then the models not rated yet) and their model indices. `data` and `groups`, if the caller has them
    already, must be those of `pc`."""
    data = data or PairData.from_counts(pc)
    groups = groups or data.rated_groups()
    votes = pc.votes_per_model()
    notes = unrated_notes(groups, data.model_a, data.model_b, data.score_a, data.totals)
    rows = ranked_rows(
        pc.models, ratings, ci_lower, ci_upper, sandwich_lower, sandwich_upper, votes, shown=votes > 0,
        groups=groups.label, notes=notes,
    )  # fmt: skip
    return rows, best_first(ratings, votes > 0, groups.label)


def _interval_note(lower: float, upper: float) -> str:
    """Why a rated model's bootstrap interval is open-ended, or ""."""
    # A resample in which the model has only wins (losses) against the others rates it at +inf (-inf).
    if lower == -np.inf and upper == np.inf:
        return "Its interval is unbounded: in enough resamples it had only wins, or only losses, to make it so."
    if upper == np.inf:
        return "Its interval is unbounded above: in enough resamples it had only wins to make it so."
    if lower == -np.inf:
        return "Its interval is unbounded below: in enough resamples it had only losses to make it so."
    return ""


def ranked_rows(
    models: list[str],
    ratings: np.ndarray,
    ci_lower: np.ndarray,
    ci_upper: np.ndarray,
    sandwich_lower: np.ndarray,
    sandwich_upper: np.ndarray,
    votes: np.ndarray,
    *,
    shown: np.ndarray,
    groups: np.ndarray | None = None,
    notes: list[str] | None = None,
) -> list[dict]:
    """Leaderboard rows of the `shown` models, best first, ranked by non-overlapping intervals.

    With group labels (`rated_groups`), each group is ranked on its own and listed in turn, and the models
    without a rating come last: rating, interval and rank None, with their votes and `notes`. Without,
    a NaN rating marks a model without a rating and the others are one group. "group" counts from 1."""
    ratings = np.asarray(ratings, dtype=np.float64)
    labels = np.where(np.isnan(ratings), NOT_RATED, 0) if groups is None else np.asarray(groups)
    order = best_first(ratings, shown, labels)
    rank_of = {}
    for group in np.unique(labels[order][labels[order] != NOT_RATED]).tolist():
        members = order[labels[order] == group]
        group_ranks = ranks(np.asarray(ci_lower)[members], np.asarray(ci_upper)[members])
        rank_of.update(zip(members.tolist(), group_ranks.tolist(), strict=True))
    rows = []
    for i in order.tolist():
        rated = labels[i] != NOT_RATED
        note = (notes[i] if notes is not None else "") or (
            _interval_note(float(ci_lower[i]), float(ci_upper[i])) if rated else "Not rated yet."
        )
        rows.append(
            {
                "name": models[i],
                "rating": float(ratings[i]) if rated else None,
                "ci_lower": _number(ci_lower[i]) if rated else None,
                "ci_upper": _number(ci_upper[i]) if rated else None,
                "sandwich_lower": _number(sandwich_lower[i]) if rated else None,
                "sandwich_upper": _number(sandwich_upper[i]) if rated else None,
                "rank": int(rank_of[i]) if rated else None,
                "votes": int(votes[i]),
                "group": int(labels[i]) + 1 if rated else None,
                "note": note,
            }
        )
    return rows


def json_safe(value):
    """Engine output as plain JSON: numpy scalars and arrays unwrapped, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _number(value)
    return value


def format_table(board: dict) -> str:
    """The board's model rows as a fixed-width text table."""
    rows = board["models"]
    width = max([len("model")] + [len(row["name"]) for row in rows])
    several = len(board.get("groups", [])) > 1 or bool(board.get("not_rated"))
    lines = [f"{'rank':>4}  {'model':<{width}}  {'rating':>7}  {'95% interval':>17}  {'votes':>8}"]
    group = None
    for row in rows:
        if several and row.get("group") != group:
            group = row.get("group")
            lines.append(f"-- group {group}" if group is not None else "-- not rated yet")
        if row["rating"] is None:
            lines.append(f"{'-':>4}  {row['name']:<{width}}  {'-':>7}  {'-':>8}-{'-':<8}  {row['votes']:>8}")
            continue
        lower = "-" if row["ci_lower"] is None else f"{row['ci_lower']:.1f}"
        upper = "-" if row["ci_upper"] is None else f"{row['ci_upper']:.1f}"
        lines.append(
            f"{row['rank']:>4}  {row['name']:<{width}}  {row['rating']:>7.1f}  {lower:>8}-{upper:<8}  {row['votes']:>8}"
        )
    if board.get("note"):
        lines.append(board["note"])
    return "\n".join(lines)
