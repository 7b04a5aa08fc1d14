"""How few removed votes change #1 or swap neighbours: exact on constructed arenas, verified on the real board."""

import itertools

import numpy as np
import pytest

from ratings.engine import bradley_terry as bt
from ratings.engine.counts import A_WINS, B_WINS, PairCounts, pair_outcome_counts
from ratings.engine.robustness import (
    FLIP_TOLERANCE,
    describe_flip,
    top_robustness,
    votes_to_change_first_place,
    votes_to_swap,
)
from ratings.engine.simulate import simulate_battles


def board(models: list[str], rows: dict[tuple[int, int], list[int]]) -> PairCounts:
    """PairCounts from {(left, right): [a_wins, b_wins, tie, both_bad]}."""
    pairs = np.array(list(rows), dtype=np.int64).reshape(-1, 2)
    counts = np.array(list(rows.values()), dtype=np.int64).reshape(-1, 4)
    return PairCounts(models, pairs, counts)


def without(pc: PairCounts, removed) -> PairCounts:
    """The board with the reported vote groups taken out of its own rows (independent of the engine's helper)."""
    counts = pc.counts.copy()
    for group in removed:
        row = next(
            k
            for k, (a, b) in enumerate(pc.pairs.tolist())
            if (pc.models[a], pc.models[b]) == (group.model_a, group.model_b)
        )
        counts[row, group.outcome] -= group.count
        assert counts[row, group.outcome] >= 0
    return PairCounts(pc.models, pc.pairs, counts)


def leader_of(pc: PairCounts) -> str:
    """Name of the highest-rated model."""
    return pc.models[int(np.argmax(bt.fit_ratings(pc)))]


@pytest.mark.parametrize("lead", [1, 3, 7])
def test_a_leader_ahead_by_k_decisive_head_to_head_votes_falls_after_exactly_k_plus_one_removals(lead):
    # Wins are split across both seatings and there are ties of both kinds; only the decisive lead matters:
    # with two models, theta_A - theta_B = log((wins_A + ties / 2) / (wins_B + ties / 2)).
    losses = 20
    wins = losses + lead
    pc = board(["A", "B"], {(0, 1): [wins - 5, 12, 6, 3], (1, 0): [losses - 12, 5, 4, 2]})
    flip = votes_to_change_first_place(pc)
    assert flip.votes_removed == lead + 1  # after k removals it is a dead heat, which is no flip
    assert flip.verified and flip.one_fewer_holds
    assert flip.ahead_after == "B" and flip.challenger == "B"
    assert sum(group.count for group in flip.removed) == lead + 1
    # Only A's wins are taken (from either seating); ties the favourite was expected to win are never removed.
    assert all((group.model_a, group.outcome) in {("A", A_WINS), ("B", B_WINS)} for group in flip.removed), flip.removed
    assert leader_of(without(pc, flip.removed)) == "B"


def exhaustive_minimum(pc: PairCounts, flipped, up_to: int) -> int | None:
    """Smallest number of removed votes (any combination, sides merged) that flips, searching up to `up_to`."""
    data = bt.PairData.from_counts(pc)
    cells = np.column_stack([data.a_wins, data.b_wins, data.ties]).astype(int)
    flat = cells.ravel()
    for size in range(1, up_to + 1):
        # Every way of taking `size` votes: combinations with repetition of cells, within their counts.
        for combo in itertools.combinations_with_replacement(range(flat.size), size):
            taken = np.bincount(combo, minlength=flat.size)
            if np.any(taken > flat):
                continue
            left = (flat - taken).reshape(cells.shape).astype(float)
            theta = bt.fit_theta(bt.PairData(data.n_models, data.model_a, data.model_b, *left.T))
            if flipped(theta):
                return size
    return None


# Seeds whose answer is 3-6 votes (many random small arenas fall after a single vote, a weak check).
@pytest.mark.parametrize(("n_models", "seed"), [(3, 2), (3, 3), (3, 5), (3, 13), (3, 20), (3, 27), (4, 1007)])
def test_first_place_removal_equals_the_exhaustive_minimum_on_small_arenas(n_models, seed):
    rng = np.random.default_rng(seed)
    # A handful of battles per pair: small enough to try every removal of up to N votes.
    if n_models == 3:
        rows = {(0, 1): rng.integers(0, 5, 4), (1, 2): rng.integers(0, 5, 4), (2, 0): rng.integers(0, 5, 4)}
    else:
        rows = {pair: rng.integers(0, 6, 4) for pair in itertools.combinations(range(n_models), 2)}
    pc = board([f"m{i}" for i in range(n_models)], {pair: counts.tolist() for pair, counts in rows.items()})
    leader = int(np.argmax(bt.fit_ratings(pc)))
    flip = votes_to_change_first_place(pc)
    assert flip is not None and flip.verified and flip.one_fewer_holds
    assert flip.votes_removed >= 3

    def dethroned(theta):
        return np.delete(theta, leader).max() - theta[leader] > FLIP_TOLERANCE

    assert exhaustive_minimum(pc, dethroned, flip.votes_removed) == flip.votes_removed
    assert leader_of(without(pc, flip.removed)) != pc.models[leader]


