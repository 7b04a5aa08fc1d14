"""Bradley-Terry fit, sandwich and bootstrap intervals, ranks."""

import numpy as np
import pytest

from ratings.engine import bradley_terry as bt
from ratings.engine.counts import PairCounts, pair_outcome_counts, swap_sides
from ratings.engine.simulate import simulate_battles
from tests.ratings.engine.conftest import ANCHOR

TRUE_RATINGS = np.array([1000.0, 1080.0, 950.0, 1150.0, 1010.0, 900.0])


def simulated_counts(n_battles: int, seed: int, ratings: np.ndarray = TRUE_RATINGS) -> PairCounts:
    """Counts of battles simulated from `ratings`."""
    model_a, model_b, outcome = simulate_battles(ratings, n_battles, seed=seed)
    return pair_outcome_counts(model_a, model_b, outcome, [f"m{i}" for i in range(ratings.size)])


def doubled(pc: PairCounts) -> PairCounts:
    """The same battles, each seen twice."""
    return PairCounts(pc.models, pc.pairs, pc.counts * 2)


def centred(ratings: np.ndarray) -> np.ndarray:
    """Ratings shifted to mean 1000, the fit's default gauge."""
    return ratings - ratings.mean() + 1000.0


def test_log_likelihood_gradient_is_zero_at_the_fit(real_counts):
    data = bt.PairData.from_counts(real_counts)
    theta = bt.fit_theta(data)
    assert np.abs(bt.log_likelihood_gradient(theta, data)).max() < 1e-6
    nudged = theta + 1e-3 * np.sin(np.arange(theta.size))
    assert np.abs(bt.log_likelihood_gradient(nudged, data)).max() > 1.0


def test_fit_maximises_the_likelihood_against_nearby_points():
    data = bt.PairData.from_counts(simulated_counts(5000, seed=1))
    theta = bt.fit_theta(data)
    best = bt.log_likelihood(theta, data)
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert bt.log_likelihood(theta + rng.normal(scale=1e-2, size=theta.size), data) < best


def battle_weighted_mean(pc: PairCounts, ratings: np.ndarray) -> float:
    """The rated models' mean rating, each weighted by the battles it played: the centre of an unanchored board."""
    played = bt.PairData.from_counts(pc).rated_groups().played
    rated = ~np.isnan(ratings)
    return float(np.average(ratings[rated], weights=played[rated]))


def test_anchor_model_gets_exactly_its_rating_and_differences_are_kept():
    pc = simulated_counts(3000, seed=2)
    free = bt.fit_ratings(pc)
    anchored = bt.fit_ratings(pc, anchor=("m2", 1114.0))
    assert anchored[2] == pytest.approx(1114.0)
    assert battle_weighted_mean(pc, free) == pytest.approx(1000.0)
    assert np.allclose(anchored - anchored[2], free - free[2])


def test_swapping_every_battles_sides_leaves_ratings_unchanged(real_counts):
    original = bt.fit_ratings(real_counts, anchor=ANCHOR)
    swapped = bt.fit_ratings(swap_sides(real_counts), anchor=ANCHOR)
    assert np.abs(original - swapped).max() < 1e-8


def test_duplicated_data_keeps_ratings_and_narrows_sandwich_intervals_by_root_two():
    pc = simulated_counts(4000, seed=3)
    ratings = bt.fit_ratings(pc)
    ratings_twice = bt.fit_ratings(doubled(pc))
    assert np.abs(ratings - ratings_twice).max() < 1e-8
    lower, upper = bt.sandwich_intervals(pc, ratings)
    lower2, upper2 = bt.sandwich_intervals(doubled(pc), ratings_twice)
    assert np.allclose((upper - lower) / (upper2 - lower2), np.sqrt(2.0))


def test_duplicated_data_narrows_bootstrap_intervals_by_about_root_two():
    pc = simulated_counts(4000, seed=4)
    lower, upper, _ = bt.bootstrap_intervals(pc, rounds=1000, seed=0)
    lower2, upper2, _ = bt.bootstrap_intervals(doubled(pc), rounds=1000, seed=0)
    ratio = np.median((upper - lower) / (upper2 - lower2))
    assert 1.3 < ratio < 1.53


def test_true_ratings_are_recovered_from_many_battles():
    pc = simulated_counts(200_000, seed=5)
    assert np.abs(bt.fit_ratings(pc) - centred(TRUE_RATINGS)).max() < 6.0


