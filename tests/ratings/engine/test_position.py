"""The left-seat term recovers a planted advantage and vanishes without one."""

import numpy as np

from ratings.engine.counts import pair_outcome_counts
from ratings.engine.position import fit_position
from ratings.engine.simulate import simulate_left_advantage

RATINGS = np.array([1000.0, 1060.0, 940.0, 1120.0, 990.0])
NAMES = [f"m{i}" for i in range(5)]


def test_a_planted_left_advantage_is_recovered_within_its_interval():
    model_a, model_b, outcome = simulate_left_advantage(RATINGS, 25.0, 40_000, seed=0)
    result = fit_position(pair_outcome_counts(model_a, model_b, outcome, NAMES))
    assert result["ci_lower"] < 25.0 < result["ci_upper"]
    assert result["ci_upper"] - result["ci_lower"] < 12.0
    ratings = np.array([result["ratings"][name] for name in NAMES])
    assert np.abs(ratings - (RATINGS - RATINGS.mean() + 1000.0)).max() < 15.0


def test_no_left_advantage_gives_an_interval_around_zero():
    model_a, model_b, outcome = simulate_left_advantage(RATINGS, 0.0, 40_000, seed=1)
    result = fit_position(pair_outcome_counts(model_a, model_b, outcome, NAMES))
    assert result["ci_lower"] < 0.0 < result["ci_upper"]


def test_left_advantage_interval_covers_the_truth_about_95_percent_of_the_time():
    covered = []
    for arena in range(80):
        model_a, model_b, outcome = simulate_left_advantage(RATINGS, 15.0, 1500, seed=100 + arena)
        result = fit_position(pair_outcome_counts(model_a, model_b, outcome, NAMES))
        covered.append(result["ci_lower"] <= 15.0 <= result["ci_upper"])
    assert 0.88 <= np.mean(covered) <= 1.0
