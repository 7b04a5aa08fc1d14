"""How solid the top of the board is: how few removed votes would change #1, or swap two neighbours.

Ranking is by the ties-as-half-wins Bradley-Terry rating (as on the board). A "flip" means another model
ends up strictly ahead (by more than FLIP_TOLERANCE); a dead heat is not a flip.

Method. Votes are removed in an order chosen by their influence on the margin theta_leader -
theta_challenger: removing one vote of outcome y (score of side a) between a and b moves the fit by about
-H^-1 (y - p)(e_a - e_b) (H the Hessian of the fit), so the margin moves by -(y - p)(K_a - K_b) with
K = H^-1 (e_leader - e_challenger). Votes with the most negative effect go first: typically the leader's
wins over the challenger, its wins over others, the challenger's losses, and also ties the favourite was
expected to win (a tie scores half, below a favourite's expectation, so removing it *helps* the favourite
and is never chosen; a tie between underdog and favourite counts for the underdog). The linear plan
closes the margin, the fit is redone without those votes, and the plan is repeated from the new fit
until the order flips. Then a bisection with refits over that one ordering finds N such that removing its
first N votes flips the order and its first N - 1 do not; both are checked once more with the board's own
`fit_ratings` on the reduced counts (`verified`, `one_fewer_holds`). For #1, every other model is a
possible challenger: all are ranked by the first-order estimate at the full fit (one matrix inverse),
the `candidates` best (within twice the best estimate) are planned and verified, and the smallest
verified N is reported.

Only the board's main rated group takes part (`rated_groups.py`): a model without a rating, or in a group
that never met the main one, has no place in its order. A model that a removal leaves without a rating
(say, with only wins) is not ahead of anyone, just as the board would not rank it.

What this proves: removing the reported N votes does flip the order (an upper bound on the true minimum
over all sets of votes), and N is minimal along this ordering. It does not prove no other set of fewer
votes could flip it; on small arenas checked exhaustively in the tests it finds the true minimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from ratings.engine.bradley_terry import PairData, elo_units, fit_ratings, fit_theta, penalised_hessian
from ratings.engine.counts import A_WINS, B_WINS, BOTH_BAD, TIE, PairCounts
from ratings.engine.rated_groups import RatedGroups

# A challenger must lead by more than this (natural units, ~2e-7 Elo points) to count as ahead, so
# that a dead heat, where rounding decides the sign, is never reported as a flip.
FLIP_TOLERANCE = 1e-9
# Linear plans redone from a refit; each closes the remaining margin, so 2-4 rounds suffice in practice.
MAX_PLAN_ROUNDS = 20
# Challengers whose first-order estimate exceeds the best one's by more than this factor are not planned.
CANDIDATE_ESTIMATE_RATIO = 2.0
# Score of side a for the three side-merged cells: a wins, b wins, tie (either kind).
CELL_SCORES = np.array([1.0, 0.0, 0.5])


@dataclass(frozen=True)
class RemovedVotes:
    """Votes of one kind taken out: `count` battles of model_a (left) vs model_b (right) with `outcome`."""

    model_a: str
    model_b: str
    outcome: int  # code from counts.py: 0 = A wins, 1 = B wins, 2 = tie, 3 = both bad
    count: int

    def describe(self) -> str:
        """E.g. '120 x gpt-4o beat claude-3' or '15 x tie between gpt-4o and claude-3'."""
        if self.outcome == A_WINS:
            return f"{self.count} x {self.model_a} beat {self.model_b}"
        if self.outcome == B_WINS:
            return f"{self.count} x {self.model_b} beat {self.model_a}"
        kind = "tie" if self.outcome == TIE else "both-bad tie"
        return f"{self.count} x {kind} between {self.model_a} and {self.model_b}"


@dataclass(frozen=True)
class OrderFlip:
    """The fewest votes found whose removal puts `challenger` (or, for first place, anyone) ahead of `leader`."""

    leader: str
    challenger: str
    margin_elo: float  # the leader's lead on the full data
    votes_removed: int  # N
    removed: list[RemovedVotes]  # the N votes, grouped by (left model, right model, outcome)
    verified: bool  # a refit without the N votes has the leader overtaken
    one_fewer_holds: bool  # a refit without the first N - 1 votes of the same ordering keeps the leader ahead
    influence_estimate: int | None  # votes the first-order (influence) estimate at the full fit needs; None: can't
    ahead_after: str  # who is ahead after the removal (for first place: the new #1)
    refits: int  # fits run to find and check N


@dataclass(frozen=True)
class TopRobustness:
    """Robustness of #1 and of each adjacent pair in the top-k."""

    first_place: OrderFlip | None  # None if no removal among the candidates dethrones #1
    adjacent: list[OrderFlip | None]  # (#1, #2), (#2, #3), ...; None where no removal swaps them


