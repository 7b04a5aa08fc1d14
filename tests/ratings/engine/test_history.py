"""Ratings over time: snapshot series, replay of timestamped battles, average win rates."""

from datetime import UTC, datetime

import numpy as np
import pytest

from ratings.engine import bradley_terry as bt
from ratings.engine import history
from ratings.engine.counts import A_WINS, B_WINS, TIE, pair_outcome_counts
from ratings.engine.leaderboard import compute_leaderboard
from ratings.engine.simulate import simulate_battles

RATINGS = np.array([1000.0, 1100.0, 950.0, 1050.0, 900.0])
MODELS = ["m0", "m1", "m2", "m3", "late"]
START = datetime(2024, 1, 10, tzinfo=UTC).timestamp()
DAY = 86_400.0


def timestamped_arena(n_battles: int = 30_000, seed: int = 0):
    """Battles spread over ~200 days; model "late" only takes part after day 100."""
    model_a, model_b, outcome = simulate_battles(RATINGS, n_battles, seed=seed)
    timestamp = START + np.random.default_rng(seed).uniform(0, 200 * DAY, n_battles)
    involves_late = (model_a == 4) | (model_b == 4)
    timestamp[involves_late] = np.maximum(timestamp[involves_late], START + 100 * DAY)
    return model_a, model_b, outcome, timestamp


def test_monthly_cutoffs_are_month_starts_covering_every_battle():
    times = np.array([START, START + 75 * DAY])  # 10 January to 25 March
    cutoffs = history.monthly_cutoffs(times)
    dates = [datetime.fromtimestamp(c, UTC) for c in cutoffs]
    assert [(d.month, d.day, d.hour) for d in dates] == [(2, 1, 0), (3, 1, 0), (4, 1, 0)]
    assert history.monthly_cutoffs(np.array([])).size == 0


def test_cumulative_counts_equal_counting_the_battles_before_each_cutoff():
    model_a, model_b, outcome, timestamp = timestamped_arena()
    cutoffs = history.monthly_cutoffs(timestamp)
    for cutoff, pc in zip(
        cutoffs, history.cumulative_pair_counts(model_a, model_b, outcome, timestamp, MODELS, cutoffs), strict=True
    ):
        before = timestamp < cutoff
        direct = pair_outcome_counts(model_a[before], model_b[before], outcome[before], MODELS)
        assert np.array_equal(pc.pairs, direct.pairs) and np.array_equal(pc.counts, direct.counts)


def test_cumulative_counts_refuse_descending_cutoffs():
    model_a, model_b, outcome, timestamp = timestamped_arena(1000)
    with pytest.raises(ValueError):
        history.cumulative_pair_counts(model_a, model_b, outcome, timestamp, MODELS, [START + 50 * DAY, START])


def test_replay_at_the_last_cutoff_equals_the_board_of_all_battles():
    model_a, model_b, outcome, timestamp = timestamped_arena()
    snapshots = history.replay_history(model_a, model_b, outcome, timestamp, MODELS, anchor=("m0", 1114.0))
    full = compute_leaderboard(
        pair_outcome_counts(model_a, model_b, outcome, MODELS), bootstrap=False, anchor=("m0", 1114.0)
    )
    assert snapshots[-1][1] == full["models"]
    assert len(snapshots) == len(history.monthly_cutoffs(timestamp))


def test_replay_shows_a_model_only_from_its_first_battles_and_boards_narrow_as_votes_grow():
    model_a, model_b, outcome, timestamp = timestamped_arena()
    series = history.snapshot_series(history.replay_history(model_a, model_b, outcome, timestamp, MODELS))
    assert min(series["late"]["time"]) > START + 100 * DAY
    assert len(series["m1"]["time"]) > len(series["late"]["time"])
    widths = np.array(series["m1"]["ci_upper"]) - np.array(series["m1"]["ci_lower"])
    assert np.all(np.diff(widths) < 0)
    assert series["m1"]["rating"][-1] > series["m2"]["rating"][-1]


def test_replay_before_any_battle_gives_an_empty_board():
    model_a, model_b, outcome, timestamp = timestamped_arena(2000)
    snapshots = history.replay_history(model_a, model_b, outcome, timestamp, MODELS, [START - DAY, START + 300 * DAY])
    assert snapshots[0][1] == []
    assert len(snapshots[1][1]) == len(MODELS)


