"""Battle-count and win-fraction matrices, and head-to-head records (the model page's table)."""

import numpy as np
import pytest

from ratings.engine.counts import PairCounts, pair_outcome_counts
from ratings.engine.matrices import battle_count_matrix, head_to_head, win_fraction_matrix


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


def test_a_models_record_counts_both_sides_and_predicts_only_between_rated_models_of_one_group():
    pc = PairCounts(
        ["a", "b", "c"],
        np.array([[0, 1], [1, 0], [0, 2]]),
        np.array([[3, 1, 1, 0], [2, 2, 0, 1], [0, 4, 0, 0]]),  # a-b with a on the left, then on the right
    )
    rows = [{"name": "b", "rating": 1100.0, "group": 1}, {"name": "a", "rating": 1000.0, "group": 1},
            {"name": "c", "rating": None}]  # fmt: skip
    against_b, against_c = head_to_head(pc, "a", rows)
    assert against_b == {
        "opponent": "b", "battles": 10, "wins": 5, "losses": 3, "ties": 1, "both_bad": 1,
        "win_rate": pytest.approx(5 / 8), "predicted": pytest.approx(1 / (1 + 10 ** (100 / 400))),
    }  # fmt: skip
    assert against_c["battles"] == 4 and against_c["win_rate"] == 0.0 and against_c["predicted"] is None
    [against_a] = head_to_head(pc, "b", rows)  # the second model of its pair: its wins are the other column
    assert (against_a["wins"], against_a["losses"], against_a["win_rate"]) == (3, 5, pytest.approx(3 / 8))
    assert against_a["predicted"] == pytest.approx(1 / (1 + 10 ** (-100 / 400)))
    assert head_to_head(pc, "nobody", rows) == []
