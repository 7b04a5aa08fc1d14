"""Aggregating battles into per-pair outcome counts."""

import numpy as np

from ratings.engine.counts import (
    counts_from_clean_battles,
    counts_from_pair_counts_json,
    merge_sides,
    pair_outcome_counts,
    swap_sides,
)

MODELS = ["alpha", "beta", "gamma"]


def test_pair_outcome_counts_keeps_the_two_sides_of_a_pair_apart():
    pc = pair_outcome_counts(np.array([0, 1, 0, 0]), np.array([1, 0, 1, 2]), np.array([0, 0, 2, 3]), MODELS)
    rows = {tuple(pair): tuple(count) for pair, count in zip(pc.pairs.tolist(), pc.counts.tolist(), strict=True)}
    assert rows == {(0, 1): (1, 0, 1, 0), (1, 0): (1, 0, 0, 0), (0, 2): (0, 0, 0, 1)}
    assert pc.n_battles == 4


def test_votes_per_model_counts_battles_on_either_side():
    pc = pair_outcome_counts(np.array([0, 1, 0]), np.array([1, 2, 2]), np.array([0, 1, 2]), MODELS)
    assert pc.votes_per_model().tolist() == [2, 2, 2]


def test_merge_sides_folds_reversed_rows_and_swaps_their_wins():
    pc = pair_outcome_counts(np.array([0, 1, 1]), np.array([1, 0, 0]), np.array([0, 0, 3]), MODELS)
    merged = merge_sides(pc)
    assert merged.pairs.tolist() == [[0, 1]]
    assert merged.counts.tolist() == [[1, 1, 0, 1]]


def test_swapping_sides_twice_gives_back_the_same_counts():
    pc = pair_outcome_counts(np.array([0, 1, 2]), np.array([1, 2, 0]), np.array([0, 1, 3]), MODELS)
    twice = swap_sides(swap_sides(pc))
    assert np.array_equal(twice.pairs, pc.pairs) and np.array_equal(twice.counts, pc.counts)


def test_clean_battle_records_are_read_with_fastchat_winner_strings():
    records = [
        {"model_a": "x", "model_b": "y", "winner": "model_a"},
        {"model_a": "y", "model_b": "x", "winner": "model_b"},
        {"model_a": "x", "model_b": "y", "winner": "tie (bothbad)"},
        {"model_a": "x", "model_b": "y", "winner": "tie"},
    ]
    pc = counts_from_clean_battles(records)
    assert pc.models == ["x", "y"]
    merged = merge_sides(pc)
    assert merged.counts.tolist() == [[2, 0, 1, 1]]


def test_pair_counts_json_treats_the_first_index_as_side_a():
    pc = counts_from_pair_counts_json({"models": ["m0", "m1"], "X": [[1, 0]], "Y": [[5, 2, 1, 0]]})
    assert pc.pairs.tolist() == [[1, 0]]
    assert pc.counts.tolist() == [[5, 2, 1, 0]]


def test_real_pair_counts_hold_the_documented_totals(real_counts):
    assert real_counts.n_battles == 1_670_250
    assert len(real_counts.models) == 129
    assert real_counts.counts.sum(axis=0).tolist() == [595_570, 498_305, 281_121, 295_254]