def main_group_counts(pc: PairCounts, groups: RatedGroups | None = None) -> PairCounts:
    """The battles inside the board's main rated group (group 0), on the same model list."""
    groups = groups or PairData.from_counts(pc).rated_groups()
    if groups.is_single:
        return pc
    keep = (groups.label[pc.pairs[:, 0]] == 0) & (groups.label[pc.pairs[:, 1]] == 0)
    return PairCounts(pc.models, pc.pairs[keep], pc.counts[keep])


def _not_in_main_group_last(strengths: np.ndarray, data: PairData) -> np.ndarray:
    """Strengths with every model outside `data`'s main rated group at -inf: it is ahead of nobody."""
    groups = data.rated_groups()
    if groups.is_single:
        return strengths
    return np.where(groups.label == 0, np.nan_to_num(strengths, nan=0.0), -np.inf)


def _board_ratings(pc: PairCounts) -> np.ndarray:
    """The board's own ratings of `pc` (natural units), -inf for a model outside its main rated group."""
    return _not_in_main_group_last(fit_ratings(pc) * elo_units(), PairData.from_counts(pc))


class _Refitter:
    """Side-merged counts of a board's main rated group and refits of it with some votes removed (warm-started)."""

    def __init__(self, pc: PairCounts):
        pc = main_group_counts(pc)
        self.pc = pc
        self.data = PairData.from_counts(pc)
        self.cells = np.column_stack([self.data.a_wins, self.data.b_wins, self.data.ties])  # (P, 3)
        self.theta = fit_theta(self.data)
        self.refits = 0

    def fit_without(self, removed: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
        """Strengths (natural units) fitted without `removed` votes per cell, shape (P, 3)."""
        left = self.cells - removed
        data = PairData(self.data.n_models, self.data.model_a, self.data.model_b, left[:, 0], left[:, 1], left[:, 2])
        self.refits += 1
        return fit_theta(data, theta0=self.theta if start is None else start)

    def on_board(self, theta: np.ndarray, removed: np.ndarray) -> np.ndarray:
        """Strengths as the board would order them without `removed` votes: -inf for a model it leaves
        outside the main rated group (e.g. with only wins), so such a model is ahead of nobody."""
        left = self.cells - removed
        data = PairData(self.data.n_models, self.data.model_a, self.data.model_b, left[:, 0], left[:, 1], left[:, 2])
        return _not_in_main_group_last(theta, data)

    def margin_effects(self, theta: np.ndarray, removed: np.ndarray, leader: int, challengers) -> np.ndarray:
        """First-order change of theta_leader - theta_challenger per removed vote of each cell: (P, 3[, C])."""
        left = self.cells - removed
        data = PairData(self.data.n_models, self.data.model_a, self.data.model_b, left[:, 0], left[:, 1], left[:, 2])
        # One inverse serves every challenger: K = H^-1 (e_leader - e_challenger), column by column.
        inverse = np.linalg.inv(penalised_hessian(theta, data))
        k = inverse[:, [leader]] - inverse[:, np.atleast_1d(challengers)]  # (n, C)
        p = expit(theta[self.data.model_a] - theta[self.data.model_b])
        residual = CELL_SCORES[None, :] - p[:, None]  # (P, 3)
        effects = -residual[:, :, None] * (k[self.data.model_a] - k[self.data.model_b])[:, None, :]
        return effects if np.ndim(challengers) else effects[:, :, 0]


def _linear_plan(effects: np.ndarray, available: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Cells and counts, most effective first, whose summed first-order effect closes `margin`; and whether they do."""
    flat_effects, flat_available = effects.ravel(), available.ravel()
    helpful = np.flatnonzero((flat_effects < 0) & (flat_available > 0))
    order = helpful[np.argsort(flat_effects[helpful], kind="stable")]
    closes = -flat_effects[order] * flat_available[order]
    before = np.concatenate([[0.0], np.cumsum(closes)])
    if before[-1] <= margin:
        return order, flat_available[order].astype(np.int64), False
    last = int(np.searchsorted(before, margin, side="right")) - 1  # the cell in which the margin closes
    counts = flat_available[order[: last + 1]].astype(np.int64)
    # Enough of the last cell to close the margin, plus one so the linear estimate is strictly past it.
    counts[-1] = min(int(np.floor((margin - before[last]) / -flat_effects[order[last]])) + 1, counts[-1])
    return order[: last + 1], counts, True


def _expand(order_cells: list[np.ndarray], order_counts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate plan rounds into one ordering: cells and cumulative vote counts."""
    cells = np.concatenate(order_cells) if order_cells else np.zeros(0, dtype=np.int64)
    counts = np.concatenate(order_counts) if order_counts else np.zeros(0, dtype=np.int64)
    return cells, np.cumsum(counts)


def _prefix_removal(cells: np.ndarray, cumulative: np.ndarray, n_votes: int, shape: tuple[int, int]) -> np.ndarray:
    """Votes removed per cell (shape (P, 3)) when the first `n_votes` of the ordering are taken out."""
    taken = np.minimum(cumulative, n_votes) - np.concatenate([[0], np.minimum(cumulative, n_votes)[:-1]])
    removed = np.zeros(shape[0] * shape[1])
    np.add.at(removed, cells, taken)
    return removed.reshape(shape)


def _grouped_rows(pc: PairCounts, data: PairData, removed: np.ndarray) -> tuple[list[RemovedVotes], PairCounts]:
    """Side-merged removals spread back onto the board's own (left, right, outcome) rows; and the reduced board."""
    counts = pc.counts.copy()
    row_of = {(int(a), int(b)): index for index, (a, b) in enumerate(pc.pairs.tolist())}
    grouped = []
    for pair, cell in zip(*np.nonzero(removed), strict=True):
        low, high = int(data.model_a[pair]), int(data.model_b[pair])
        # Each merged cell collects these (row, outcome) sources; take from them in a fixed order.
        sources = {
            0: [((low, high), A_WINS), ((high, low), B_WINS)],
            1: [((low, high), B_WINS), ((high, low), A_WINS)],
            2: [((low, high), TIE), ((low, high), BOTH_BAD), ((high, low), TIE), ((high, low), BOTH_BAD)],
        }[int(cell)]
        still = int(round(removed[pair, cell]))
        for (left, right), outcome in sources:
            row = row_of.get((left, right))
            if row is None or still == 0:
                continue
            take = min(still, int(counts[row, outcome]))
            if take:
                counts[row, outcome] -= take
                still -= take
                grouped.append(RemovedVotes(pc.models[left], pc.models[right], outcome, take))
    grouped.sort(key=lambda group: -group.count)
    return grouped, PairCounts(pc.models, pc.pairs, counts)


def _removal_order(
    refitter: _Refitter, leader: int, challenger: int, flipped, reserved: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int | None] | None:
    """Plan removals against leader-vs-challenger, then bisect on N with refits: the ordering (cells and
    cumulative counts), N, and the first plan's vote count; None if no plan flips the order. `reserved`
    votes per cell are never taken."""
    shape = refitter.cells.shape
    removed = np.zeros(shape)
    theta = refitter.theta
    order_cells, order_counts = [], []
    influence_estimate = None
    in_group = refitter.data.active_models()

    def flipped_in_group(strengths: np.ndarray) -> bool:
        """`flipped`, with the models outside the main group (no battles here, strength 0) behind everyone."""
        return flipped(np.where(in_group, strengths, -np.inf))

    for _ in range(MAX_PLAN_ROUNDS):
        if flipped_in_group(theta):
            break
        margin = theta[leader] - theta[challenger] + FLIP_TOLERANCE
        effects = refitter.margin_effects(theta, removed, leader, challenger)
        cells, counts, closes = _linear_plan(effects, refitter.cells - removed - reserved, max(margin, 0.0))
        if influence_estimate is None:
            influence_estimate = int(counts.sum()) if closes else None
        if counts.sum() == 0:
            return None  # nothing left to remove that helps the challenger
        order_cells.append(cells)
        order_counts.append(counts)
        np.add.at(removed.reshape(-1), cells, counts)
        theta = refitter.fit_without(removed, start=theta)
    else:
        if not flipped_in_group(theta):
            return None
    cells, cumulative = _expand(order_cells, order_counts)
    if cumulative.size == 0:
        return None
    # Bisection over the ordering: `low` votes keep the order (0 does, on the full fit), `high` flip it.
    low, high = 0, int(cumulative[-1])
    while high - low > 1:
        middle = (low + high) // 2
        if flipped_in_group(refitter.fit_without(_prefix_removal(cells, cumulative, middle, shape))):
            high = middle
        else:
            low = middle
    return cells, cumulative, high, influence_estimate


def _find_flip(refitter: _Refitter, leader: int, challenger: int, flipped, *, whole_board: bool) -> OrderFlip | None:
    """Plan removals against leader-vs-challenger, bisect on N with refits, verify with the board's own fit.

    The plan and the bisection use the plain fit, in which a model left with only wins is infinitely far
    ahead; the board gives it no rating. When the N votes found would do that, the last vote of each cell
    they empty around such a model is kept back and the search runs again."""
    units = elo_units()
    shape = refitter.cells.shape
    pc, data = refitter.pc, refitter.data
    reserved = np.zeros(shape)
    for _ in range(MAX_PLAN_ROUNDS):
        found = _removal_order(refitter, leader, challenger, flipped, reserved)
        if found is None:
            return None
        cells, cumulative, high, influence_estimate = found
        removal = _prefix_removal(cells, cumulative, high, shape)
        lost = ~np.isfinite(refitter.on_board(refitter.theta, removal))
        lost &= np.isfinite(refitter.on_board(refitter.theta, np.zeros(shape)))
        emptied = (removal > 0) & (refitter.cells - removal <= 0) & (lost[data.model_a] | lost[data.model_b])[:, None]
        if not (emptied & (reserved == 0)).any():
            break
        reserved[emptied] = 1.0

    # Check both ends with the board's own fit on the reduced counts (cold start, independent of the above).
    grouped, reduced = _grouped_rows(pc, data, removal)
    _, one_fewer = _grouped_rows(pc, data, _prefix_removal(cells, cumulative, high - 1, shape))
    after = _board_ratings(reduced)
    before = _board_ratings(one_fewer)
    refitter.refits += 2
    # For first place, whoever leads after the removal; for a pair, which of the two is ahead.
    pair_winner = challenger if after[challenger] > after[leader] else leader
    ahead_after = int(np.argmax(after)) if whole_board else pair_winner
    return OrderFlip(
        leader=pc.models[leader],
        challenger=pc.models[challenger],
        margin_elo=float((refitter.theta[leader] - refitter.theta[challenger]) / units),
        votes_removed=high,
        removed=grouped,
        verified=bool(flipped(after)),
        one_fewer_holds=not flipped(before),
        influence_estimate=influence_estimate,
        ahead_after=pc.models[ahead_after],
        refits=refitter.refits,
    )


def votes_to_swap(pc: PairCounts, higher: int, lower: int, *, refitter: _Refitter | None = None) -> OrderFlip | None:
    """Fewest votes found whose removal puts model `lower` strictly ahead of model `higher` (indices)."""
    refitter = refitter or _Refitter(pc)
    start = refitter.refits

    def swapped(theta: np.ndarray) -> bool:
        """`lower` strictly ahead of `higher` (two models off the board, both at -inf, are not)."""
        with np.errstate(invalid="ignore"):
            return bool(theta[lower] - theta[higher] > FLIP_TOLERANCE)

    result = _find_flip(refitter, higher, lower, swapped, whole_board=False)
    return None if result is None else _with_refits(result, refitter.refits - start)


def votes_to_change_first_place(
    pc: PairCounts, *, candidates: int = 3, refitter: _Refitter | None = None
) -> OrderFlip | None:
    """Fewest votes found whose removal puts any model strictly ahead of today's #1."""
    refitter = refitter or _Refitter(pc)
    start = refitter.refits
    theta = refitter.theta
    active = refitter.data.active_models()
    ranked = np.flatnonzero(active)[np.argsort(-theta[active], kind="stable")]
    if ranked.size < 2:
        return None
    leader = int(ranked[0])

    def dethroned(strengths: np.ndarray) -> bool:
        """Someone other than the leader is strictly ahead of it (a model off the board, at -inf, never is)."""
        others = np.delete(strengths, leader)
        with np.errstate(invalid="ignore"):
            return bool(others.max() - strengths[leader] > FLIP_TOLERANCE)

    # Rank challengers by the first-order estimate at the full fit, then plan and verify the most promising.
    challengers = ranked[1:]
    all_effects = refitter.margin_effects(theta, np.zeros_like(refitter.cells), leader, challengers)
    estimates = []
    for column, challenger in enumerate(challengers.tolist()):
        margin = theta[leader] - theta[challenger] + FLIP_TOLERANCE
        _, counts, closes = _linear_plan(all_effects[:, :, column], refitter.cells, margin)
        estimates.append((int(counts.sum()) if closes else np.iinfo(np.int64).max, challenger))
    best = None
    shortlist = sorted(estimates)[:candidates]
    for estimate, challenger in shortlist:
        # First-order estimates land within ~10% of the verified counts on the real board; a challenger
        # estimated at over twice the best is not worth a dozen refits.
        if estimate > CANDIDATE_ESTIMATE_RATIO * shortlist[0][0]:
            break
        flip = _find_flip(refitter, leader, challenger, dethroned, whole_board=True)
        if flip is not None and flip.verified and (best is None or flip.votes_removed < best.votes_removed):
            best = flip
    return None if best is None else _with_refits(best, refitter.refits - start)


def _with_refits(flip: OrderFlip, refits: int) -> OrderFlip:
    """The flip with its refit count set to those spent on this question."""
    return OrderFlip(**{**flip.__dict__, "refits": refits})


def top_robustness(pc: PairCounts, *, top_k: int = 10, candidates: int = 3) -> TopRobustness:
    """Removals that change #1 and that swap each adjacent pair of the top-k, each verified by refits."""
    refitter = _Refitter(pc)
    active = refitter.data.active_models()
    ranked = np.flatnonzero(active)[np.argsort(-refitter.theta[active], kind="stable")][:top_k]
    first = votes_to_change_first_place(pc, candidates=candidates, refitter=refitter)
    adjacent = [
        votes_to_swap(pc, int(higher), int(lower), refitter=refitter)
        for higher, lower in zip(ranked[:-1], ranked[1:], strict=True)
    ]
    return TopRobustness(first_place=first, adjacent=adjacent)


def describe_flip(flip: OrderFlip, *, first_place: bool = False, shown: int = 3) -> str:
    """One plain sentence: who holds unless how many votes, and which."""
    subject = f"#1 {flip.leader}" if first_place else f"{flip.leader} ahead of {flip.challenger}"
    kinds = "; ".join(group.describe() for group in flip.removed[:shown])
    hidden = len(flip.removed) - shown
    more = f"; and {hidden} smaller group{'s' if hidden > 1 else ''}" if hidden > 0 else ""
    check = "verified by refit" if flip.verified and flip.one_fewer_holds else "NOT fully verified"
    return (
        f"{subject} (lead {flip.margin_elo:.1f} Elo points) holds unless {flip.votes_removed:,} votes are removed"
        f" ({kinds}{more}); then {flip.ahead_after} is ahead ({check})."
    )


def _flip_json(flip: OrderFlip | None, *, first_place: bool) -> dict | None:
    if flip is None:
        return None
    return {
        "leader": flip.leader,
        "challenger": flip.challenger,
        "ahead_after": flip.ahead_after,
        "margin_elo": float(flip.margin_elo),
        "votes_removed": int(flip.votes_removed),
        "verified": bool(flip.verified and flip.one_fewer_holds),
        "removed": [
            {
                "model_a": g.model_a,
                "model_b": g.model_b,
                "outcome": int(g.outcome),
                "count": int(g.count),
                "description": g.describe(),
            }
            for g in flip.removed
        ],  # fmt: skip
        "sentence": describe_flip(flip, first_place=first_place),
    }


def robustness_summary(result: TopRobustness) -> dict:
    """The result as plain JSON for a snapshot: #1 and each adjacent top pair, each with its sentence."""
    return {
        "first_place": _flip_json(result.first_place, first_place=True),
        "adjacent": [_flip_json(flip, first_place=False) for flip in result.adjacent],
    }
