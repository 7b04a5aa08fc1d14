"""Pair-sampling policy: a proper distribution, exploration floor, boosts, determinism, a plan that earns its votes."""

import numpy as np
import pytest

from ratings.engine import bradley_terry as bt
from ratings.engine.counts import pair_outcome_counts
from ratings.engine.sampling import (
    ContrastPlan,
    describe_policy,
    fisher_covariance,
    pair_policy,
    policy_summary,
    working_covariance,
)
from ratings.engine.simulate import simulate_battles

# Two leaders 4 points apart, then a field spread far below them.
TOY_RATINGS = np.array([1200.0, 1196.0, 1100.0, 1040.0, 980.0, 920.0, 860.0, 800.0])


def pair_probabilities(ratings: np.ndarray, covariance: np.ndarray, **settings) -> np.ndarray:
    """The (n, n) probability matrix of `pair_policy` (the arena draws from it: inference.services)."""
    return pair_policy(ratings, covariance, **settings).probabilities


def toy_fit(n_battles: int = 40_000, seed: int = 0, ratings: np.ndarray = TOY_RATINGS):
    """A uniformly sampled toy arena: fitted Elo ratings, Fisher covariance, votes per model."""
    model_a, model_b, outcome = simulate_battles(ratings, n_battles, seed=seed)
    pc = pair_outcome_counts(model_a, model_b, outcome, [f"m{i}" for i in range(ratings.size)])
    data = bt.PairData.from_counts(pc)
    theta = bt.fit_theta(data)
    return theta / bt.elo_units() + 1000.0, fisher_covariance(data, theta), pc.votes_per_model()


def settings(n: int, **overrides) -> dict:
    """Per-model settings with every model available, weight 1 and no boost, then `overrides`."""
    return {
        "admin_weights": np.ones(n),
        "boost_targets": np.zeros(n),
        "available": np.ones(n, dtype=bool),
        **overrides,
    }


def model_share(probabilities: np.ndarray, model: int) -> float:
    """Probability that a draw includes `model`."""
    return float(probabilities[model].sum())


def upper(matrix: np.ndarray) -> np.ndarray:
    """The strict upper triangle as a flat array."""
    return matrix[np.triu_indices(matrix.shape[0], k=1)]


def test_probabilities_are_symmetric_with_zero_diagonal_and_upper_triangle_summing_to_one():
    ratings, covariance, votes = toy_fit()
    probabilities = pair_probabilities(ratings, covariance, votes=votes, **settings(ratings.size))
    assert np.array_equal(probabilities, probabilities.T)
    assert np.all(np.diag(probabilities) == 0.0)
    assert np.all(probabilities >= 0.0)
    assert upper(probabilities).sum() == pytest.approx(1.0, abs=1e-12)


def test_unavailable_models_get_exactly_zero_probability_and_every_other_model_some():
    ratings, covariance, votes = toy_fit()
    available = np.ones(ratings.size, dtype=bool)
    available[[1, 5]] = False  # one of the two close leaders, and one of the field
    probabilities = pair_probabilities(ratings, covariance, votes=votes, **settings(ratings.size, available=available))
    assert np.all(probabilities[[1, 5]] == 0.0) and np.all(probabilities[:, [1, 5]] == 0.0)
    share = probabilities.sum(axis=0) + probabilities.sum(axis=1)
    assert set(np.flatnonzero(share > 0).tolist()) == set(range(ratings.size)) - {1, 5}


def test_models_with_zero_admin_weight_are_never_drawn_and_a_larger_weight_draws_more():
    ratings, covariance, votes = toy_fit()
    weights = np.ones(ratings.size)
    weights[3] = 0.0
    targets = np.zeros(ratings.size)
    targets[3] = votes[3] + 1000  # even under a boost target, a paused model is not drawn
    paused = pair_policy(
        ratings, covariance, votes=votes, **settings(ratings.size, admin_weights=weights, boost_targets=targets)
    )
    assert model_share(paused.probabilities, 3) == 0.0
    assert paused.boosted.size == 0
    plain = pair_policy(ratings, covariance, votes=votes, **settings(ratings.size))
    weights = np.ones(ratings.size)
    weights[6] = 5.0
    favoured = pair_policy(ratings, covariance, votes=votes, **settings(ratings.size, admin_weights=weights))
    # Exploration in proportion to weight products: model 6's 7 pairs weigh 5 each, the other 21 pairs 1.
    assert model_share(favoured.exploration, 6) == pytest.approx(35 / 56)
    assert model_share(favoured.probabilities, 6) > 2 * model_share(plain.probabilities, 6)


