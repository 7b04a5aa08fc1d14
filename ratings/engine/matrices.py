"""Model-by-model matrices for the leaderboard: battle counts and observed win fractions."""

from __future__ import annotations

import numpy as np

from ratings.engine.counts import A_WINS, B_WINS, PairCounts


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
