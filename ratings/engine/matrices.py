"""Model-by-model figures for the leaderboard: battle counts, observed win fractions, head-to-head records."""

from __future__ import annotations

import numpy as np

from ratings.engine.bradley_terry import predicted_win_matrix
from ratings.engine.counts import A_WINS, B_WINS, PairCounts, merge_sides


def battle_count_matrix(pc: PairCounts) -> np.ndarray:
    """Battles between each pair of models, either side (symmetric, int64)."""
    n = pc.n_models
    totals = pc.counts.sum(axis=1)
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (pc.pairs[:, 0], pc.pairs[:, 1]), totals)
    return matrix + matrix.T


def win_fraction_matrix(pc: PairCounts) -> np.ndarray:
    """Share of decisive battles the row model won against the column model (ties excluded; NaN if none)."""
    n = pc.n_models
    wins = np.zeros((n, n), dtype=np.float64)
    np.add.at(wins, (pc.pairs[:, 0], pc.pairs[:, 1]), pc.counts[:, A_WINS])
    np.add.at(wins, (pc.pairs[:, 1], pc.pairs[:, 0]), pc.counts[:, B_WINS])
    decisive = wins + wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(decisive > 0, wins / decisive, np.nan)


def head_to_head(pc: PairCounts, name: str, board_rows: list[dict]) -> list[dict]:
    """`name`'s record against each opponent in `pc` (either side): battles, wins, losses, ties, both-bad, the
    win rate among decisive battles, and the win probability the board's rows (name, rating, group) predict
    (None for a model not rated yet, or between groups that never met); most battles first."""
    pc = merge_sides(pc)
    if name not in pc.models:
        return []
    me = pc.models.index(name)
    observed = win_fraction_matrix(pc)[me]
    board = [row["name"] for row in board_rows]
    ratings = np.array([np.nan if row["rating"] is None else row["rating"] for row in board_rows], dtype=np.float64)
    # Rows stored before groups were kept have no "group": they are one group.
    groups = np.array([-1 if row["rating"] is None else row.get("group", 1) for row in board_rows])
    predicted = predicted_win_matrix(ratings, groups=groups)
    records = []
    for (a, b), (a_wins, b_wins, ties, both_bad) in zip(pc.pairs.tolist(), pc.counts.tolist(), strict=True):
        if me not in (a, b):
            continue
        # merge_sides keeps one row per unordered pair: the model's wins are the column of its side.
        opponent, wins, losses = (b, a_wins, b_wins) if a == me else (a, b_wins, a_wins)
        other = pc.models[opponent]
        chance = predicted[board.index(name), board.index(other)] if name in board and other in board else np.nan
        records.append({
            "opponent": other, "battles": a_wins + b_wins + ties + both_bad, "wins": wins, "losses": losses,
            "ties": ties, "both_bad": both_bad, "win_rate": _number(observed[opponent]), "predicted": _number(chance),
        })  # fmt: skip
    return sorted(records, key=lambda r: (-r["battles"], r["opponent"]))


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
