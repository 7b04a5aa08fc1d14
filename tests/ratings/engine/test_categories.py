"""Category boards from labelled pair counts, and their shared bootstrap."""

import json
import warnings

import numpy as np
import pytest
from scipy.special import expit

from ratings.engine import bradley_terry as bt
from ratings.engine import categories as cat
from ratings.engine.counts import A_WINS, B_WINS, BOTH_BAD, TIE, PairCounts, pair_outcome_counts
from ratings.engine.leaderboard import compute_leaderboard
from ratings.engine.simulate import simulate_battles
from ratings.prompt_labels import FLAGS, parse_labels_key
from tests.ratings.engine.conftest import ANCHOR

RATINGS = np.array([1000.0, 1080.0, 950.0, 1150.0, 1010.0, 900.0, 1040.0, 980.0])
MODELS = [f"m{i}" for i in range(RATINGS.size)]
LANGUAGES = {"en": 0.70, "zh": 0.15, "de": 0.02, "und": 0.13}
FLAG_RATES = {"multi_turn": 0.15, "long_query": 0.20, "coding": 0.25, "math": 0.10}


def labelled_arena(n_battles: int = 60_000, seed: int = 0):
    """Simulated battles with labels drawn per battle; returns (labelled counts, battle arrays, keys)."""
    model_a, model_b, outcome = simulate_battles(RATINGS, n_battles, seed=seed)
    rng = np.random.default_rng(seed + 1)
    language = rng.choice(list(LANGUAGES), size=n_battles, p=list(LANGUAGES.values()))
    flags = {name: rng.random(n_battles) < rate for name, rate in FLAG_RATES.items()}
    letters = {"multi_turn": "t", "long_query": "l", "coding": "c", "math": "m"}
    keys = [f"{language[i]}:" + "".join(letters[f] for f in FLAG_RATES if flags[f][i]) for i in range(n_battles)]
    lpc = cat.LabelledPairCounts.from_battles(model_a, model_b, outcome, keys, MODELS)
    return lpc, (model_a, model_b, outcome), np.array(keys), flags, language


@pytest.fixture(scope="module")
def arena():
    """One labelled arena shared by the tests of this module."""
    return labelled_arena()


def counts_where(battles, mask) -> PairCounts:
    """Pair counts of the battles selected by `mask`, straight from the battle arrays."""
    model_a, model_b, outcome = battles
    return pair_outcome_counts(model_a[mask], model_b[mask], outcome[mask], MODELS)


def same_counts(left: PairCounts, right: PairCounts) -> bool:
    """Equal pairs and counts."""
    return np.array_equal(left.pairs, right.pairs) and np.array_equal(left.counts, right.counts)


def test_each_category_counts_exactly_its_own_battles(arena):
    lpc, battles, _, flags, language = arena
    counts = cat.category_counts(lpc, min_votes=1)
    everything = np.ones(language.size, dtype=bool)
    assert same_counts(counts["overall"], counts_where(battles, everything))
    assert same_counts(lpc.total(), counts["overall"])
    for flag, mask in flags.items():
        assert same_counts(counts[flag], counts_where(battles, mask))
    for code in ("en", "zh", "de"):
        assert same_counts(counts["language:" + code], counts_where(battles, language == code))
    decisive = battles[2] < TIE
    assert same_counts(counts["exclude_ties"], counts_where(battles, decisive))


def test_language_boards_and_undetermined_prompts_add_up_to_the_overall_counts(arena):
    lpc, *_ = arena
    counts = cat.category_counts(lpc, min_votes=1)
    languages = sum(counts["language:" + code].n_battles for code in ("en", "zh", "de"))
    undetermined = cat.Category("und", language="und").battles(lpc)
    assert "language:und" not in counts
    assert languages + undetermined == counts["overall"].n_battles