def simulated_board(seed: int = 0) -> PairCounts:
    """Six models, 6,000 battles with ties: a board with a clear order and some close neighbours."""
    ratings = np.array([1100.0, 1085.0, 1060.0, 1058.0, 1000.0, 950.0])
    model_a, model_b, outcome = simulate_battles(ratings, 6000, seed=seed)
    return pair_outcome_counts(model_a, model_b, outcome, [f"m{i}" for i in range(ratings.size)])


def test_each_reported_swap_flips_the_pair_on_an_independent_refit_and_one_fewer_does_not():
    pc = simulated_board()
    ratings = bt.fit_ratings(pc)
    order = np.argsort(-ratings)
    report = top_robustness(pc, top_k=4)
    assert len(report.adjacent) == 3
    for (higher, lower), flip in zip(zip(order[:3], order[1:4], strict=True), report.adjacent, strict=True):
        assert (flip.leader, flip.challenger) == (pc.models[higher], pc.models[lower])
        assert flip.verified and flip.one_fewer_holds
        assert sum(group.count for group in flip.removed) == flip.votes_removed
        refit = bt.fit_ratings(without(pc, flip.removed))
        assert refit[lower] > refit[higher]
    # Swapping #1 and #2 changes #1, so the first-place answer needs no more votes than that swap.
    assert report.first_place.verified
    assert report.first_place.votes_removed <= report.adjacent[0].votes_removed


def test_closer_neighbours_need_fewer_removals_than_a_wide_lead():
    pc = simulated_board(seed=1)
    ratings = bt.fit_ratings(pc)
    close = votes_to_swap(pc, 2, 3) if ratings[2] > ratings[3] else votes_to_swap(pc, 3, 2)
    wide = votes_to_swap(pc, 0, 5)
    assert close.verified and wide.verified
    assert close.votes_removed < wide.votes_removed


def test_first_order_estimate_is_close_to_the_verified_count_on_a_large_board():
    pc = simulated_board()
    flip = votes_to_change_first_place(pc)
    assert flip.verified and flip.one_fewer_holds
    assert abs(flip.influence_estimate - flip.votes_removed) <= 0.25 * flip.votes_removed + 2


def test_describe_flip_says_who_holds_unless_how_many_votes_and_which():
    pc = board(["A", "B"], {(0, 1): [13, 10, 2, 0]})
    text = describe_flip(votes_to_change_first_place(pc), first_place=True)
    assert text.startswith("#1 A (lead ")
    assert "holds unless 4 votes are removed (4 x A beat B); then B is ahead (verified by refit)." in text


def test_real_board_first_place_removal_is_verified_by_an_independent_refit(real_counts):
    flip = votes_to_change_first_place(real_counts)
    assert flip.leader == "chatgpt-4o-latest"
    assert flip.verified and flip.one_fewer_holds
    assert sum(group.count for group in flip.removed) == flip.votes_removed
    after = without(real_counts, flip.removed)
    assert leader_of(after) == flip.ahead_after != "chatgpt-4o-latest"
    # A lead of ~17 points on ~14,500 votes: a few hundred targeted votes, not a handful and not thousands.
    assert 50 < flip.votes_removed < 2000


def test_a_new_model_with_only_wins_is_not_the_leader_whose_lead_is_measured():
    pc = simulated_board()
    unbeaten = PairCounts(pc.models + ["new"], np.vstack([pc.pairs, [[6, 0], [1, 6]]]),
                          np.vstack([pc.counts, [[5, 0, 0, 0], [0, 3, 0, 0]]]))  # fmt: skip
    report = top_robustness(unbeaten, top_k=3)
    expected = top_robustness(pc, top_k=3)
    assert report.first_place.leader == expected.first_place.leader == "m0"
    assert report.first_place.votes_removed == expected.first_place.votes_removed
    assert all("new" not in (flip.leader, flip.challenger, flip.ahead_after) for flip in report.adjacent)


def test_a_removal_that_would_leave_the_challenger_with_only_wins_is_not_counted_as_a_flip():
    # Taking bravo's only loss would leave it 3-0: infinitely strong to a plain fit, but not rated on the
    # board, so not ahead of anyone. Alpha falls only once six of its wins over charlie are gone.
    pc = board(["alpha", "bravo", "charlie"], {(0, 2): [8, 1, 0, 0], (1, 2): [3, 1, 0, 0]})
    flip = votes_to_change_first_place(pc)
    assert flip.verified and flip.one_fewer_holds and flip.ahead_after == "bravo"
    assert flip.votes_removed == 6 and [(g.model_a, g.outcome) for g in flip.removed] == [("alpha", A_WINS)]
    left = without(pc, flip.removed)
    assert left.counts[1, B_WINS] == 1  # bravo keeps its loss: its rating exists
    refit = bt.fit_ratings(left)
    assert np.isfinite(refit).all() and int(np.argmax(refit)) == 1
