"""The two-tie Davidson model recovers planted tie strengths and both-bad propensities."""

import numpy as np
import pytest

from ratings.engine import ties
from ratings.engine.bradley_terry import fit_ratings
from ratings.engine.counts import BOTH_BAD, pair_outcome_counts
from ratings.engine.simulate import simulate_tie_model
from tests.ratings.engine.conftest import ANCHOR

THETA = np.array([0.0, 0.4, -0.3, 0.7, 0.1, -0.6])
PHI = np.array([0.5, -0.3, 0.0, 0.3, -0.6, 0.1])
TAU, KAPPA = np.log(0.5), np.log(0.3)
NAMES = [f"m{i}" for i in range(6)]


def planted_arena(n_battles: int, seed: int):
    """Counts simulated from the planted parameters."""
    model_a, model_b, outcome = simulate_tie_model(THETA, PHI, TAU, KAPPA, n_battles, seed=seed)
    return pair_outcome_counts(model_a, model_b, outcome, NAMES)


def test_planted_strengths_tie_parameters_and_propensities_are_recovered():
    params, *_ = ties.fit_tie_params(planted_arena(100_000, seed=0))
    n = len(NAMES)
    assert np.abs(params[:n] - (THETA - THETA.mean())).max() < 0.04
    assert np.abs(params[n : 2 * n] - (PHI - PHI.mean())).max() < 0.06
    # kappa absorbs twice the mean propensity when phi is re-centred.
    assert params[2 * n] == pytest.approx(TAU, abs=0.03)
    assert params[2 * n + 1] == pytest.approx(KAPPA + 2 * PHI.mean(), abs=0.04)


def test_tie_and_both_bad_strength_intervals_cover_the_planted_values():
    result = ties.fit_tie_model(planted_arena(50_000, seed=1))
    assert result["tie_strength"]["ci_lower"] < 0.5 < result["tie_strength"]["ci_upper"]
    both_bad_truth = np.exp(KAPPA + 2 * PHI.mean())
    assert result["both_bad_strength"]["ci_lower"] < both_bad_truth < result["both_bad_strength"]["ci_upper"]


def test_adjusted_both_bad_rate_intervals_cover_the_true_rates_about_95_percent_of_the_time():
    truth_params = np.concatenate([THETA - THETA.mean(), PHI - PHI.mean(), [TAU, KAPPA + 2 * PHI.mean()]])
    true_rates, _ = ties.adjusted_both_bad_rates(truth_params, np.ones(len(NAMES), dtype=bool))
    covered = []
    for arena in range(30):
        result = ties.fit_tie_model(planted_arena(3000, seed=10 + arena))
        rows = {row["name"]: row for row in result["models"]}
        for i, name in enumerate(NAMES):
            covered.append(rows[name]["both_bad_rate_lower"] <= true_rates[i] <= rows[name]["both_bad_rate_upper"])
    assert 0.9 <= np.mean(covered) <= 0.99


def test_a_model_that_draws_more_bad_battles_gets_a_higher_adjusted_rate():
    result = ties.fit_tie_model(planted_arena(50_000, seed=2))
    rates = {row["name"]: row["both_bad_rate"] for row in result["models"]}
    assert rates["m0"] > rates["m2"] > rates["m4"]


def test_davidson_ratings_order_the_real_board_like_the_half_win_fit(real_counts):
    from scipy.stats import spearmanr

    result = ties.fit_tie_model(real_counts, anchor=ANCHOR)
    davidson = {row["name"]: row["rating"] for row in result["models"]}
    half_win = dict(zip(real_counts.models, fit_ratings(real_counts, anchor=ANCHOR), strict=True))
    names = list(davidson)
    assert spearmanr([davidson[n] for n in names], [half_win[n] for n in names]).statistic > 0.99
    assert davidson[ANCHOR[0]] == pytest.approx(ANCHOR[1])
    assert 0.3 < result["tie_strength"]["value"] < 1.0


def test_a_model_with_only_wins_gets_no_davidson_row_and_leaves_the_others_as_without_it():
    from ratings.engine.counts import PairCounts

    pc = planted_arena(20_000, seed=4)
    unbeaten = PairCounts(NAMES + ["new"], np.vstack([pc.pairs, [[6, 0], [2, 6]]]),
                          np.vstack([pc.counts, [[4, 0, 0, 0], [0, 3, 0, 0]]]))  # fmt: skip
    fit = ties.fit_tie_model(unbeaten)
    alone = ties.fit_tie_model(PairCounts(NAMES + ["new"], pc.pairs, pc.counts))
    assert [row["name"] for row in fit["models"]] == [row["name"] for row in alone["models"]]
    for row, expected in zip(fit["models"], alone["models"], strict=True):
        assert row["rating"] == pytest.approx(expected["rating"], abs=1e-4)
        assert row["both_bad_rate"] == pytest.approx(expected["both_bad_rate"], abs=1e-6)
    assert fit["tie_strength"]["value"] == pytest.approx(alone["tie_strength"]["value"], rel=1e-6)


