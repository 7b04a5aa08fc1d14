"""The leaderboard dict and its text table."""

import json

import numpy as np
import pytest

from ratings.engine.counts import PairCounts, pair_outcome_counts
from ratings.engine.leaderboard import compute_leaderboard, format_table
from ratings.engine.simulate import simulate_battles
from tests.ratings.engine.conftest import ANCHOR


def small_arena() -> PairCounts:
    """Five simulated models plus one registered model without battles."""
    model_a, model_b, outcome = simulate_battles(np.array([1000.0, 1100.0, 900.0, 1050.0, 980.0]), 3000, seed=0)
    names = ["m0", "m1", "m2", "m3", "m4", "new"]
    return pair_outcome_counts(model_a, model_b, outcome, names)


def test_default_board_is_strict_json_sorted_by_rating_and_uses_sandwich_intervals():
    board = compute_leaderboard(small_arena(), bootstrap=False)
    json.dumps(board, allow_nan=False)
    rows = board["models"]
    assert [row["rating"] for row in rows] == sorted((row["rating"] for row in rows), reverse=True)
    assert board["params"]["intervals"] == "sandwich"
    assert all(row["ci_lower"] == row["sandwich_lower"] for row in rows)
    assert rows[0]["name"] == "m1" and rows[0]["rank"] == 1


def test_models_without_battles_are_left_off_the_board_and_matrices():
    board = compute_leaderboard(small_arena(), bootstrap=False)
    assert "new" not in [row["name"] for row in board["models"]]
    assert len(board["matrices"]["battles"]) == len(board["matrices"]["models"]) == 5


def test_bootstrap_board_reports_bootstrap_intervals_and_votes():
    pc = small_arena()
    board = compute_leaderboard(pc, rounds=200, seed=1)
    assert board["params"]["intervals"] == "bootstrap" and board["params"]["rounds"] == 200
    assert any(row["ci_lower"] != row["sandwich_lower"] for row in board["models"])
    assert sum(row["votes"] for row in board["models"]) == 2 * pc.n_battles


def test_matrices_put_none_where_two_models_never_decided_a_battle():
    pc = pair_outcome_counts(np.array([0, 1]), np.array([1, 2]), np.array([0, 2]), ["a", "b", "c"])
    board = compute_leaderboard(pc, bootstrap=False)
    names = board["matrices"]["models"]
    fractions = board["matrices"]["win_fraction"]
    assert fractions[names.index("b")][names.index("c")] is None
    assert fractions[names.index("a")][names.index("b")] == 1.0


def test_real_default_board_prints_a_table_with_the_anchor_at_its_rating(real_counts):
    board = compute_leaderboard(real_counts, bootstrap=False, anchor=ANCHOR)
    table = format_table(board)
    anchor_row = next(row for row in board["models"] if row["name"] == ANCHOR[0])
    assert anchor_row["rating"] == ANCHOR[1]
    assert table.splitlines()[1].split()[1] == "chatgpt-4o-latest"
    assert len(table.splitlines()) == 1 + 129


def test_position_and_tie_summaries_are_added_on_request_and_stay_strict_json():
    board = compute_leaderboard(small_arena(), bootstrap=False, position=True, ties=True)
    json.dumps(board, allow_nan=False)
    assert board["position"]["ci_lower"] < board["position"]["elo_points"] < board["position"]["ci_upper"]
    assert board["ties"]["method"] == "davidson-two-ties"
    assert {row["name"] for row in board["ties"]["models"]} == {row["name"] for row in board["models"]}
    assert "position" not in compute_leaderboard(small_arena(), bootstrap=False)


def five_models_and(extra: dict[tuple[int, int], list[int]], names: list[str]) -> PairCounts:
    """The five simulated models of `small_arena` (no unplayed one) plus rows {(left, right): counts}."""
    base = small_arena()
    played = base.pairs.max() + 1
    pairs = np.vstack([base.pairs, np.array(list(extra), dtype=np.int64).reshape(-1, 2)])
    counts = np.vstack([base.counts, np.array(list(extra.values()), dtype=np.int64).reshape(-1, 4)])
    return PairCounts(base.models[:played] + names, pairs, counts)


def test_a_new_model_with_only_wins_is_shown_not_rated_and_the_board_is_as_without_it():
    pc = five_models_and({(5, 0): [3, 0, 0, 0], (1, 5): [0, 5, 0, 0]}, ["new"])
    board = compute_leaderboard(pc, bootstrap=False)
    json.dumps(board, allow_nan=False)
    without = compute_leaderboard(PairCounts(pc.models, pc.pairs[:-2], pc.counts[:-2]), bootstrap=False)
    rows = {row["name"]: row for row in board["models"]}
    for row in without["models"]:
        assert rows[row["name"]]["rank"] == row["rank"]
        for key in ("rating", "ci_lower", "ci_upper"):
            assert rows[row["name"]][key] == pytest.approx(row[key], abs=1e-6)
    new = board["models"][-1]
    assert new["name"] == "new" and new["votes"] == 8
    assert new["rating"] is None and new["rank"] is None and new["ci_lower"] is None and new["group"] is None
    assert "only wins so far (8 battles)" in new["note"]
    assert board["not_rated"] == ["new"] and "1 model is not rated yet" in board["note"]
    names = board["matrices"]["models"]
    assert names[-1] == "new" and all(p is None for p in board["matrices"]["predicted"][-1])
    assert board["matrices"]["battles"][-1][names.index("m1")] == 5


def test_groups_that_never_met_are_ranked_apart_and_never_compared():
    pc = five_models_and({(5, 6): [30, 20, 5, 0], (6, 5): [22, 21, 2, 0]}, ["live-a", "live-b"])
    board = compute_leaderboard(pc, rounds=200, seed=0)
    assert [group["group"] for group in board["groups"]] == [1, 2]
    assert [row["group"] for row in board["models"]] == [1] * 5 + [2, 2]
    live = board["models"][5:]
    assert [row["name"] for row in live] == ["live-a", "live-b"]
    assert [row["rank"] for row in live] == [1, 1]  # ranked against each other only
    assert np.mean([row["rating"] for row in live]) == pytest.approx(1000.0)
    assert "2 groups that have never met" in board["note"]
    names = board["matrices"]["models"]
    predicted = board["matrices"]["predicted"]
    assert predicted[names.index("live-a")][names.index("m1")] is None
    assert predicted[names.index("live-a")][names.index("live-b")] is not None


def test_text_table_lists_each_group_and_the_models_not_rated_yet():
    pc = five_models_and({(5, 6): [3, 2, 0, 0], (7, 0): [2, 0, 0, 0]}, ["live-a", "live-b", "new"])
    lines = format_table(compute_leaderboard(pc, bootstrap=False)).splitlines()
    assert "-- group 1" in lines and "-- group 2" in lines and "-- not rated yet" in lines
    assert lines[lines.index("-- not rated yet") + 1].split()[:3] == ["-", "new", "-"]
