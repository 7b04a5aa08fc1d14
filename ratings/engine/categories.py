"""Category boards: overall, exclude-ties, one per prompt label and one per language, from shared work.

Input is "labelled pair counts": outcome counts per (ordered model pair, labels key), the key being
`ratings.prompt_labels.labels_key` ("en:cm" = English, coding, math). Every category is a union of such
fine cells (exclude-ties also drops the two tie columns), so its pair counts are plain sums.

The bootstrap draws Poisson weights, not multinomial ones. A sum of independent Poisson counts is again
Poisson, so whatever union of cells a board takes, its resample is exactly that board's own Poisson
bootstrap, overlaps or not. Multinomial weights are not closed that way: a multinomial draw over all
battles gives a category a random (binomial) total instead of its own, and no single multinomial draw is
the multinomial bootstrap of two overlapping categories at once. The Poisson bootstrap's total varies by
about sqrt(N) battles, which changes interval widths by O(1/N); it agrees with the multinomial one to
Monte Carlo noise (tested against `bootstrap_intervals`).

How the weights are drawn: numpy's Poisson sampler costs ~50 ns a number, and the boards need ~120k cells
a round, about 12x the overall board's; drawn plainly that alone is several times the overall board's
whole cost. So each cell's weights for all rounds come from a pool (`balanced_poisson_pools`): the
rounds' stratified quantiles of Poisson(count) in a shuffled order, read from a random start per cell.
Within a round every cell's weight is an independent draw from that discretised Poisson (CDF exact to
1/rounds); over the rounds each cell gets exactly the Poisson frequencies, as in the balanced bootstrap.
Rounds are not independent of each other (cells of equal count share a pool), but their correlation is
of order 1/sqrt(rounds) and averages out over cells; tests compare the intervals with `bootstrap_intervals`.

Which cells are drawn (`joint`):
- joint=True draws every fine cell (pair x outcome x labels signature), and every board is summed from
  that one resample, so differences between boards (a model's coding rating minus its overall one) have
  a proper joint bootstrap too.
- joint=False (default) draws the languages' cells (they partition the battles, the languages without a
  board pooled into one group) and sums the overall, exclude-ties and language boards from them; each flag
  board (coding, math, ...) gets its own cells. Every board is still exactly its own Poisson bootstrap;
  only the pairing of a flag board's rounds with the other boards' rounds is lost. It sums far fewer
  cells: on the benchmark split 124k against 295k (bench/categories.py times both).

Fits start from each board's own full-data fit and take `refit_steps` chord-Newton steps with that
board's full-data Hessian (one shared inverse per board, every round at once over a pairs x rounds layout:
strength differences gathered per pair, residuals summed per model by a sparse product; the first step
needs no exp since the probabilities are the full fit's).
refit_steps=None iterates to convergence with `bradley_terry.refit_rounds`. Two steps are the default:
on the real battles their interval endpoints are within a few hundredths of an Elo point of converged
refits for models with 5,000+ votes in a board, and within half a point at 1,000+ (tests and bench).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sparse
from scipy.special import expit, pdtr

from ratings.engine import bradley_terry as bt
from ratings.engine.counts import A_WINS, B_WINS, BOTH_BAD, N_OUTCOMES, TIE, PairCounts
from ratings.engine.leaderboard import comparison_summary, model_rows
from ratings.engine.newton import MAX_STEP
from ratings.engine.rated_groups import NOT_RATED, RatedGroups, SureLinks, sure_links
from ratings.prompt_labels import FLAGS, UNDETERMINED, parse_labels_key

OVERALL = "overall"
EXCLUDE_TIES = "exclude_ties"
LANGUAGE_PREFIX = "language:"
# Below about a thousand battles most models' intervals span much of the board; such a board says little.
DEFAULT_MIN_VOTES = 1000
# Two chord steps from each board's full fit (see the module docstring for their measured error).
DEFAULT_REFIT_STEPS = 2


@dataclass(frozen=True)
class LabelledPairCounts:
    """Outcome counts per (ordered model pair, labels key): the fine cells every category is summed from."""

    models: list[str]
    pairs: np.ndarray  # (K, 2) int: (a, b) = (left, right) model indices
    keys: list[str]  # (K,) labels key of each row
    counts: np.ndarray  # (K, 4) int64: a_wins, b_wins, tie, both_bad

    @classmethod
    def from_battles(
        cls,
        model_a: np.ndarray,
        model_b: np.ndarray,
        outcome: np.ndarray,
        keys: Sequence[str],
        models: list[str],
    ) -> LabelledPairCounts:
        """Aggregate per-battle arrays and each battle's labels key into fine cells."""
        model_a = np.asarray(model_a, dtype=np.int64)
        model_b = np.asarray(model_b, dtype=np.int64)
        outcome = np.asarray(outcome, dtype=np.int64)
        distinct_keys, key_index = np.unique(np.asarray(keys, dtype=str), return_inverse=True)
        for key in distinct_keys.tolist():
            parse_labels_key(key)  # fail here, on the bad key, rather than deep inside a board
        n = len(models)
        row_key = (model_a * n + model_b) * distinct_keys.size + key_index
        rows, inverse = np.unique(row_key, return_inverse=True)
        counts = np.bincount(inverse * N_OUTCOMES + outcome, minlength=rows.size * N_OUTCOMES)
        pair_key, key_of_row = rows // distinct_keys.size, rows % distinct_keys.size
        pairs = np.column_stack([pair_key // n, pair_key % n])
        return cls(list(models), pairs, distinct_keys[key_of_row].tolist(), counts.reshape(-1, N_OUTCOMES))

    @cached_property
    def row_labels(self) -> dict[str, np.ndarray]:
        """Per row: "language" (index into `languages`) and one boolean array per flag; keys parsed once each."""
        distinct, inverse = np.unique(np.asarray(self.keys, dtype=str), return_inverse=True)
        parsed = [parse_labels_key(key) for key in distinct.tolist()]
        codes = sorted({p.language for p in parsed})
        labels = {"language": np.array([codes.index(p.language) for p in parsed], dtype=np.int64)[inverse.ravel()]}
        for flag in FLAGS:
            labels[flag] = np.array([getattr(p, flag) for p in parsed], dtype=bool)[inverse.ravel()]
        return labels

    @cached_property
    def languages(self) -> list[str]:
        """The distinct language codes among the rows, sorted; `row_labels["language"]` indexes into it."""
        return sorted({parse_labels_key(key).language for key in set(self.keys)})

    @cached_property
    def row_battles(self) -> dict[bool, np.ndarray]:
        """Per row, its battles: [False] all of them, [True] the decisive ones (ties dropped)."""
        return {False: self.counts.sum(axis=1), True: self.counts[:, A_WINS] + self.counts[:, B_WINS]}

    @cached_property
    def ordered_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct ordered pairs (P, 2), sorted, and each row's index among them."""
        n = max(len(self.models), 1)
        keys, inverse = np.unique(self.pairs[:, 0] * n + self.pairs[:, 1], return_inverse=True)
        return np.column_stack([keys // n, keys % n]).astype(np.int64), inverse.ravel()

    def total(self) -> PairCounts:
        """All fine cells summed per ordered pair: the overall counts."""
        return self.summed(np.ones(len(self.keys), dtype=bool))

    def summed(self, rows: np.ndarray, decisive_only: bool = False) -> PairCounts:
        """The selected rows summed per ordered pair (ties dropped if decisive_only), empty pairs left out."""
        pairs, pair_index = self.ordered_pairs
        selected = np.flatnonzero(rows)
        outcomes = [A_WINS, B_WINS] if decisive_only else range(N_OUTCOMES)
        counts = np.zeros((pairs.shape[0], N_OUTCOMES), dtype=np.int64)
        for k in outcomes:
            counts[:, k] = np.bincount(pair_index[selected], self.counts[selected, k], pairs.shape[0])
        keep = counts.sum(axis=1) > 0
        return PairCounts(list(self.models), pairs[keep], counts[keep])


@dataclass(frozen=True)
class Category:
    """One board: all battles, those with a flag, or those in a language; optionally decisive ones only."""

    name: str
    flag: str | None = None
    language: str | None = None
    decisive_only: bool = False

    def rows(self, lpc: LabelledPairCounts) -> np.ndarray:
        """Which fine cells belong to this category (before dropping ties)."""
        labels = lpc.row_labels
        mask = np.ones(len(lpc.keys), dtype=bool)
        if self.flag is not None:
            mask &= labels[self.flag]
        if self.language is not None:
            code = lpc.languages.index(self.language) if self.language in lpc.languages else -1
            mask &= labels["language"] == code
        return mask

    def battles(self, lpc: LabelledPairCounts) -> int:
        """Battles in this category."""
        return int(lpc.row_battles[self.decisive_only][self.rows(lpc)].sum())

    def counts(self, lpc: LabelledPairCounts) -> PairCounts:
        """This category's pair counts, sides kept."""
        return lpc.summed(self.rows(lpc), self.decisive_only)


def category_definitions(lpc: LabelledPairCounts, *, min_votes: int = DEFAULT_MIN_VOTES) -> list[Category]:
    """Overall, then exclude-ties, the flags and the languages (most battles first) with >= min_votes battles."""
    candidates = [Category(EXCLUDE_TIES, decisive_only=True)]
    candidates += [Category(flag, flag=flag) for flag in FLAGS]
    languages = [Category(LANGUAGE_PREFIX + code, language=code) for code in lpc.languages if code != UNDETERMINED]
    battles = {c.name: c.battles(lpc) for c in candidates + languages}
    candidates += sorted(languages, key=lambda c: (-battles[c.name], c.name))
    # The overall board is always shown: it is the plain leaderboard, however young the arena.
    return [Category(OVERALL)] + [c for c in candidates if battles[c.name] >= min_votes]


def category_order(boards: dict[str, dict]) -> list[str]:
    """The names of stored category boards in `category_definitions` order (exclude-ties, the flags, then
    the languages, most battles first), whatever order the store kept them in: PostgreSQL's jsonb, for
    one, sorts an object's keys by length."""

    def key(name: str) -> tuple:
        if name == EXCLUDE_TIES:
            return (0, 0, name)
        if name in FLAGS:
            return (1, FLAGS.index(name), name)
        return (2, -boards[name].get("n_battles", 0), name)

    return sorted(boards, key=key)


def category_counts(lpc: LabelledPairCounts, *, min_votes: int = DEFAULT_MIN_VOTES) -> dict[str, PairCounts]:
    """Each category's pair counts (sides kept), in `category_definitions` order."""
    return {c.name: c.counts(lpc) for c in category_definitions(lpc, min_votes=min_votes)}


def _board_anchor(pc: PairCounts, anchor: tuple[str, float] | None, groups: RatedGroups) -> tuple[str, float] | None:
    """The anchor if its model has a rating on this board; otherwise None (the board is mean-centred)."""
    if anchor is None or anchor[0] not in pc.models:
        return None
    return anchor if groups.label[pc.models.index(anchor[0])] != NOT_RATED else None


@dataclass
class _Board:
    """One category's counts, full-data fit, and where its pairs sit among the aggregated slots."""

    category: Category
    counts: PairCounts
    anchor: tuple[str, float] | None
    data: bt.PairData
    groups: RatedGroups  # which models have a rating on this board, and which compare
    slot_offset: int  # first of its 2 * pairs slots: (score, battles) per side-merged pair
    # Set by `_fit_board`:
    theta: np.ndarray | None = None  # full-data strengths
    ratings: np.ndarray | None = None  # full-data Elo ratings
    sandwich: tuple[np.ndarray, np.ndarray] | None = None  # sandwich interval bounds

    @property
    def anchor_index(self) -> tuple[int, float] | None:
        """Anchor as (model index, rating), as `to_elo` takes it."""
        return None if self.anchor is None else (self.counts.models.index(self.anchor[0]), float(self.anchor[1]))


def _boards_to_fit(lpc: LabelledPairCounts, *, min_votes: int, anchor: tuple[str, float] | None) -> list[_Board]:
    """Every category's board with its counts and place among the slots, not yet fitted."""
    boards, slot_offset = [], 0
    for category in category_definitions(lpc, min_votes=min_votes):
        pc = category.counts(lpc)
        data = bt.PairData.from_counts(pc)
        groups = data.rated_groups()
        boards.append(_Board(category, pc, _board_anchor(pc, anchor, groups), data, groups, slot_offset))
        slot_offset += 2 * data.model_a.size
    return boards


def _fit_board(board: _Board, level: float, bootstrap: bool) -> _Refit | None:
    """Fit the board to its counts, with sandwich intervals; and what its bootstrap refits need, if asked."""
    # Each full fit starts from zero, as `fit_ratings` does, so a board equals the plain board of its
    # counts bit for bit (a warm start from the overall fit would save a step but not that).
    board.theta = bt.fit_theta(board.data, groups=board.groups)
    board.ratings = bt.to_elo(board.theta, board.groups, board.anchor_index, bt.elo_units(), 1000.0)[0]
    board.sandwich = bt.sandwich_intervals(
        board.counts, board.ratings, level=level, anchor=board.anchor, groups=board.groups
    )
    return _Refit.of(board) if bootstrap else None


def category_boards(
    lpc: LabelledPairCounts,
    *,
    rounds: int = 1000,
    seed: int = 0,
    min_votes: int = DEFAULT_MIN_VOTES,
    anchor: tuple[str, float] | None = None,
    level: float = 0.95,
    refit_steps: int | None = DEFAULT_REFIT_STEPS,
    joint: bool = False,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict]:
    """Every category's board (rows as in `compute_leaderboard`); rounds=0 gives sandwich intervals only."""
    boards = _boards_to_fit(lpc, min_votes=min_votes, anchor=anchor)
    workers = threads if threads is not None else min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        # The boards' fits run on the pool while this thread draws the bootstrap's weights: one after the
        # other they were a third of the wall time, with a core idle.
        fitting = [pool.submit(_fit_board, board, level, rounds > 0) for board in boards]
        weights = _BootstrapWeights.draw(lpc, boards, rounds, seed, joint) if rounds else None
        refits = [future.result() for future in fitting]
        samples = _shared_bootstrap(pool, weights, refits, rounds, refit_steps, progress) if rounds else None
    result = {}
    for index, board in enumerate(boards):
        pc = board.counts
        sandwich_lower, sandwich_upper = board.sandwich
        if samples is None:
            ci_lower, ci_upper = sandwich_lower, sandwich_upper
        else:
            ci_lower, ci_upper = bt.percentile_intervals(samples[index], level)
        rows, _ = model_rows(
            pc, board.ratings, ci_lower, ci_upper, sandwich_lower, sandwich_upper, data=board.data, groups=board.groups
        )
        dropped = anchor[0] if anchor and anchor[0] in pc.models and board.anchor is None else None
        result[board.category.name] = {
            "category": board.category.name,
            "n_battles": pc.n_battles,
            "intervals": "sandwich" if samples is None else "bootstrap",
            "rounds": 0 if samples is None else rounds,
            "seed": seed,
            "level": level,
            "refit_steps": None if samples is None else refit_steps,
            "anchor": None if board.anchor is None else {"model": board.anchor[0], "rating": float(board.anchor[1])},
            "models": rows,
            **comparison_summary(pc.models, board.groups, pc.votes_per_model(), anchor_dropped=dropped),
        }
    return result


def _draw_cells(lpc: LabelledPairCounts, boards: list[_Board], joint: bool) -> tuple[np.ndarray, sparse.csr_matrix]:
    """Counts of the cells drawn each round, and the sparse (slots, cells) map summing them into boards."""
    n = len(lpc.models)
    labels = lpc.row_labels
    # Side-merged pair and (a wins, b wins, tie) counts of every fine cell.
    swap = lpc.pairs[:, 0] > lpc.pairs[:, 1]
    merged_pair = np.where(swap, lpc.pairs[:, 1] * n + lpc.pairs[:, 0], lpc.pairs[:, 0] * n + lpc.pairs[:, 1])
    merged = np.column_stack(
        [
            np.where(swap, lpc.counts[:, B_WINS], lpc.counts[:, A_WINS]),
            np.where(swap, lpc.counts[:, A_WINS], lpc.counts[:, B_WINS]),
            lpc.counts[:, TIE] + lpc.counts[:, BOTH_BAD],
        ]
    )
    language_boards = [b.category.language for b in boards if b.category.language is not None]
    flag_boards = [b.category.flag for b in boards if b.category.flag is not None]
    # Language group of each fine cell: its board's index, or one pooled group for languages without one.
    n_groups = len(language_boards) + 1
    language_group = np.full(len(lpc.keys), len(language_boards), dtype=np.int64)
    for index, code in enumerate(language_boards):
        language_group[labels["language"] == lpc.languages.index(code)] = index
    flag_bits = np.zeros(len(lpc.keys), dtype=np.int64)
    for bit, flag in enumerate(FLAGS):
        flag_bits |= labels[flag].astype(np.int64) << bit
    # Draw groups: (group id, block of each fine cell within the group, which fine cells take part).
    everyone = np.ones(len(lpc.keys), dtype=bool)
    if joint:
        groups = [(0, flag_bits * n_groups + language_group, everyone)]
    else:
        groups = [(0, language_group, everyone)]
        groups += [(g, np.zeros(len(lpc.keys), np.int64), labels[f]) for g, f in enumerate(flag_boards, start=1)]
    n_blocks = 16 * n_groups
    # Ordered by group, then pair, then block, then outcome: a board slot's cells lie next to each other in
    # memory. The fine cells are merged per (group, pair, block) first and the three outcomes added after:
    # sorting a third as many keys (np.unique was 49 of a snapshot draw's 127 ms).
    keys = [(group * n * n + merged_pair[member]) * n_blocks + block[member] for group, block, member in groups]
    cell_counts = np.concatenate([merged[member] for _, _, member in groups])
    places, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    by_outcome = np.column_stack([np.bincount(inverse, cell_counts[:, k], places.size) for k in range(3)])
    drawn = (places[:, None] * 3 + np.arange(3)).ravel()
    drawn_counts = by_outcome.ravel().astype(np.int64)
    drawn, drawn_counts = drawn[drawn_counts > 0], drawn_counts[drawn_counts > 0]
    outcome = drawn % 3
    block = (drawn // 3) % n_blocks
    pair = (drawn // (3 * n_blocks)) % (n * n)
    group = drawn // (3 * n_blocks * n * n)
    # Each drawn cell adds its weight to its pair's battles slot, and (1, 0, 1/2 by outcome) to the score slot.
    score_share = np.array([1.0, 0.0, 0.5])[outcome]
    rows, cols, values = [], [], []
    for board in boards:
        category = board.category
        if joint:
            member = np.ones(drawn.size, dtype=bool)
            if category.flag is not None:
                member &= ((block // n_groups) >> FLAGS.index(category.flag)) & 1 == 1
            if category.language is not None:
                member &= block % n_groups == language_boards.index(category.language)
        elif category.flag is not None:
            member = group == 1 + flag_boards.index(category.flag)
        else:
            member = group == 0
            if category.language is not None:
                member &= block == language_boards.index(category.language)
        if category.decisive_only:
            member &= outcome != 2
        cells = np.flatnonzero(member)
        position = np.searchsorted(board.data.model_a * n + board.data.model_b, pair[cells])
        slot = board.slot_offset + 2 * position
        rows += [slot, slot + 1]
        cols += [cells, cells]
        values += [score_share[cells], np.ones(cells.size)]
    n_slots = sum(2 * b.data.model_a.size for b in boards)
    aggregate = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n_slots, drawn.size)
    )
    aggregate.eliminate_zeros()
    return drawn_counts, aggregate


def balanced_poisson_pools(counts: np.ndarray, rounds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's Poisson(count) weights for all rounds, as windows into shared pools: (pools, starts).

    Cell c's weight in round r is pools[starts[c] + r]. Every cell gets the `rounds` stratified quantiles
    of Poisson(count), (j + 1/2) / rounds for j < rounds, in a random order (balanced: exact Poisson
    frequencies over the rounds, to 1/rounds). Cells with the same count read one shuffled pool from
    independent uniform starting points, so within a round their weights are independent draws from it.
    """
    counts = np.asarray(counts, dtype=np.int64)
    distinct, inverse = np.unique(counts, return_inverse=True)
    # Support wide enough to hold every quantile point: beyond k +- (6 sqrt(k) + 6) lies < 1e-9 of the mass.
    half_width = np.ceil(6.0 * np.sqrt(distinct)).astype(np.int64) + 6
    low = np.maximum(distinct - half_width, 0)
    length = distinct + half_width - low + 1
    table = np.repeat(np.arange(distinct.size), length)
    value = low[table] + np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    # Quantile points at or below CDF(x): ceil(rounds * CDF(x) - 1/2); each value x is repeated by how
    # many quantile points fall between CDF(x - 1) and CDF(x). The last value of each table takes the rest.
    reached = np.ceil(rounds * pdtr(value, distinct[table]) - 0.5).astype(np.int64)
    last = np.cumsum(length) - 1
    reached[last] = rounds
    before = np.concatenate([[0], reached[:-1]])
    below_support = np.where(low > 0, pdtr(np.maximum(low - 1, 0), distinct), 0.0)
    before[np.cumsum(length) - length] = np.ceil(rounds * below_support - 0.5).astype(np.int64).clip(0)
    quantiles = np.repeat(value, reached - before).reshape(distinct.size, rounds)
    shuffled = rng.permuted(quantiles, axis=1)
    # Doubled, so a window of `rounds` from any starting point below `rounds` is a rotation of the pool.
    pools = np.concatenate([shuffled, shuffled], axis=1).astype(np.float32).ravel()
    starts = inverse * 2 * rounds + rng.integers(0, rounds, counts.size)
    return pools, starts


def _logistic_inplace(x: np.ndarray) -> np.ndarray:
    """x <- 1 / (1 + exp(-x)), float32 in place: numpy's vectorised exp makes this ~2.8x faster than scipy's
    expit on a board's (pairs, rounds) block (0.48 against 1.35 ms for 150,000 values), as accurate (largest
    error against float64 8.5e-8 for both). exp overflows to inf below -88, giving the right 0."""
    np.negative(x, out=x)
    with np.errstate(over="ignore"):
        np.exp(x, out=x)
    x += 1.0
    return np.reciprocal(x, out=x)


def _incidence(data: bt.PairData) -> sparse.csr_matrix:
    """(pairs, models) matrix with +1 at each pair's side A and -1 at side B: theta differences per pair."""
    pairs = data.model_a.size
    rows = np.repeat(np.arange(pairs), 2)
    cols = np.column_stack([data.model_a, data.model_b]).ravel()
    values = np.tile([1.0, -1.0], pairs)
    return sparse.csr_matrix((values, (rows, cols)), shape=(pairs, data.n_models))


@dataclass
class _Refit:
    """What each round's refit of one board needs, computed once per bootstrap."""

    board: _Board
    chord_inverse: np.ndarray  # inverse of the full-data penalised Hessian
    scatter: sparse.csr_matrix  # (models, pairs): per-pair residuals summed per model
    full_p: np.ndarray  # (pairs, 1) float32 win probabilities of side A at the full fit
    links: SureLinks  # arrows that keep the board's groups together (`sure_links`)

    @classmethod
    def of(cls, board: _Board) -> _Refit:
        """Precompute the board's chord matrix, residual scatter and full-fit probabilities."""
        incidence = _incidence(board.data)
        chord_inverse = np.linalg.inv(bt.penalised_hessian(board.theta, board.data, board.groups))
        full_p = expit(incidence @ board.theta).astype(np.float32)[:, None]
        data = board.data
        links = sure_links(board.groups, data.model_a, data.model_b, data.score_a, data.totals)
        return cls(board, chord_inverse, incidence.T.tocsr().astype(np.float32), full_p, links)

    def chord_steps(self, score: np.ndarray, battles: np.ndarray, steps: int) -> np.ndarray:
        """`steps` chord-Newton steps from the full fit; score and battles (pairs, R) -> strengths (R, M)."""
        # Pairs x rounds layout: the sparse products run along contiguous rows of R values. Per-pair work
        # is float32 (half the memory traffic): residuals of up to ~10^4 battles then carry ~10^-3 absolute
        # error, which moves a step by ~10^-6 natural units; strengths and steps stay float64 (cast to float32
        # only for their differences: each rounded to ~1e-7 of itself, so a difference carries ~1e-6 natural units
        # at most; 3.4e-5 Elo at most in any bound of bench/categories.py).
        n = self.board.data.n_models
        model_a, model_b = self.board.data.model_a, self.board.data.model_b
        theta = np.repeat(self.board.theta[:, None], score.shape[1], axis=1)
        # The first step's win probabilities are the full fit's, the same in every round: no logistic needed.
        p = self.full_p
        for step in range(steps):
            if step:
                strengths = theta.astype(np.float32)
                p = strengths[model_a]
                p -= strengths[model_b]
                _logistic_inplace(p)
            residual = battles * p
            np.subtract(score, residual, out=residual)
            gradient = (self.scatter @ residual).astype(np.float64)
            if self.board.groups.is_single:
                gradient -= bt.RIDGE * theta + theta.sum(axis=0, keepdims=True) / n
            else:
                gradient -= bt.RIDGE * theta + bt.gauge_gradient(theta.T, self.board.groups).T
            update = self.chord_inverse @ gradient
            largest = np.abs(update).max(axis=0, keepdims=True)
            theta += update * np.minimum(1.0, MAX_STEP / np.maximum(largest, 1e-300))
        return theta.T

    def converged(self, score: np.ndarray, battles: np.ndarray) -> np.ndarray:
        """Chord iterations to convergence (`refit_rounds`): strengths (R, M)."""
        # The likelihood sees only score and battles per pair: score as a-wins and the rest as b-wins is exact.
        score, battles = score.astype(np.float64), battles.astype(np.float64)
        theta, _ = bt.refit_rounds(
            self.board.data, self.board.theta, score.T.copy(), (battles - score).T.copy(), np.zeros_like(score.T),
            groups=self.board.groups,
        )  # fmt: skip
        return theta


@dataclass
class _BootstrapWeights:
    """Every round's Poisson weights of the drawn cells (`balanced_poisson_pools`) and the sparse map that
    sums them into the boards' slots."""

    pools: np.ndarray
    starts: np.ndarray
    aggregate: sparse.csc_matrix  # (slots, cells) float32

    @classmethod
    def draw(
        cls, lpc: LabelledPairCounts, boards: list[_Board], rounds: int, seed: int, joint: bool
    ) -> _BootstrapWeights:
        """The weights of `rounds` rounds, drawn from `seed`."""
        drawn_counts, aggregate = _draw_cells(lpc, boards, joint)
        pools, starts = balanced_poisson_pools(drawn_counts, rounds, np.random.default_rng(seed))
        # Float32 sums of weights times 1 or 1/2 are exact below 2**23, far above any board's battles per pair. By
        # columns: each cell's weights are read once and added to its few slots (9.4 against 12.6 ms a chunk
        # by rows, the same sums).
        return cls(pools, starts, aggregate.astype(np.float32).tocsc())

    def chunk(self, first: int, size: int) -> np.ndarray:
        """The slots (score, battles per board pair) of rounds first..first+size-1: (slots, size)."""
        # Each cell's window of `size` weights, copied row by row from the pools: (cells, size).
        weights = np.lib.stride_tricks.sliding_window_view(self.pools, size)[self.starts + first]
        return self.aggregate @ weights  # float32, exact (above)


def _shared_bootstrap(
    pool: ThreadPoolExecutor,
    weights: _BootstrapWeights,
    refits: list[_Refit],
    rounds: int,
    refit_steps: int | None,
    progress: Callable[[int, int], None] | None,
) -> list[np.ndarray]:
    """Bootstrap ratings (rounds, M) per board, all boards refitted on the same Poisson weights each round."""
    chunk_starts = list(range(0, rounds, bt.BOOTSTRAP_CHUNK))
    chunk_sizes = [min(bt.BOOTSTRAP_CHUNK, rounds - start) for start in chunk_starts]

    def run_chunk(first: int, size: int) -> list[np.ndarray]:
        """Rounds first..first+size-1 summed into every board's slots, each board refitted."""
        slots = weights.chunk(first, size)
        out = []
        for refit in refits:
            board = refit.board
            pairs = board.data.model_a.size
            score = slots[board.slot_offset : board.slot_offset + 2 * pairs : 2]
            battles = slots[board.slot_offset + 1 : board.slot_offset + 2 * pairs : 2]
            # A round's models without a rating there (no battles, or a one-sided record) leave its fit.
            model_a, model_b = board.data.model_a, board.data.model_b
            labels, keep = bt.rated_in_rounds(board.groups, model_a, model_b, score.T, battles.T, refit.links)
            kept_score, kept_battles = (score, battles) if keep.all() else (score * keep.T, battles * keep.T)
            if refit_steps is None:
                theta = refit.converged(kept_score, kept_battles)
            else:
                theta = refit.chord_steps(kept_score, kept_battles, refit_steps)
            ratings = bt.to_elo(theta, labels, board.anchor_index, bt.elo_units(), 1000.0, weights=board.groups.played)
            out.append(
                bt.with_unrated_rounds(
                    ratings, labels, board.groups, model_a, model_b, score.T, battles.T, board.anchor_index
                )
            )
        return out

    samples = [np.empty((rounds, refit.board.data.n_models)) for refit in refits]
    futures = [pool.submit(run_chunk, f, s) for f, s in zip(chunk_starts, chunk_sizes, strict=True)]
    for future, first, size in zip(futures, chunk_starts, chunk_sizes, strict=True):
        for index, chunk in enumerate(future.result()):
            samples[index][first : first + size] = chunk
        if progress is not None:
            progress(first + size, rounds)
    return samples


def canonical_json(data: dict) -> str:
    """The one serialisation a download's sha256 is taken over: sorted keys, no spaces."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def labelled_counts_json(lpc: LabelledPairCounts) -> dict:
    """The shared pair-counts format `{"models", "X", "Y"}` plus "L", each row's labels key, rows sorted:
    `manage.py leaderboard --pair-counts` reads it (X and Y alone give the overall counts)."""
    order = sorted(range(len(lpc.keys)), key=lambda k: (*lpc.pairs[k].tolist(), lpc.keys[k]))
    return {
        "models": list(lpc.models),
        "X": [lpc.pairs[k].tolist() for k in order],
        "Y": [lpc.counts[k].tolist() for k in order],
        "L": [lpc.keys[k] for k in order],
    }


def labelled_counts_from_json(data: dict) -> LabelledPairCounts:
    """The inverse of `labelled_counts_json`; rows without labels ("L" absent) are undetermined."""
    pairs = np.asarray(data["X"], dtype=np.int64).reshape(-1, 2)
    counts = np.asarray(data["Y"], dtype=np.int64).reshape(-1, N_OUTCOMES)
    keys = list(data.get("L") or [UNDETERMINED + ":"] * len(pairs))
    for key in set(keys):
        parse_labels_key(key)
    return LabelledPairCounts(list(data["models"]), pairs, keys, counts)
