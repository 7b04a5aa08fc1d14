"""Style control recovers planted style effects and ratings."""

import numpy as np

from ratings.engine.simulate import simulate_style_battles
from ratings.engine.style import STYLE_FEATURES, fit_style_controlled, style_features, style_inputs_from_clean_battles

RATINGS = np.array([1000.0, 1080.0, 950.0, 1040.0])
EFFECTS = np.array([0.4, 0.0, -0.2, 0.1])
NAMES = ["m0", "m1", "m2", "m3"]


def test_style_features_are_normalised_differences_then_standardised():
    features = style_features(
        np.array([10, 0, 5]), np.array([0, 10, 5]), *(np.array([1, 2, 3]),) * 2, *(np.zeros(3),) * 4
    )
    assert features.shape == (3, 4)
    # raw differences are (10/11, -10/11, 0); standardising removes the common factor
    assert np.allclose(features[:, 0], np.array([1.0, -1.0, 0.0]) / np.sqrt(2 / 3))
    assert np.allclose(features[:, 1:], 0.0)


def test_planted_style_effects_and_ratings_are_recovered():
    model_a, model_b, outcome, features = simulate_style_battles(RATINGS, EFFECTS, 30_000, seed=0)
    result = fit_style_controlled(model_a, model_b, outcome, features, NAMES, rounds=0)
    for name, effect in zip(STYLE_FEATURES, EFFECTS, strict=True):
        assert result["style"][name]["ci_lower"] < effect < result["style"][name]["ci_upper"]
        assert result["style"][name]["ci_upper"] - result["style"][name]["ci_lower"] < 0.08
    truth = RATINGS - RATINGS.mean() + 1000.0
    assert np.all((result["ci_lower"] < truth) & (truth < result["ci_upper"]))


def test_style_bootstrap_intervals_agree_with_the_sandwich():
    model_a, model_b, outcome, features = simulate_style_battles(RATINGS, EFFECTS, 5_000, seed=1)
    result = fit_style_controlled(model_a, model_b, outcome, features, NAMES, rounds=100, seed=0)
    boot = result["ci_upper"] - result["ci_lower"]
    sandwich = result["sandwich_upper"] - result["sandwich_lower"]
    assert np.all(np.abs(boot / sandwich - 1.0) < 0.25)
    length = result["style"]["length"]
    assert (
        abs((length["ci_upper"] - length["ci_lower"]) / (length["sandwich_upper"] - length["sandwich_lower"]) - 1)
        < 0.25
    )


def test_ignoring_a_style_effect_biases_ratings_that_style_control_corrects():
    rng = np.random.default_rng(2)
    model_a, model_b, outcome, features = simulate_style_battles(RATINGS, EFFECTS, 30_000, seed=2)
    # Model m2 always writes longer answers: its raw rating is inflated by the length effect.
    features[:, 0] = np.where(model_a == 2, 1.0, np.where(model_b == 2, -1.0, 0.0)) + 0.3 * rng.normal(size=30_000)
    margin = (RATINGS[model_a] - RATINGS[model_b]) * np.log(10) / 400 + 0.5 * features[:, 0]
    outcome = (rng.random(30_000) >= 1 / (1 + np.exp(-margin))).astype(np.int64)
    controlled = fit_style_controlled(model_a, model_b, outcome, features[:, :1], NAMES, rounds=0)
    plain = fit_style_controlled(model_a, model_b, outcome, np.zeros((30_000, 1)), NAMES, rounds=0)
    truth = RATINGS - RATINGS.mean() + 1000.0
    assert plain["ratings"][2] - truth[2] > 40.0
    assert abs(controlled["ratings"][2] - truth[2]) < 15.0


def test_clean_battle_metadata_is_summed_per_side():
    meta = {
        "sum_assistant_a_tokens": 100,
        "sum_assistant_b_tokens": 50,
        "header_count_a": {"h1": 1, "h2": 2},
        "header_count_b": {"h1": 0},
        "list_count_a": {"ordered": 1, "unordered": 1},
        "list_count_b": {"ordered": 0, "unordered": 0},
        "bold_count_a": {"**": 0, "__": 0},
        "bold_count_b": {"**": 2, "__": 0},
    }
    records = [
        {"model_a": "x", "model_b": "y", "winner": "model_a", "conv_metadata": meta},
        {"model_a": "y", "model_b": "x", "winner": "tie", "conv_metadata": {}},
    ]
    models, model_a, model_b, outcome, features = style_inputs_from_clean_battles(records)
    assert models == ["x", "y"] and outcome.tolist() == [0, 2]
    assert features[0, 0] > 0 and features[0, 1] > 0 and features[0, 2] > 0 and features[0, 3] < 0


def test_a_model_with_only_wins_gets_no_style_controlled_rating_and_leaves_the_others_as_without_it():
    model_a, model_b, outcome, features = simulate_style_battles(RATINGS, EFFECTS, 5_000, seed=3)
    new = len(NAMES)
    extra_a, extra_b = np.array([new, new, 1]), np.array([0, 2, new])
    with_new = fit_style_controlled(
        np.r_[model_a, extra_a], np.r_[model_b, extra_b], np.r_[outcome, [0, 0, 1]],
        np.vstack([features, np.zeros((3, features.shape[1]))]), NAMES + ["new"], rounds=20, seed=0,
    )  # fmt: skip
    alone = fit_style_controlled(model_a, model_b, outcome, features, NAMES + ["new"], rounds=20, seed=0)
    assert np.isnan(with_new["ratings"][new]) and np.isnan(with_new["ci_upper"][new])
    assert np.abs(with_new["ratings"][:new] - alone["ratings"][:new]).max() < 1e-6
    assert np.abs(with_new["sandwich_upper"][:new] - alone["sandwich_upper"][:new]).max() < 1e-6


def test_a_newcomer_with_a_few_battles_leaves_the_other_style_controlled_intervals_alone():
    """As on the plain board: the centre is the battle-weighted mean, so a newcomer at 1-4, dropping out of a
    third of the bootstrap's rounds, no longer moves every other model's interval."""
    model_a, model_b, outcome, features = simulate_style_battles(RATINGS, EFFECTS, 8_000, seed=2)
    names = [*NAMES, "newcomer"]
    newcomer_features = features[:5].copy()
    joined = (
        np.r_[model_a, np.full(5, len(NAMES))], np.r_[model_b, np.zeros(5, dtype=int)],
        np.r_[outcome, [0, 1, 1, 1, 1]], np.vstack([features, newcomer_features]),
    )  # fmt: skip
    widths = []
    for a, b, o, f in ((model_a, model_b, outcome, features), joined):
        result = fit_style_controlled(a, b, o, f, names, rounds=200, seed=0)
        widths.append((result["ci_upper"] - result["ci_lower"])[: len(NAMES)])
    before, after = widths
    assert np.all(after < 1.15 * before), (after, before)
