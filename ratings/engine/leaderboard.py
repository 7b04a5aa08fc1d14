"""The leaderboard as one JSON-serialisable dict, and a plain-text table of it."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ratings.engine.bradley_terry import (
    bootstrap_intervals,
    fit_ratings,
    predicted_win_matrix,
    ranks,
    sandwich_intervals,
)
from ratings.engine.counts import PairCounts
from ratings.engine.matrices import battle_count_matrix, win_fraction_matrix
from ratings.engine.position import fit_position
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

    Models without battles are left out of the board and the matrices. position=True adds the left-seat
    term (meaningful only when sides were kept); ties=True adds the two-tie Davidson model's summary.
    """
    ratings = fit_ratings(pc, anchor=anchor)
    sandwich_lower, sandwich_upper = sandwich_intervals(pc, ratings, level=level, anchor=anchor)
    if bootstrap and rounds > 0:
        ci_lower, ci_upper, _ = bootstrap_intervals(
            pc, rounds=rounds, seed=seed, level=level, anchor=anchor, progress=progress
        )
        interval_method = "bootstrap"
    else:
        ci_lower, ci_upper = sandwich_lower, sandwich_upper
        interval_method = "sandwich"
    votes = pc.votes_per_model()
    rows = ranked_rows(pc.models, ratings, ci_lower, ci_upper, sandwich_lower, sandwich_upper, votes, shown=votes > 0)
    shown = best_first(ratings, votes > 0)
    grid = np.ix_(shown, shown)
    board = {
        "method": "bradley-terry",
        "params": {
            "scale": 400.0,
            "base": 10.0,
            "init_rating": 1000.0,
            "anchor": None if anchor is None else {"model": anchor[0], "rating": float(anchor[1])},
            "intervals": interval_method,
            "level": level,
            "rounds": rounds if interval_method == "bootstrap" else 0,
            "seed": seed,
            "ties": "half a win each (tie and both-bad)",
            "n_battles": pc.n_battles,
        },
        "models": rows,
        "matrices": {
            "models": [pc.models[i] for i in shown.tolist()],
            "battles": battle_count_matrix(pc)[grid].tolist(),
            "win_fraction": _matrix(win_fraction_matrix(pc)[grid]),
            "predicted": _matrix(predicted_win_matrix(ratings[shown])),
        },
    }
    if position:
        board["position"] = json_safe(fit_position(pc, anchor=anchor, level=level))
    if ties:
        board["ties"] = json_safe(fit_tie_model(pc, anchor=anchor, level=level))
    return board


def best_first(ratings: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """Indices of the `shown` models, highest rating first (ties keep model order)."""
    order = np.flatnonzero(shown)
    return order[np.argsort(-np.asarray(ratings)[order], kind="stable")]


def model_rows(
    pc: PairCounts,
    ratings: np.ndarray,
    ci_lower: np.ndarray,
    ci_upper: np.ndarray,
    sandwich_lower: np.ndarray,
    sandwich_upper: np.ndarray,
) -> tuple[list[dict], np.ndarray]:
    """A board's rows (its models with battles, best first, ranked by `ci_*`) and their model indices."""
    votes = pc.votes_per_model()
    rows = ranked_rows(pc.models, ratings, ci_lower, ci_upper, sandwich_lower, sandwich_upper, votes, shown=votes > 0)
    return rows, best_first(ratings, votes > 0)


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
) -> list[dict]:
    """Leaderboard rows of the `shown` models, best first, ranked by non-overlapping intervals."""
    ratings = np.asarray(ratings, dtype=np.float64)
    order = best_first(ratings, shown)
    model_ranks = ranks(np.asarray(ci_lower)[order], np.asarray(ci_upper)[order])
    return [
        {
            "name": models[i],
            "rating": float(ratings[i]),
            "ci_lower": _number(ci_lower[i]),
            "ci_upper": _number(ci_upper[i]),
            "sandwich_lower": _number(sandwich_lower[i]),
            "sandwich_upper": _number(sandwich_upper[i]),
            "rank": int(rank),
            "votes": int(votes[i]),
        }
        for i, rank in zip(order.tolist(), model_ranks.tolist(), strict=True)
    ]


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
    lines = [f"{'rank':>4}  {'model':<{width}}  {'rating':>7}  {'95% interval':>17}  {'votes':>8}"]
    for row in rows:
        lower = "-" if row["ci_lower"] is None else f"{row['ci_lower']:.1f}"
        upper = "-" if row["ci_upper"] is None else f"{row['ci_upper']:.1f}"
        lines.append(
            f"{row['rank']:>4}  {row['name']:<{width}}  {row['rating']:>7.1f}  {lower:>8}-{upper:<8}  {row['votes']:>8}"
        )
    return "\n".join(lines)