def test_categories_under_the_minimum_are_skipped_but_the_overall_board_stays(arena):
    lpc, *_ = arena
    german = cat.Category("language:de", language="de").battles(lpc)
    names = [c.name for c in cat.category_definitions(lpc, min_votes=german + 1)]
    assert "language:de" not in names and "language:zh" in names and "math" in names
    assert names[0] == "overall" and names[1] == "exclude_ties"
    assert [c.name for c in cat.category_definitions(lpc, min_votes=10**9)] == ["overall"]
    assert "language:de" in cat.category_counts(lpc, min_votes=german)


def test_the_exclude_ties_board_is_counted_by_its_decisive_battles(arena):
    lpc, (_, _, outcome), *_ = arena
    decisive = int(np.isin(outcome, [A_WINS, B_WINS]).sum())
    assert (outcome == TIE).any() and (outcome == BOTH_BAD).any()  # ties of both kinds are left out
    assert cat.Category(cat.EXCLUDE_TIES, decisive_only=True).battles(lpc) == decisive
    assert cat.Category(cat.OVERALL).battles(lpc) == outcome.size
    names = [c.name for c in cat.category_definitions(lpc, min_votes=decisive + 1)]
    assert "exclude_ties" not in names and names[0] == "overall"
    assert "exclude_ties" in [c.name for c in cat.category_definitions(lpc, min_votes=decisive)]


def drawn_by_hand(lpc: cat.LabelledPairCounts, boards: list, joint: bool) -> list[int]:
    """The drawn cells' counts, fine cell by fine cell in plain Python, in the order of their (group, side-merged
    pair, block, outcome): each cell reads the Poisson pool at its own place in that order, so the order is
    part of every seeded result."""
    languages = [b.category.language for b in boards if b.category.language is not None]
    flags = [b.category.flag for b in boards if b.category.flag is not None]
    cells = {}
    for (a, b), key, counts in zip(lpc.pairs.tolist(), lpc.keys, lpc.counts.tolist(), strict=True):
        labels = parse_labels_key(key)
        low_wins, high_wins = (counts[A_WINS], counts[B_WINS]) if a < b else (counts[B_WINS], counts[A_WINS])
        by_outcome = (low_wins, high_wins, counts[TIE] + counts[BOTH_BAD])
        language = languages.index(labels.language) if labels.language in languages else len(languages)
        pair = (min(a, b), max(a, b))
        if joint:
            bits = sum(1 << bit for bit, flag in enumerate(FLAGS) if getattr(labels, flag))
            places = [(0, *pair, bits * (len(languages) + 1) + language)]
        else:
            places = [(0, *pair, language)]
            places += [(1 + i, *pair, 0) for i, flag in enumerate(flags) if getattr(labels, flag)]
        for place in places:
            for outcome, count in enumerate(by_outcome):
                cells[(*place, outcome)] = cells.get((*place, outcome), 0) + count
    return [count for _, count in sorted(cells.items()) if count > 0]


@pytest.mark.parametrize("joint", [False, True])
def test_the_drawn_cells_and_their_order_match_a_count_by_hand(arena, joint):
    lpc, *_ = arena
    boards = cat._boards_to_fit(lpc, min_votes=cat.DEFAULT_MIN_VOTES, anchor=None)
    drawn_counts, aggregate = cat._draw_cells(lpc, boards, joint)
    assert drawn_counts.tolist() == drawn_by_hand(lpc, boards, joint)
    assert aggregate.shape == (sum(2 * b.data.model_a.size for b in boards), drawn_counts.size)


def test_overall_board_equals_the_plain_default_board_exactly(real_counts):
    lpc = cat.LabelledPairCounts(
        real_counts.models, real_counts.pairs, ["en:"] * len(real_counts.pairs), real_counts.counts
    )
    boards = cat.category_boards(lpc, rounds=0, anchor=ANCHOR)
    plain = compute_leaderboard(real_counts, bootstrap=False, anchor=ANCHOR)
    assert boards["overall"]["models"] == plain["models"]
    assert boards["language:en"]["models"] == plain["models"]