def test_every_available_pair_keeps_at_least_the_exploration_floor():
    ratings, covariance, votes = toy_fit()
    available = np.ones(ratings.size, dtype=bool)
    available[2] = False
    policy = pair_policy(
        ratings, covariance, votes=votes, exploration=0.2, **settings(ratings.size, available=available)
    )
    eligible_pairs = 7 * 6 / 2
    floor = 0.2 / eligible_pairs
    probabilities = policy.probabilities
    rows, cols = np.triu_indices(ratings.size, k=1)
    on_available = available[rows] & available[cols]
    assert np.all(probabilities[rows[on_available], cols[on_available]] >= floor * (1 - 1e-12))
    # The informative part alone is concentrated: without exploration some available pairs would be impossible.
    assert np.any(upper(policy.informative)[on_available] == 0.0)


def test_a_model_under_its_boost_target_is_drawn_more_until_it_reaches_the_target():
    ratings, covariance, votes = toy_fit()
    boosted = 4
    plain = pair_probabilities(ratings, covariance, votes=votes, **settings(ratings.size))
    targets = np.zeros(ratings.size)
    targets[boosted] = votes[boosted] + 500
    under = pair_policy(
        ratings, covariance, votes=votes, boost_share=0.3, **settings(ratings.size, boost_targets=targets)
    )
    assert under.boosted.tolist() == [boosted]
    # Alone under its target, the model is one side of every boost draw: at least the boost share.
    assert model_share(under.probabilities, boosted) >= 0.3
    assert model_share(under.probabilities, boosted) > model_share(plain, boosted) + 0.2
    targets[boosted] = votes[boosted]  # target reached: back to the plain policy
    reached = pair_policy(
        ratings, covariance, votes=votes, boost_share=0.3, **settings(ratings.size, boost_targets=targets)
    )
    assert reached.boosted.size == 0 and reached.shares["boost"] == 0.0
    assert np.allclose(reached.probabilities, plain)


def test_boost_share_is_split_in_proportion_to_the_votes_each_model_still_lacks():
    ratings, covariance, votes = toy_fit()

    def boost_part(lacking: dict[int, int]) -> np.ndarray:
        """The boost part when each model in `lacking` is that many votes short of its target."""
        targets = np.zeros(ratings.size)
        for model, short in lacking.items():
            targets[model] = votes[model] + short
        return pair_policy(ratings, covariance, votes=votes, **settings(ratings.size, boost_targets=targets)).boost

    both = boost_part({2: 300, 6: 100})
    assert np.allclose(both, 0.75 * boost_part({2: 300}) + 0.25 * boost_part({6: 100}))
    assert upper(both).sum() == pytest.approx(1.0)


def test_a_new_model_without_votes_is_planned_for_and_boosted_against_all_opponents():
    ratings, covariance, votes = toy_fit()
    ratings = np.append(ratings, 1000.0)
    covariance = np.pad(covariance, ((0, 1), (0, 1)))  # a fit says nothing about a model without battles
    votes = np.append(votes, 0)
    n = ratings.size
    policy = pair_policy(ratings, covariance, votes=votes, **settings(n))
    # Its prior uncertainty (150 points) is the furthest from any goal: the plan spends on it first.
    assert model_share(policy.informative, n - 1) > 0.9
    targets = np.zeros(n)
    targets[-1] = 200
    boosted = pair_policy(ratings, covariance, votes=votes, **settings(n, boost_targets=targets))
    assert np.all(boosted.boost[n - 1, : n - 1] > 0.0)


def test_policy_concentrates_on_the_close_top_pair_once_every_rating_meets_its_goal():
    ratings, covariance, votes = toy_fit(n_battles=400_000)
    policy = pair_policy(ratings, covariance, votes=votes, top_k=3, **settings(ratings.size))
    informative = policy.informative
    # The two leaders 4 points apart: the one difference not yet within +-5 points and not separated.
    assert informative[0, 1] > 0.5
    assert informative[0, 1] == upper(informative).max()
    summary = policy_summary(policy)
    assert summary["top_order"] > 0.5 * (1 - summary["exploration"])
    assert summary["top_k_pairs"] > 0.5


def test_planned_votes_narrow_the_widest_interval_more_than_uniform_votes():
    ratings, covariance, votes = toy_fit(n_battles=20_000)
    n = ratings.size
    batch = 20_000
    policy = pair_policy(ratings, covariance, votes=votes, exploration=0.0, top_k=0, batch_votes=batch, **settings(n))
    theta = ratings * bt.elo_units()
    rows, cols = np.triu_indices(n, k=1)
    p = 1.0 / (1.0 + np.exp(-(theta[rows] - theta[cols])))

    def widest_after(allocation: np.ndarray) -> float:
        """Largest rating variance (relative to the mean) after adding `batch` votes as allocated."""
        information = np.linalg.inv(covariance) + bt.laplacian(rows, cols, batch * allocation * p * (1 - p), n)
        centring = np.eye(n) - 1.0 / n
        return float(np.diag(centring @ np.linalg.inv(information) @ centring).max())

    uniform = np.full(rows.size, 1.0 / rows.size)
    assert widest_after(upper(policy.informative)) < 0.9 * widest_after(uniform)


