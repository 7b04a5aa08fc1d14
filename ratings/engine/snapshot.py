"""How a snapshot fits its boards, in one place: the worker's recompute (ratings/services.py) and
`manage.py leaderboard` (re-deriving a snapshot's figures from its downloads) both call these, so that what
the command prints cannot drift from what a snapshot stores."""

from __future__ import annotations

from collections.abc import Callable

from ratings.engine.arena_votes import ArenaVotes, position_summary, style_board
from ratings.engine.categories import OVERALL, LabelledPairCounts, category_boards
from ratings.engine.counts import PairCounts
from ratings.engine.leaderboard import compute_leaderboard
from ratings.engine.robustness import robustness_summary, top_robustness

# Fewer arena votes and the style-controlled board is not fitted (its reason says so).
STYLE_MIN_VOTES = 200
# Fewer and the left-seat advantage is not reported.
POSITION_MIN_VOTES = 50


def overall_board(
    pc: PairCounts,
    *,
    rounds: int,
    seed: int,
    anchor: tuple[str, float] | None = None,
    bootstrap: bool = True,
    progress: Callable[[int, int], None] | None = None,
    ties: bool = True,
) -> dict:
    """The snapshot's own board: every battle, bootstrapped exactly (refitted to convergence each round); ties
    from the order-free pair counts (the left seat's effect is fitted from arena votes, `arena_vote_boards`)."""
    return compute_leaderboard(
        pc, rounds=rounds, seed=seed, anchor=anchor, bootstrap=bootstrap, progress=progress, ties=ties
    )


def categories(
    lpc: LabelledPairCounts, *, rounds: int, seed: int, min_votes: int, anchor: tuple[str, float] | None = None
) -> dict[str, dict]:
    """Every category's board with the shared bootstrap; not the overall one (`overall_board` is exact)."""
    boards = category_boards(lpc, rounds=rounds, seed=seed, min_votes=min_votes, anchor=anchor)
    boards.pop(OVERALL, None)
    return boards


def arena_vote_boards(
    votes: ArenaVotes, *, rounds: int, seed: int, style_min_votes: int, anchor: tuple[str, float] | None = None
) -> tuple[dict, dict]:
    """The style-controlled board and the left-seat effect, fitted on single arena votes."""
    style = style_board(votes, min_votes=style_min_votes, anchor=anchor, rounds=rounds, seed=seed)
    return style, position_summary(votes, min_votes=POSITION_MIN_VOTES)


def robustness(pc: PairCounts, *, top_k: int) -> dict:
    """How many votes the order of the top `top_k` rests on."""
    return robustness_summary(top_robustness(pc, top_k=top_k))