def test_exclude_ties_board_equals_the_board_of_the_data_with_ties_removed(arena):
    lpc, *_ = arena
    boards = cat.category_boards(lpc, rounds=0)
    overall = lpc.total()
    without_ties = overall.counts.copy()
    without_ties[:, [TIE, BOTH_BAD]] = 0
    keep = without_ties.sum(axis=1) > 0
    plain = compute_leaderboard(PairCounts(MODELS, overall.pairs[keep], without_ties[keep]), bootstrap=False)
    assert boards["exclude_ties"]["models"] == plain["models"]
    assert boards["exclude_ties"]["n_battles"] < boards["overall"]["n_battles"]


def test_shared_bootstrap_intervals_agree_with_independent_bootstraps_of_each_category(arena):
    lpc, *_ = arena
    boards = cat.category_boards(lpc, rounds=1000, seed=3)
    counts = cat.category_counts(lpc)
    worst, gaps = 0.0, []
    for name, pc in counts.items():
        lower, upper, _ = bt.bootstrap_intervals(pc, rounds=1000, seed=11)
        for row in boards[name]["models"]:
            i = MODELS.index(row["name"])
            half_width = (upper[i] - lower[i]) / 2
            gap = max(abs(row["ci_lower"] - lower[i]), abs(row["ci_upper"] - upper[i])) / half_width
            gaps.append(gap)
            worst = max(worst, gap)
    # Two independent 1000-round percentile bootstraps differ by ~6% of a half-width (one sd) at each end.
    assert worst < 0.3
    assert np.median(gaps) < 0.1


def test_two_chord_steps_match_converged_refits_on_the_same_draws(arena):
    lpc, *_ = arena
    few = cat.category_boards(lpc, rounds=300, seed=5, refit_steps=2)
    one = cat.category_boards(lpc, rounds=300, seed=5, refit_steps=1)
    converged = cat.category_boards(lpc, rounds=300, seed=5, refit_steps=None)
    for name, board in converged.items():
        exact = {row["name"]: row for row in board["models"]}
        for steps, result in ((2, few), (1, one)):
            for row in result[name]["models"]:
                if row["votes"] >= 1000:
                    gap = max(
                        abs(row["ci_lower"] - exact[row["name"]]["ci_lower"]),
                        abs(row["ci_upper"] - exact[row["name"]]["ci_upper"]),
                    )
                    assert gap < (0.5 if steps == 2 else 3.0), (name, row["name"], steps, gap)


def test_bootstrap_is_reproducible_for_a_seed_whatever_the_thread_count(arena):
    lpc, *_ = arena
    one = cat.category_boards(lpc, rounds=120, seed=7, threads=1)
    three = cat.category_boards(lpc, rounds=120, seed=7, threads=3)
    other = cat.category_boards(lpc, rounds=120, seed=8, threads=1)
    assert one == three
    assert one["coding"]["models"] != other["coding"]["models"]


def test_joint_draw_gives_intervals_like_the_per_board_draws(arena):
    lpc, *_ = arena
    split = cat.category_boards(lpc, rounds=1000, seed=2)
    joint = cat.category_boards(lpc, rounds=1000, seed=2, joint=True)
    for name, board in split.items():
        for row, other in zip(board["models"], joint[name]["models"], strict=True):
            half_width = (row["ci_upper"] - row["ci_lower"]) / 2
            assert abs(row["ci_lower"] - other["ci_lower"]) < 0.3 * half_width
            assert abs(row["ci_upper"] - other["ci_upper"]) < 0.3 * half_width


def test_balanced_pools_give_every_cell_the_poisson_quantiles_and_independent_draws_within_a_round():
    from scipy.stats import poisson

    rounds = 1000
    counts = np.array([1] * 20_000 + [7] * 20_000 + [400, 0])
    pools, starts = cat.balanced_poisson_pools(counts, rounds, np.random.default_rng(0))
    weights = pools[starts[:, None] + np.arange(rounds)]
    quantile_points = (np.arange(rounds) + 0.5) / rounds
    for k in (1, 7, 400):
        cell = np.flatnonzero(counts == k)[0]
        assert np.array_equal(np.sort(weights[cell]), poisson.ppf(quantile_points, k))
    assert not weights[-1].any()
    # One round: 20,000 cells of count 7 are independent Poisson(7) draws (frequencies, and the variance
    # of their total, which would be far off if cells shared their draws).
    for round_ in (0, 499):
        draws = weights[20_000:40_000, round_]
        observed = np.bincount(draws.astype(int), minlength=20)[:20] / draws.size
        assert np.abs(observed - poisson.pmf(np.arange(20), 7)).max() < 0.012
    totals = weights[:20_000].sum(axis=0)
    assert totals.var() == pytest.approx(20_000, rel=0.15)
    assert abs(np.corrcoef(totals[:-1], totals[1:])[0, 1]) < 0.1