def test_a_model_without_a_both_bad_vote_gets_a_finite_propensity_and_a_rate_shrunk_from_the_fields():
    model_a, model_b, outcome = simulate_tie_model(np.r_[THETA, 0.2], np.r_[PHI, 0.0], TAU, KAPPA, 30_000, seed=5)
    newcomer = (model_a == 6) | (model_b == 6)
    # Its first 100 battles with the both-bad ones left out: about 90 votes, none of them both bad.
    keep = ~newcomer | ((np.cumsum(newcomer) <= 100) & (outcome != BOTH_BAD))
    pc = pair_outcome_counts(model_a[keep], model_b[keep], outcome[keep], NAMES + ["new"])
    rows = {row["name"]: row for row in ties.fit_tie_model(pc)["models"]}
    new = rows["new"]
    field = np.median([rows[name]["both_bad_rate"] for name in NAMES])
    assert new["observed_both_bad_rate"] == 0.0 and 80 < new["votes"] <= 100
    # Without the propensity prior: a propensity near -16, a rate of ~1e-9 and an interval of zero width.
    assert -3.0 < new["both_bad_propensity"] < -0.5
    assert field / 10 < new["both_bad_rate"] < field / 2
    # ~90 votes without one cannot rule out a rate of 3 / n (the rule of three's upper 95% bound).
    assert 0.0 < new["both_bad_rate_lower"] < new["both_bad_rate"] < 3 / new["votes"] < new["both_bad_rate_upper"]


def test_the_propensity_prior_moves_no_rate_or_rating_of_the_real_board_noticeably(real_counts, monkeypatch):
    # Every real model has 185 or more both-bad votes, so the data outweigh the prior many times over.
    with_prior = ties.fit_tie_model(real_counts, anchor=ANCHOR)
    monkeypatch.setattr(ties, "PROPENSITY_PRIOR_SD", np.inf)
    without = ties.fit_tie_model(real_counts, anchor=ANCHOR)
    for row, plain in zip(with_prior["models"], without["models"], strict=True):
        assert row["name"] == plain["name"]
        assert row["both_bad_rate"] == pytest.approx(plain["both_bad_rate"], abs=5e-4)
        assert row["both_bad_propensity"] == pytest.approx(plain["both_bad_propensity"], abs=0.005)
        assert row["rating"] == pytest.approx(plain["rating"], abs=0.1)
    assert with_prior["both_bad_strength"]["value"] == pytest.approx(without["both_bad_strength"]["value"], rel=1e-3)


def test_a_strength_whose_outcome_has_not_happened_yet_gets_an_open_interval_not_a_certain_one():
    """With no tie and no both-bad vote yet the sandwich alone gave each strength ~1e-8 within [7e-9, 1.3e-8]:
    certainty, where 30 battles allow a tie rate of several per cent. The upper end is where seeing none has
    chance 2.5%."""
    from ratings.engine.counts import PairCounts

    pc = PairCounts(
        ["a", "b", "c"], np.array([[0, 1], [1, 2], [0, 2]]), np.array([[10, 5, 0, 0], [7, 6, 0, 0], [9, 3, 0, 0]])
    )
    fit = ties.fit_tie_model(pc)
    for name in ("tie_strength", "both_bad_strength"):
        strength = fit[name]
        assert strength["value"] < 1e-6 and strength["ci_lower"] == 0.0 and 0.1 < strength["ci_upper"] < 1.0, name
    # At that upper end no tie in the 30 battles has chance 2.5%, exactly.
    params, counts, index, _ = ties.fit_tie_params(pc)
    params[6] = np.log(fit["tie_strength"]["ci_upper"])
    chance_of_none = np.prod((1.0 - ties._probabilities(params, index)[:, 2]) ** counts.sum(axis=1))
    assert chance_of_none == pytest.approx(0.025, rel=1e-6)
    # Three battles: the expected count (a Poisson bound) could never reach 3.7 there and gave 1.6e48; the
    # chance of none is exact.
    few = PairCounts(["a", "b"], np.array([[0, 1]]), np.array([[2, 1, 0, 0]]))
    upper = ties.fit_tie_model(few)["tie_strength"]["ci_upper"]
    params, counts, index, _ = ties.fit_tie_params(few)
    params[4] = np.log(upper)  # two models: the tie strength follows their ratings and propensities
    assert np.prod((1.0 - ties._probabilities(params, index)[:, 2]) ** counts.sum(axis=1)) == pytest.approx(0.025)