def test_ninety_five_percent_intervals_cover_the_truth_about_95_percent_of_the_time():
    # 60 arenas x 6 models = 360 intervals per method: 95% +/- 3.4 points is three standard errors.
    truth = centred(TRUE_RATINGS)
    covered_sandwich, covered_bootstrap = [], []
    for arena in range(60):
        pc = simulated_counts(600, seed=100 + arena)
        ratings = bt.fit_ratings(pc)
        lower, upper = bt.sandwich_intervals(pc, ratings)
        covered_sandwich.extend((lower <= truth) & (truth <= upper))
        lower, upper, _ = bt.bootstrap_intervals(pc, rounds=200, seed=arena)
        covered_bootstrap.extend((lower <= truth) & (truth <= upper))
    assert 0.915 <= np.mean(covered_sandwich) <= 0.985
    assert 0.915 <= np.mean(covered_bootstrap) <= 0.985


def test_sandwich_and_bootstrap_intervals_agree_on_well_sampled_models(real_counts):
    ratings = bt.fit_ratings(real_counts, anchor=ANCHOR)
    sandwich_lower, sandwich_upper = bt.sandwich_intervals(real_counts, ratings, anchor=ANCHOR)
    lower, upper, _ = bt.bootstrap_intervals(real_counts, rounds=1000, seed=0, anchor=ANCHOR)
    well_sampled = real_counts.votes_per_model() > 20_000
    well_sampled[real_counts.models.index(ANCHOR[0])] = False  # zero-width in both: relative to itself
    ratio = (upper - lower)[well_sampled] / (sandwich_upper - sandwich_lower)[well_sampled]
    assert np.all(np.abs(ratio - 1.0) < 0.15)
    assert np.abs(np.median(ratio) - 1.0) < 0.03


def test_multinomial_draws_preserve_the_total_and_match_binomial_margins():
    rng = np.random.default_rng(0)
    counts = np.array([10, 30, 60, 0, 400])
    draws = bt.multinomial_draws(rng, counts, 200_000)
    assert np.all(draws.sum(axis=1) == counts.sum())
    assert np.all(draws[:, 3] == 0)
    p = counts / counts.sum()
    assert np.allclose(draws.mean(axis=0), counts, atol=0.1)
    assert np.allclose(draws.var(axis=0), counts.sum() * p * (1 - p), rtol=0.02)
    # Multinomial cells are negatively correlated: cov = -n p_i p_j.
    assert np.cov(draws[:, 0], draws[:, 4])[0, 1] == pytest.approx(-counts.sum() * p[0] * p[4], rel=0.05)


def test_multinomial_draws_match_the_exact_distribution_of_a_small_cell():
    from scipy.stats import binom

    rng = np.random.default_rng(1)
    draws = bt.multinomial_draws(rng, np.array([3, 97]), 400_000)[:, 0]
    observed = np.bincount(draws, minlength=15)[:15] / draws.size
    assert np.abs(observed - binom.pmf(np.arange(15), 100, 0.03)).max() < 0.003


def test_batched_bootstrap_fits_equal_one_by_one_fits_on_the_same_draws(real_counts):
    data = bt.PairData.from_counts(real_counts)
    theta_full = bt.fit_theta(data)
    cells = np.column_stack([data.a_wins, data.b_wins, data.ties]).astype(np.int64).ravel()
    draws = bt.multinomial_draws(np.random.default_rng(3), cells, 4).reshape(4, -1, 3).astype(float)
    batched, last_step = bt.refit_rounds(data, theta_full, draws[:, :, 0], draws[:, :, 1], draws[:, :, 2])
    assert np.all(last_step < bt.BOOTSTRAP_STEP_TOLERANCE)
    units = bt.elo_units()
    for row, theta in zip(draws, batched, strict=True):
        resampled = bt.PairData(data.n_models, data.model_a, data.model_b, row[:, 0], row[:, 1], row[:, 2])
        assert np.abs(bt.log_likelihood_gradient(theta, resampled)).max() < 1e-2
        exact = bt.fit_theta(resampled)
        assert np.abs(exact - exact.mean() - (theta - theta.mean())).max() / units < 1e-3