def test_snapshot_series_sorts_by_time_and_skips_models_absent_from_a_snapshot():
    snapshots = [
        (3, [{"name": "a", "rating": 1010.0, "ci_lower": 1000.0, "ci_upper": 1020.0}]),
        (1, [{"name": "a", "rating": 990.0, "ci_lower": 970.0, "ci_upper": 1010.0}, {"name": "b", "rating": 1001.0}]),
    ]
    series = history.snapshot_series(snapshots)
    assert series["a"] == {
        "time": [1, 3],
        "rating": [990.0, 1010.0],
        "ci_lower": [970.0, 1000.0],
        "ci_upper": [1010.0, 1020.0],
    }
    assert series["b"] == {"time": [1], "rating": [1001.0], "ci_lower": [None], "ci_upper": [None]}


def test_snapshot_series_draws_group_1_only():
    """A group that never met the others is centred on its own: on the same axis its ratings would not compare,
    and a line would jump when the groups met."""
    snapshots = [
        (1, [{"name": "a", "rating": 1010.0, "group": 1}, {"name": "z", "rating": 1000.0, "group": 2}]),
        (2, [{"name": "a", "rating": 1020.0, "group": 1}, {"name": "z", "rating": 1200.0, "group": 1}]),
    ]
    series = history.snapshot_series(snapshots)
    assert series["a"]["time"] == [1, 2] and series["z"]["time"] == [2]


def test_average_win_rate_weighs_every_opponent_equally_and_ignores_ties():
    # m0 beats m1 in 90 of 100 battles, loses all 10 against m2; 50 ties with m2 change nothing.
    model_a = np.array([0] * 100 + [0] * 10 + [0] * 50)
    model_b = np.array([1] * 100 + [2] * 10 + [2] * 50)
    outcome = np.array([A_WINS] * 90 + [B_WINS] * 10 + [B_WINS] * 10 + [TIE] * 50)
    pc = pair_outcome_counts(model_a, model_b, outcome, ["m0", "m1", "m2", "idle"])
    rates = history.average_win_rate(pc)
    assert rates[0] == pytest.approx((0.9 + 0.0) / 2)  # not 90 / 110 weighted by battles
    assert rates[1] == pytest.approx(0.1)
    assert rates[2] == pytest.approx(1.0)
    assert np.isnan(rates[3])


def test_predicted_average_win_rate_is_the_mean_of_the_predicted_matrix_row():
    model_a, model_b, outcome, _ = timestamped_arena(20_000)
    pc = pair_outcome_counts(model_a, model_b, outcome, MODELS)
    rates = history.average_win_rate(pc, predicted=True)
    matrix = bt.predicted_win_matrix(bt.fit_ratings(pc))
    assert rates == pytest.approx(np.nanmean(matrix, axis=1))
    assert np.argmax(rates) == 1 and np.argmin(rates) == 4
    # Decisive-only observed rates are further from 1/2 than the tie-inclusive predictions, same order.
    observed = history.average_win_rate(pc)
    assert np.array_equal(np.argsort(observed), np.argsort(rates))


def test_replay_centres_boards_until_the_anchor_model_has_battles():
    model_a, model_b, outcome, timestamp = timestamped_arena()
    snapshots = history.replay_history(model_a, model_b, outcome, timestamp, MODELS, anchor=("late", 1114.0))
    early = [rows for cutoff, rows in snapshots if cutoff <= START + 100 * DAY and rows]
    later = [rows for cutoff, rows in snapshots if cutoff > START + 101 * DAY]
    assert early and later
    for rows in early:  # centred on the rated models' ratings weighted by their battles
        rated = [row for row in rows if row["rating"] is not None]
        assert len(rated) == len(rows)
        assert np.average([r["rating"] for r in rated], weights=[r["votes"] for r in rated]) == pytest.approx(1000.0)
    for rows in later:
        assert next(row["rating"] for row in rows if row["name"] == "late") == pytest.approx(1114.0)


def test_a_model_without_a_rating_adds_no_point_to_its_series_and_no_predicted_win_rate():
    snapshots = [(1, [{"name": "a", "rating": 990.0, "ci_lower": 970.0, "ci_upper": 1010.0},
                      {"name": "new", "rating": None, "ci_lower": None, "ci_upper": None}]),
                 (2, [{"name": "new", "rating": 1020.0, "ci_lower": 900.0, "ci_upper": 1100.0}])]  # fmt: skip
    assert history.snapshot_series(snapshots)["new"]["time"] == [2]
    pc = pair_outcome_counts(
        np.array([0, 1, 2, 3, 3]),
        np.array([1, 2, 0, 0, 1]),
        np.array([A_WINS, A_WINS, A_WINS, A_WINS, A_WINS]),
        ["a", "b", "c", "new"],
    )
    rates = history.average_win_rate(pc, predicted=True)
    assert np.isnan(rates[3]) and np.all(np.isfinite(rates[:3]))
    assert rates[:3] == pytest.approx([0.5, 0.5, 0.5])  # a cycle: three equals, the unbeaten newcomer aside