def test_boards_are_strict_json_with_rows_like_the_plain_board(arena):
    lpc, *_ = arena
    boards = cat.category_boards(lpc, rounds=50)
    json.dumps(boards, allow_nan=False)
    plain_row = compute_leaderboard(lpc.total(), bootstrap=False)["models"][0]
    assert set(boards["math"]["models"][0]) == set(plain_row)
    assert boards["math"]["intervals"] == "bootstrap" and boards["math"]["rounds"] == 50


def test_an_anchor_without_battles_in_a_category_leaves_that_board_centred():
    model_a, model_b, outcome = simulate_battles(RATINGS, 20_000, seed=4)
    # The anchor model m0 never appears in Chinese prompts.
    keys = np.where((model_a == 0) | (model_b == 0), "en:", np.where(np.arange(model_a.size) % 2, "zh:", "en:"))
    lpc = cat.LabelledPairCounts.from_battles(model_a, model_b, outcome, keys.tolist(), MODELS)
    boards = cat.category_boards(lpc, rounds=0, anchor=("m0", 1114.0))
    assert boards["language:en"]["anchor"] == {"model": "m0", "rating": 1114.0}
    assert boards["language:zh"]["anchor"] is None
    rows = boards["language:zh"]["models"]
    # Every model rated, so each one's votes are the battles it played on the board: the centre's weights.
    assert all(row["rating"] is not None for row in rows)
    assert np.average([row["rating"] for row in rows], weights=[row["votes"] for row in rows]) == pytest.approx(1000.0)


def test_labelled_counts_reject_keys_that_are_not_canonical():
    with pytest.raises(ValueError):
        cat.LabelledPairCounts.from_battles(np.array([0]), np.array([1]), np.array([0]), ["english:c"], MODELS)
    with pytest.raises(ValueError):
        cat.LabelledPairCounts.from_battles(np.array([0]), np.array([1]), np.array([0]), ["en:mc"], MODELS)


def test_stored_boards_come_back_in_definition_order_whatever_order_the_store_kept():
    boards = {
        "language:en": {"n_battles": 900},
        "math": {"n_battles": 400},
        "exclude_ties": {"n_battles": 800},
        "language:de": {"n_battles": 950},
        "coding": {"n_battles": 500},
        "language:fr": {"n_battles": 900},
    }
    # e.g. PostgreSQL's jsonb hands keys back shortest first
    stored = dict(sorted(boards.items(), key=lambda item: (len(item[0]), item[0])))
    flags = [name for name in cat.FLAGS if name in boards]
    assert cat.category_order(stored) == ["exclude_ties", *flags, "language:de", "language:en", "language:fr"]