def test_batched_bootstrap_fits_stay_exact_on_a_small_sparse_arena():
    # Few battles per pair: resampled Hessians differ a lot from the full-data one, so the chord
    # iteration is slow here and the exact batched Newton fallback has to finish the job.
    data = bt.PairData.from_counts(simulated_counts(150, seed=11))
    theta_full = bt.fit_theta(data)
    cells = np.column_stack([data.a_wins, data.b_wins, data.ties]).astype(np.int64).ravel()
    draws = bt.multinomial_draws(np.random.default_rng(5), cells, 40).reshape(40, -1, 3).astype(float)
    batched, last_step = bt.refit_rounds(data, theta_full, draws[:, :, 0], draws[:, :, 1], draws[:, :, 2])
    assert np.all(last_step < bt.BOOTSTRAP_STEP_TOLERANCE)
    for row, theta in zip(draws, batched, strict=True):
        exact = bt.fit_theta(bt.PairData(data.n_models, data.model_a, data.model_b, row[:, 0], row[:, 1], row[:, 2]))
        assert np.abs(exact - theta).max() / bt.elo_units() < 1e-2


def test_bootstrap_is_reproducible_for_a_seed_whatever_the_thread_count():
    pc = simulated_counts(3000, seed=6)
    *_, samples = bt.bootstrap_intervals(pc, rounds=120, seed=7, threads=1)
    *_, again = bt.bootstrap_intervals(pc, rounds=120, seed=7, threads=3)
    *_, other = bt.bootstrap_intervals(pc, rounds=120, seed=8, threads=1)
    assert np.array_equal(samples, again)
    assert not np.array_equal(samples, other)


def test_bootstrap_reports_progress_up_to_the_total():
    seen = []
    bt.bootstrap_intervals(
        simulated_counts(500, seed=9), rounds=130, progress=lambda done, total: seen.append((done, total))
    )
    assert seen[-1] == (130, 130)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_models_without_battles_get_no_rating_and_no_interval():
    pc = simulated_counts(2000, seed=10)
    pc = PairCounts(pc.models + ["unplayed"], pc.pairs, pc.counts)
    ratings = bt.fit_ratings(pc)
    lower, upper = bt.sandwich_intervals(pc, ratings)
    assert np.isnan(ratings[-1])
    assert battle_weighted_mean(pc, ratings) == pytest.approx(1000.0)
    assert np.isnan(lower[-1]) and np.isnan(upper[-1])
    assert np.all(np.isfinite(lower[:-1]))


def test_rank_counts_the_models_that_are_clearly_better():
    lower = np.array([10.0, 8.0, 1.0, 0.0])
    upper = np.array([12.0, 11.0, 9.0, 2.0])
    assert bt.ranks(lower, upper).tolist() == [1, 1, 2, 3]


def test_predicted_win_matrix_is_half_between_equals_and_complementary():
    matrix = bt.predicted_win_matrix(np.array([1000.0, 1000.0, 1400.0]))
    assert matrix[0, 1] == pytest.approx(0.5)
    assert matrix[2, 0] == pytest.approx(10 / 11)
    assert matrix[0, 2] + matrix[2, 0] == pytest.approx(1.0)


def test_real_board_top_is_led_by_the_gpt_4o_family_near_1300(real_counts):
    ratings = dict(zip(real_counts.models, bt.fit_ratings(real_counts, anchor=ANCHOR), strict=True))
    top_five = sorted(ratings, key=ratings.get, reverse=True)[:5]
    assert top_five[0] == "chatgpt-4o-latest"
    assert "gpt-4o-2024-05-13" in top_five
    assert 1280 < ratings["chatgpt-4o-latest"] < 1350
    assert ratings["mixtral-8x7b-instruct-v0.1"] == pytest.approx(1114.0)
    assert ratings["gpt-4-turbo-2024-04-09"] > ratings["gpt-3.5-turbo-0125"] > ratings["llama-2-7b-chat"]
    assert ratings["claude-3-opus-20240229"] > ratings["claude-3-sonnet-20240229"] > ratings["claude-3-haiku-20240307"]


def with_battles(pc: PairCounts, name: str, rows: dict[int, list[int]]) -> PairCounts:
    """`pc` plus model `name`, with [its wins, its losses, ties, both-bad] against the given opponents."""
    new = pc.n_models
    pairs = np.vstack([pc.pairs, [[new, opponent] for opponent in rows]])
    counts = np.vstack([pc.counts, list(rows.values())])
    return PairCounts(pc.models + [name], pairs, counts)


