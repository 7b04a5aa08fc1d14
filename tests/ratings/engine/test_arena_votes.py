"""Boards from single arena votes: the style-controlled board's rows."""

import numpy as np

from ratings.engine.arena_votes import STYLE_COUNTS, ArenaVotes, style_board
from ratings.engine.simulate import simulate_battles


def test_style_board_ranks_groups_that_never_met_apart_and_leaves_a_one_sided_model_unrated():
    first = simulate_battles(np.array([1100.0, 1000.0, 900.0]), 600, seed=0)
    second = simulate_battles(np.array([1000.0, 1000.0]), 200, seed=1)
    # Models 0-2 and 3-4 never meet; model 5 beat model 0 twice and nothing else.
    model_a = np.r_[first[0], second[0] + 3, [5, 5]]
    model_b = np.r_[first[1], second[1] + 3, [0, 0]]
    outcome = np.r_[first[2], second[2], [0, 0]]
    rng = np.random.default_rng(2)
    style = {side: {key: rng.integers(0, 50, model_a.size).astype(float) for key in STYLE_COUNTS} for side in "ab"}
    votes = ArenaVotes([f"m{i}" for i in range(6)], model_a, model_b, outcome, style["a"], style["b"])
    board = style_board(votes, min_votes=10, rounds=20)
    rows = {row["name"]: row for row in board["models"]}
    assert [rows[f"m{i}"]["group"] for i in range(5)] == [1, 1, 1, 2, 2]
    assert rows["m3"]["rank"] == 1 and rows["m4"]["rank"] == 1  # ranked against each other only
    assert rows["m5"]["rating"] is None and rows["m5"]["rank"] is None and rows["m5"]["votes"] == 2