def test_sherman_morrison_update_equals_adding_the_information_and_inverting():
    _, covariance, _ = toy_fit()
    contrasts = np.eye(8)[:, [0, 3]] - np.eye(8)[:, [1, 5]]
    plan = ContrastPlan(covariance, contrasts, np.ones(2), 1.0)
    plan.add_battles(2, 6, 37.5)
    d = np.zeros(8)
    d[2], d[6] = 1.0, -1.0
    direct = np.linalg.inv(np.linalg.inv(covariance) + 37.5 * np.outer(d, d))
    assert np.allclose(plan.covariance, direct, rtol=1e-8, atol=1e-12)
    assert np.allclose(plan.variance, np.einsum("im,ij,jm->m", contrasts, direct, contrasts))


def test_summary_shares_add_up_and_the_description_names_each_purpose():
    ratings, covariance, votes = toy_fit()
    targets = np.zeros(ratings.size)
    targets[7] = votes[7] + 1000
    summary = policy_summary(
        pair_policy(ratings, covariance, votes=votes, **settings(ratings.size, boost_targets=targets))
    )
    shares = ("exploration", "boost", "top_order", "board_precision")
    assert sum(summary[key] for key in shares) == pytest.approx(1.0)
    assert summary["boost"] == 0.25 and summary["boosted_models"] == 1
    text = describe_policy(summary)
    assert "10% of battles pair two available models at random" in text
    assert "25% help 1 new model reach their target" in text
    assert "top 10" in text or "top 8" in text


def test_an_unavailable_leader_is_left_out_of_the_top_order():
    ratings, covariance, votes = toy_fit()
    available = np.ones(ratings.size, dtype=bool)
    available[0] = False
    policy = pair_policy(ratings, covariance, votes=votes, top_k=3, **settings(ratings.size, available=available))
    assert policy.top.tolist() == [1, 2, 3]


def test_invalid_settings_are_rejected():
    ratings, covariance, votes = toy_fit()
    n = ratings.size
    with pytest.raises(ValueError, match="fewer than two"):
        pair_policy(ratings, covariance, votes=votes, **settings(n, available=np.eye(n, dtype=bool)[0]))
    with pytest.raises(ValueError, match="sum to at most 1"):
        pair_policy(ratings, covariance, votes=votes, exploration=0.8, boost_share=0.3, **settings(n))
    with pytest.raises(ValueError, match=">= 0"):
        pair_policy(ratings, covariance, votes=votes, **settings(n, admin_weights=-np.ones(n)))
    with pytest.raises(ValueError, match="shape"):
        pair_policy(ratings, covariance[:-1, :-1], votes=votes, **settings(n))


def test_a_new_model_with_only_wins_is_planned_for_as_unknown_not_as_the_leader():
    from ratings.engine.counts import PairCounts
    from ratings.engine.sampling import policy_for_counts

    model_a, model_b, outcome = simulate_battles(TOY_RATINGS, 20_000, seed=5)
    pc = pair_outcome_counts(model_a, model_b, outcome, [f"m{i}" for i in range(TOY_RATINGS.size)])
    n = TOY_RATINGS.size + 1
    unbeaten = PairCounts(pc.models + ["new"], np.vstack([pc.pairs, [[8, 0], [3, 8]]]),
                          np.vstack([pc.counts, [[6, 0, 0, 0], [0, 2, 0, 0]]]))  # fmt: skip
    policy = policy_for_counts(unbeaten, **settings(n))
    assert 8 not in policy.top.tolist() and policy.top.tolist()[:2] == [0, 1]
    assert np.isfinite(policy.probabilities).all()
    # Its strength is unknown, so battles with it teach much: it is drawn more than a settled mid-field model.
    assert model_share(policy.probabilities, 8) > model_share(policy.probabilities, 4)


def test_the_plan_measures_uncertainty_against_the_boards_centre_so_a_newcomer_does_not_inflate_the_others():
    """The board centres on the battle-weighted mean: a newcomer with 3 votes and a huge variance adds almost
    nothing to the others' variance there (a plain mean added a sixteenth of it to each)."""
    covariance = np.diag([1.0, 1.0, 1.0, 1000.0])
    votes = np.array([1000, 1000, 1000, 3])
    centred = working_covariance(covariance, votes, units=1.0)
    assert np.all(np.diag(centred)[:3] < 1.0)
    assert np.diag(centred)[3] > 990.0