def test_a_model_that_only_wins_gets_no_rating_and_the_others_are_rated_as_without_it():
    pc = simulated_counts(4000, seed=12)
    unbeaten = with_battles(pc, "new", {0: [5, 0, 0, 0], 3: [3, 0, 0, 0]})
    ratings = bt.fit_ratings(unbeaten)
    assert np.isnan(ratings[-1])
    without = PairCounts(unbeaten.models, pc.pairs, pc.counts)
    assert np.abs(ratings[:-1] - bt.fit_ratings(without)[:-1]).max() < 1e-6
    lower, upper = bt.sandwich_intervals(unbeaten, ratings)
    lower_without, upper_without = bt.sandwich_intervals(without, bt.fit_ratings(without))
    assert np.isnan(lower[-1]) and np.isnan(upper[-1])
    assert np.abs(upper[:-1] - upper_without[:-1]).max() < 1e-6


def test_groups_that_never_met_are_each_centred_with_intervals_from_their_own_battles():
    first = simulated_counts(3000, seed=13)
    second = simulated_counts(400, seed=14, ratings=np.array([1000.0, 900.0]))
    pc = PairCounts(first.models + ["s0", "s1"], np.vstack([first.pairs, second.pairs + 6]),
                    np.vstack([first.counts, second.counts]))  # fmt: skip
    ratings = bt.fit_ratings(pc)
    lower, upper = bt.sandwich_intervals(pc, ratings)
    for part, rows in ((first, slice(0, 6)), (second, slice(6, 8))):
        alone = bt.fit_ratings(part)
        alone_lower, alone_upper = bt.sandwich_intervals(part, alone)
        assert np.abs(ratings[rows] - alone).max() < 1e-6  # each group averages 1000 on its own
        assert np.abs(upper[rows] - alone_upper).max() < 1e-6 and np.abs(lower[rows] - alone_lower).max() < 1e-6


def test_a_newcomer_with_a_few_battles_leaves_the_established_models_intervals_and_ranks_alone():
    """With a plain mean as the centre, a newcomer at 1-4 (a huge variance) took a tenth of it: every other
    model's interval widened two- to threefold (sandwich and bootstrap, the bootstrap's centre jumping as the
    newcomer dropped out of a round) and neighbours' ranks merged. The centre is weighted by battles now."""
    ratings = np.linspace(850.0, 1200.0, 10)
    pc = simulated_counts(15_000, seed=21, ratings=ratings)
    joined = with_battles(pc, "newcomer", {0: [1, 4, 0, 0]})
    fitted = {board: bt.fit_ratings(counts) for board, counts in (("before", pc), ("joined", joined))}
    intervals = {
        (board, kind): interval
        for board, counts in (("before", pc), ("joined", joined))
        for kind, interval in (
            ("sandwich", bt.sandwich_intervals(counts, fitted[board])),
            ("bootstrap", bt.bootstrap_intervals(counts, rounds=300, seed=3)[:2]),
        )
    }
    established = slice(0, 10)
    assert np.abs(fitted["joined"][established] - fitted["before"]).max() < 1.0
    for kind in ("sandwich", "bootstrap"):
        lower, upper = intervals["joined", kind]
        lower_before, upper_before = intervals["before", kind]
        widths, widths_before = (upper - lower)[established], upper_before - lower_before
        assert np.all(widths < 1.15 * widths_before), (kind, widths, widths_before)
        assert (
            bt.ranks(lower[established], upper[established]).tolist() == bt.ranks(lower_before, upper_before).tolist()
        )


def test_a_bootstrap_round_where_a_thin_model_is_one_sided_leaves_the_others_centring_alone():
    # "thin" is 2-1: in about a third of the rounds it has only wins or only losses, hence no rating there.
    pc = with_battles(simulated_counts(3000, seed=15), "thin", {1: [1, 1, 0, 0], 2: [1, 0, 0, 0]})
    *_, samples = bt.bootstrap_intervals(pc, rounds=300, seed=2)
    thin = samples[:, -1]
    one_sided = ~(np.abs(thin - 1000.0) < 1500.0)  # +-inf now; thousands of points off with the ridge alone
    assert 0.15 < one_sided.mean() < 0.6
    assert np.all(np.isinf(thin[one_sided]) | np.isnan(thin[one_sided]))
    # The models rated in such a round average exactly 1000 (weighted by their battles), as the board's gauge says.
    played = bt.PairData.from_counts(pc).rated_groups().played[:-1]
    assert np.abs(np.average(samples[one_sided, :-1], weights=played, axis=1) - 1000.0).max() < 1e-6


