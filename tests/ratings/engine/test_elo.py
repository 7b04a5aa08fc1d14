"""Online Elo updates, checked by hand."""

import numpy as np
import pytest

from ratings.engine.elo import elo_update, online_elo


def test_equal_models_move_by_half_k_when_a_wins():
    assert elo_update(1000.0, 1000.0, 0, k=4.0) == pytest.approx((1002.0, 998.0))


def test_a_tie_between_equal_models_changes_nothing():
    assert elo_update(1000.0, 1000.0, 2) == pytest.approx((1000.0, 1000.0))
    assert elo_update(1000.0, 1000.0, 3) == pytest.approx((1000.0, 1000.0))


def test_an_upset_moves_ratings_by_k_times_the_favourites_expected_score():
    # 1200 vs 1000: the favourite expects 1 / (1 + 10^(-0.5)) = 0.75975 of a win.
    new_a, new_b = elo_update(1200.0, 1000.0, 1, k=32.0)
    assert new_a == pytest.approx(1200.0 - 32.0 * 0.7597469, abs=1e-4)
    assert new_b == pytest.approx(1000.0 + 32.0 * 0.7597469, abs=1e-4)


def test_online_elo_replays_the_single_updates_in_order():
    model_a, model_b, outcome = np.array([0, 1, 2, 0]), np.array([1, 2, 0, 2]), np.array([0, 1, 2, 3])
    expected = [1000.0, 1000.0, 1000.0]
    for a, b, o in zip(model_a, model_b, outcome, strict=True):
        expected[a], expected[b] = elo_update(expected[a], expected[b], o, k=4.0)
    assert online_elo(model_a, model_b, outcome, 3, k=4.0).tolist() == pytest.approx(expected)
