"""Which models have a rating, and which ratings compare: the strongly connected "scored against" graph."""

import numpy as np

from ratings.engine import bradley_terry as bt
from ratings.engine.counts import A_WINS, B_WINS, TIE, PairCounts, pair_outcome_counts
from ratings.engine.rated_groups import NOT_RATED, board_note, round_groups, sure_links, unrated_notes
from ratings.engine.simulate import simulate_battles
from tests.ratings.engine.conftest import resampled_thin_boards


def board(models: list[str], rows: dict[tuple[int, int], list[int]]) -> PairCounts:
    """PairCounts from {(left, right): [a_wins, b_wins, tie, both_bad]}."""
    pairs = np.array(list(rows), dtype=np.int64).reshape(-1, 2)
    counts = np.array(list(rows.values()), dtype=np.int64).reshape(-1, 4)
    return PairCounts(models, pairs, counts)


def groups_of(pc: PairCounts):
    return bt.PairData.from_counts(pc).rated_groups()


def test_a_model_with_only_wins_or_only_losses_has_no_rating():
    pc = board(
        ["a", "b", "c", "winner", "loser"],
        {(0, 1): [5, 3, 0, 0], (1, 2): [4, 4, 0, 0], (2, 0): [2, 6, 0, 0], (3, 0): [2, 0, 0, 0], (4, 1): [0, 3, 0, 0]},
    )
    assert groups_of(pc).label.tolist() == [0, 0, 0, NOT_RATED, NOT_RATED]


def test_a_pair_that_only_beat_the_rest_has_no_rating_although_each_member_won_and_lost():
    # x and y beat each other, and only ever beat a, b and c: their offset to the rest is infinite.
    pc = board(
        ["a", "b", "c", "x", "y"],
        {(0, 1): [5, 3, 0, 0], (1, 2): [4, 4, 0, 0], (2, 0): [2, 6, 0, 0], (3, 4): [3, 2, 0, 0],
         (3, 0): [4, 0, 0, 0], (4, 2): [5, 0, 0, 0]},
    )  # fmt: skip
    assert groups_of(pc).label.tolist() == [0, 0, 0, NOT_RATED, NOT_RATED]


def test_a_tie_of_either_kind_links_two_models_both_ways():
    # "new" never lost, but a tie is half a win for each side: its rating exists.
    pc = board(["a", "b", "new"], {(0, 1): [5, 3, 0, 0], (2, 0): [3, 0, 0, 1], (2, 1): [2, 0, 0, 0]})
    assert groups_of(pc).label.tolist() == [0, 0, 0]


def test_models_that_never_met_form_groups_numbered_by_battles_most_first():
    pc = board(["small-a", "small-b", "big-a", "big-b"], {(0, 1): [2, 1, 0, 0], (2, 3): [50, 40, 0, 0]})
    groups = groups_of(pc)
    assert groups.label.tolist() == [1, 1, 0, 0]
    assert groups.battles.tolist() == [90, 3]


def test_rounds_that_keep_the_sure_links_have_the_datas_groups_and_the_rest_are_searched():
    # A thin model (3 battles) goes one-sided in many resamples; the shortcut must agree with a full search.
    model_a, model_b, outcome = simulate_battles(np.array([1000.0, 1050.0, 950.0, 1000.0]), 3000, seed=1)
    thin = np.array([4, 4, 4]), np.array([0, 1, 2]), np.array([A_WINS, B_WINS, TIE])
    pc = pair_outcome_counts(
        *(np.concatenate(pair) for pair in zip((model_a, model_b, outcome), thin, strict=True)),
        ["m0", "m1", "m2", "m3", "thin"],
    )
    data = bt.PairData.from_counts(pc)
    groups = data.rated_groups()
    assert groups.rated.all()
    cells = np.column_stack([data.a_wins, data.b_wins, data.ties]).astype(np.int64).ravel()
    draws = bt.multinomial_draws(np.random.default_rng(0), cells, 200).reshape(200, -1, 3).astype(float)
    score, totals = draws[:, :, 0] + 0.5 * draws[:, :, 2], draws.sum(axis=2)
    links = sure_links(groups, data.model_a, data.model_b, data.score_a, data.totals)
    searched = round_groups(groups, data.model_a, data.model_b, score, totals)
    shortcut = round_groups(groups, data.model_a, data.model_b, score, totals, links)
    assert np.array_equal(searched, shortcut)
    thin_out = searched[:, 4] == NOT_RATED
    assert 0.2 < thin_out.mean() < 0.8  # the thin model drops out of a good share of rounds...
    assert (searched[:, :4] == 0).all()  # ...and the well-sampled models never do


def test_notes_say_why_a_model_is_not_rated_and_the_board_note_counts_them():
    pc = board(
        ["a", "b", "c", "winner", "loser", "x", "y"],
        {(0, 1): [5, 3, 0, 0], (1, 2): [4, 4, 0, 0], (2, 0): [2, 6, 0, 0], (3, 0): [2, 0, 0, 0], (4, 1): [0, 3, 0, 0],
         (5, 6): [3, 2, 0, 0], (5, 0): [4, 0, 0, 0], (6, 2): [5, 0, 0, 0]},
    )  # fmt: skip
    data = bt.PairData.from_counts(pc)
    groups = data.rated_groups()
    notes = unrated_notes(groups, data.model_a, data.model_b, data.score_a, data.totals)
    assert notes[:3] == ["", "", ""]
    assert "only wins so far (2 battles)" in notes[3]
    assert "only losses so far (3 battles)" in notes[4]
    assert "only won against the rated models" in notes[5] and notes[5] == notes[6]
    note = board_note(groups, pc.votes_per_model())
    assert note.startswith("4 models are not rated yet") and "groups" not in note


def test_the_search_around_the_models_that_lost_a_sure_arrow_agrees_with_the_whole_search():
    """Random boards with thin models (and some with blocks that never meet), resampled: the search that
    looks only around the models whose paths lost a sure arrow gives every round the whole search's labels."""
    differing = 0
    for seed, data, groups, score, totals, links in resampled_thin_boards(range(80), rounds=40):
        whole = round_groups(groups, data.model_a, data.model_b, score, totals)
        assert np.array_equal(round_groups(groups, data.model_a, data.model_b, score, totals, links), whole), seed
        differing += int((whole != groups.label).any(axis=1).sum())
    assert differing > 500  # many rounds do lose a thin model, so the search around them is exercised