def test_percentile_intervals_are_unbounded_where_enough_rounds_are_infinite_and_skip_rounds_without_a_rating():
    samples = np.column_stack([
        np.r_[np.arange(95.0), np.full(5, np.inf)],  # 5% of rounds at +inf: the upper end is unbounded
        np.r_[np.arange(99.0), np.inf],  # 1%: not enough to open the 97.5% end
        np.r_[np.arange(50.0), np.full(50, np.nan)],  # no rating in half the rounds: those are left out
        np.full(100, np.nan),
    ])  # fmt: skip
    lower, upper = bt.percentile_intervals(samples, 0.95)
    assert upper[0] == np.inf and np.isfinite(lower[0])
    assert np.isfinite(upper[1])
    assert (lower[2], upper[2]) == pytest.approx(tuple(np.quantile(np.arange(50.0), [0.025, 0.975])))
    assert np.isnan(lower[3]) and np.isnan(upper[3])


def test_each_round_fits_exactly_the_pairs_whose_two_models_share_a_rated_group_in_it():
    """rated_in_rounds recomputes only the pairs of models whose label some round changed: on random boards
    with thin models (some in two blocks that never met) its pairs are those the labels say, round by round."""
    from ratings.engine.rated_groups import NOT_RATED
    from tests.ratings.engine.conftest import resampled_thin_boards

    changed_rounds = 0
    for seed, data, groups, score, totals, links in resampled_thin_boards(range(40), rounds=30):
        labels, kept = bt.rated_in_rounds(groups, data.model_a, data.model_b, score, totals, links)
        label_a, label_b = labels[:, data.model_a], labels[:, data.model_b]
        assert np.array_equal(kept, (label_a != NOT_RATED) & (label_a == label_b)), seed
        changed_rounds += int((labels != groups.label).any(axis=1).sum())
    assert changed_rounds > 100  # thin models do leave rounds, on either side of their pairs


def test_rounds_in_which_a_whole_group_loses_its_rating_count_as_infinite_gaps_not_as_missing():
    """A pair at 7-1 is resampled 8-0 in a third of the rounds: neither model has a rating there. Those rounds
    were left out, so the leader's upper bound stopped at its point estimate (a finite, one-sided interval);
    they are an infinite gap, in the direction the round's battles went."""
    pc = PairCounts(["leader", "trailer"], np.array([[0, 1]]), np.array([[7, 1, 0, 0]]))
    ratings = bt.fit_ratings(pc)
    lower, upper, samples = bt.bootstrap_intervals(pc, rounds=1000, seed=0)
    swept = np.isinf(samples[:, 0])
    assert 0.30 < swept.mean() < 0.39  # (7/8)^8 = 0.34
    assert np.all(samples[swept, 0] == np.inf) and np.all(samples[swept, 1] == -np.inf)
    assert not np.isnan(samples).any()
    assert lower[0] < ratings[0] and upper[0] == np.inf
    assert lower[1] == -np.inf and ratings[1] < upper[1]
    # Anchored, the anchor keeps its rating, and in a swept round the trailer is infinitely below it (left out,
    # its interval's lower end stopped at its point estimate).
    anchored = bt.fit_ratings(pc, anchor=("leader", 1114.0))
    lower, upper, _ = bt.bootstrap_intervals(pc, rounds=300, seed=0, anchor=("leader", 1114.0))
    assert (lower[0], upper[0]) == (1114.0, 1114.0)
    assert lower[1] == -np.inf and anchored[1] < upper[1] < 1114.0


def test_an_anchored_board_keeps_the_rounds_its_anchor_sat_out_on_the_anchors_scale():
    """a beats b 5-1, b beats c 5-1, a the anchor: in the quarter of rounds where a sweeps b, a has no rating
    and b and c (still a core) were left out (to_elo's NaN) while a itself got +inf: the anchor's interval was
    [1000, +inf]. Those rounds put b and c infinitely below the anchor now."""
    pc = PairCounts(["a", "b", "c"], np.array([[0, 1], [1, 2]]), np.array([[5, 1, 0, 0], [5, 1, 0, 0]]))
    lower, upper, samples = bt.bootstrap_intervals(pc, rounds=400, seed=1, anchor=("a", 1000.0))
    assert (lower[0], upper[0]) == (1000.0, 1000.0)
    sat_out = np.isnan(samples[:, 0])
    assert 0.1 < sat_out.mean() < 0.4
    assert np.all(samples[sat_out, 1:] == -np.inf)
    assert lower[2] == -np.inf and upper[2] < 1000.0