def test_a_model_with_only_coding_wins_is_not_rated_there_and_leaves_that_board_as_without_it(arena):
    lpc, *_ = arena
    # "new" beat two models in five coding battles and has played nothing else.
    extra = cat.LabelledPairCounts.from_battles(
        np.array([8, 8, 0, 8, 8]), np.array([0, 1, 8, 3, 0]), np.array([0, 0, 1, 0, 0]), ["en:c"] * 5, MODELS + ["new"]
    )
    with_new = cat.LabelledPairCounts(
        MODELS + ["new"],
        np.vstack([lpc.pairs, extra.pairs]),
        lpc.keys + extra.keys,
        np.vstack([lpc.counts, extra.counts]),
    )
    boards = cat.category_boards(with_new, rounds=0, min_votes=1000)
    coding = boards["coding"]
    assert coding["not_rated"] == ["new"] and coding["models"][-1]["rating"] is None
    without = cat.category_boards(lpc, rounds=0, min_votes=1000)["coding"]
    for row, alone in zip(coding["models"][:-1], without["models"], strict=True):
        assert row["name"] == alone["name"] and row["rank"] == alone["rank"]
        assert row["rating"] == pytest.approx(alone["rating"], abs=1e-6)
        assert row["ci_upper"] == pytest.approx(alone["ci_upper"], abs=1e-6)
    # The shared bootstrap too: intervals around the same ratings, about as wide as without the newcomer.
    booted = cat.category_boards(with_new, rounds=200, seed=1, min_votes=1000)["coding"]
    booted_without = cat.category_boards(lpc, rounds=200, seed=1, min_votes=1000)["coding"]
    for row, alone in zip(booted["models"][:-1], booted_without["models"], strict=True):
        assert row["ci_lower"] < row["rating"] < row["ci_upper"]
        assert abs(row["ci_lower"] - alone["ci_lower"]) < 3.0 and abs(row["ci_upper"] - alone["ci_upper"]) < 3.0


def test_the_float32_logistic_matches_float64_to_rounding_and_saturates_cleanly():
    x = np.concatenate([np.linspace(-30.0, 30.0, 100_001), [-1000.0, -89.0, -88.0, 88.0, 1000.0, 0.0]])
    exact = expit(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning escapes where exp(-x) is inf
        got = cat._logistic_inplace(x.astype(np.float32))
    assert got.dtype == np.float32
    assert np.abs(got - exact).max() < 1.5e-7  # float32 rounding of values in [0, 1]
    assert got[-6] == 0.0 and got[-2] == 1.0 and got[-1] == 0.5


def test_a_newcomer_with_a_few_battles_leaves_a_boards_other_intervals_alone():
    """Each bootstrap round is centred on the battle-weighted mean of the models rated in it: with a plain mean
    the centre jumped whenever a 1-4 newcomer dropped out of a round, widening every other interval."""
    model_a, model_b, outcome = simulate_battles(RATINGS, 12_000, seed=7)
    models = [*MODELS, "newcomer"]
    newcomer = (np.full(5, len(MODELS)), np.zeros(5, dtype=int), np.array([A_WINS] + [B_WINS] * 4))
    widths = []
    for a, b, o in (
        (model_a, model_b, outcome),
        tuple(np.r_[x, y] for x, y in zip((model_a, model_b, outcome), newcomer, strict=True)),
    ):
        lpc = cat.LabelledPairCounts.from_battles(a, b, o, ["en:"] * a.size, models)
        rows = {
            row["name"]: row
            for row in cat.category_boards(lpc, rounds=300, seed=1, min_votes=10)[cat.OVERALL]["models"]
        }
        widths.append(np.array([rows[name]["ci_upper"] - rows[name]["ci_lower"] for name in MODELS]))
    before, joined = widths
    assert np.all(joined < 1.15 * before), (joined, before)


def test_a_category_round_in_which_a_whole_group_loses_its_rating_is_an_infinite_gap():
    """As on the plain board (test_bradley_terry): a 7-1 pair swept 8-0 in a resample is +-inf there, not left out."""
    model_a, model_b = np.zeros(8, dtype=int), np.ones(8, dtype=int)
    outcome = np.array([A_WINS] * 7 + [B_WINS])
    lpc = cat.LabelledPairCounts.from_battles(model_a, model_b, outcome, ["en:"] * 8, ["leader", "trailer"])
    rows = {
        row["name"]: row for row in cat.category_boards(lpc, rounds=300, seed=0, min_votes=1)[cat.OVERALL]["models"]
    }
    assert rows["leader"]["ci_lower"] is not None and rows["leader"]["ci_upper"] is None  # unbounded above
    assert rows["trailer"]["ci_lower"] is None and rows["trailer"]["ci_upper"] is not None
