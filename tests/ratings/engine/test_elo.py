"""Online Elo updates, checked by hand."""

import pytest

from ratings.engine.elo import elo_update


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
