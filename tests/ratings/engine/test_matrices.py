"""Battle-count and win-fraction matrices."""

import numpy as np

from ratings.engine.counts import pair_outcome_counts
from ratings.engine.matrices import battle_count_matrix, win_fraction_matrix


def test_battle_counts_are_symmetric_and_include_ties():
    pc = pair_outcome_counts(np.array([0, 1, 0]), np.array([1, 0, 2]), np.array([0, 2, 3]), ["a", "b", "c"])
    matrix = battle_count_matrix(pc)
    assert matrix.tolist() == [[0, 2, 1], [2, 0, 0], [1, 0, 0]]


def test_win_fractions_ignore_ties_and_are_nan_without_decisive_battles():
    pc = pair_outcome_counts(
        np.array([0, 0, 1, 0, 0]), np.array([1, 1, 0, 1, 2]), np.array([0, 0, 0, 2, 2]), ["a", "b", "c"]
    )
    fractions = win_fraction_matrix(pc)
    assert fractions[0, 1] == 2 / 3 and fractions[1, 0] == 1 / 3
    assert np.isnan(fractions[0, 2]) and np.isnan(fractions[2, 0])
