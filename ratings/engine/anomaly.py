"""Anomalous judges: how unlikely each judge's votes are under the current fit.

The fit is an (M, M, 4) table of outcome probabilities per ordered (left, right) pair. The recommended
table is the two-tie Davidson model of `ties.py` (`outcome_table_from_counts`): Bradley-Terry strengths,
ties likeliest between equals, per-model both-bad propensities (with a weak prior toward the average, so a
model that has not had a both-bad vote yet is fitted as less prone to one, not as never), all fitted from
the same counts as the snapshot. `outcome_table_from_ratings` is the simple alternative from Elo ratings
plus overall tie and both-bad rates. Under the null hypothesis an honest judge's votes are independent
draws from that table. A vote on a pair the table leaves NaN (a model without a rating yet, or two groups
of models that never met: see `outcome_table_from_counts`) has no prediction to test, so it is left out of
every test.

Each judge is screened on up to four tests, each giving a valid p-value under the null:

- likelihood (the Chatbot Arena paper's idea, Chiang et al. 2024): the judge's total log-likelihood
  against its distribution under the fit for the same pairs. The lower tail is bounded by the Chernoff
  bound, computed exactly for those pairs; the bound is never below the true tail, so the test is
  conservative. (The paper combines per-vote p-values by Fisher's method; with four discrete outcomes
  the modal outcome's p-value is 1 and Fisher's method loses almost all its power, so the likelihood
  itself is summed instead.)
- favouritism: for each model in at least `min_appearances` of the judge's battles, its wins are a
  Poisson-binomial count under the fit; exact upper tail, Bonferroni over the models tested. Because the
  expectation comes from the fit, always voting for a strong model is caught as well as a weak one.
- side: left-side votes among the decisive votes, Poisson-binomial under the fit given which votes were
  decisive; exact, two-sided (doubled smaller tail).
- fast: votes cast sooner than the answers could be read, against at most `honest_fast_share` per vote
  (binomial upper tail; valid for any judge whose chance of a fast vote never exceeds that share).

Error control. A judge with n votes is screened at the largest checkpoint c <= n, on its first c votes
(pass votes in time order); at the k-th checkpoint the judge's level is alpha * 6 / (pi^2 k^2), split
equally (Bonferroni) over the tests that were run. The weights sum to one over all checkpoints, so for an
honest judge whose votes follow the fit, P(ever flagged, over all checkpoints) <= alpha; every piece is
exact or conservative. Re-screening the same checkpoint against a refitted table is a new look that this
bound does not count. For family-wise control over J judges screened together pass alpha / J.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import expit
from scipy.stats import binom

from ratings.engine import ties
from ratings.engine.counts import A_WINS, B_WINS, N_OUTCOMES, PairCounts
from ratings.engine.rated_groups import NOT_RATED, RatedGroups

LIKELIHOOD, FAVOURITISM, SIDE, FAST = "likelihood", "favouritism", "side", "fast"
TESTS = (LIKELIHOOD, FAVOURITISM, SIDE, FAST)
# Votes at which a judge is screened: dense early, where attackers must be caught, sparse later, where
# each look costs level. Appending checkpoints never changes the earlier looks' levels.
DEFAULT_CHECKPOINTS = (10, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000)
# Outcome probabilities are floored here so that an "impossible" vote gives a finite, tiny likelihood.
PROBABILITY_FLOOR = 1e-12
# Largest Chernoff tilt tried; beyond it the bound has converged to the probability of the observed
# extreme for any realistic table.
MAX_TILT = 60.0
TILT_ITERATIONS = 60


def outcome_table_from_ratings(
    ratings: np.ndarray, *, tie_rate: float, both_bad_rate: float, scale: float = 400.0, base: float = 10.0
) -> np.ndarray:
    """(M, M, 4) outcome probabilities: Bradley-Terry for decisive votes, the same tie rates for every pair."""
    if tie_rate < 0 or both_bad_rate < 0 or tie_rate + both_bad_rate >= 1:
        raise ValueError("tie_rate and both_bad_rate must be non-negative and sum to less than 1")
    ratings = np.asarray(ratings, dtype=np.float64)
    left_wins = 1.0 / (1.0 + base ** ((ratings[None, :] - ratings[:, None]) / scale))
    decisive = 1.0 - tie_rate - both_bad_rate
    table = np.stack(
        [
            decisive * left_wins,
            decisive * (1.0 - left_wins),
            np.full_like(left_wins, tie_rate),
            np.full_like(left_wins, both_bad_rate),
        ],
        axis=-1,
    )
    table[np.diag_indices(ratings.size)] = np.nan
    return table


def outcome_table_from_tie_params(params: np.ndarray, n_models: int, groups: RatedGroups | None = None) -> np.ndarray:
    """(M, M, 4) outcome probabilities of the two-tie Davidson model (`ties.fit_tie_params` output); with the
    fit's rated groups, NaN where a model has no rating or the two are in different groups."""
    model_a, model_b = (grid.ravel() for grid in np.meshgrid(np.arange(n_models), np.arange(n_models), indexing="ij"))
    table = ties._probabilities(params, ties._local_index(model_a, model_b, n_models))
    table = table.reshape(n_models, n_models, N_OUTCOMES)
    table[np.diag_indices(n_models)] = np.nan
    if groups is not None:
        label = groups.label
        table[(label[:, None] != label[None, :]) | (label[:, None] == NOT_RATED)] = np.nan
    return table


def outcome_table_from_counts(pc: PairCounts) -> np.ndarray:
    """(M, M, 4) outcome probabilities of the Davidson model fitted to `pc`: the recommended null. NaN for a
    pair it cannot predict: a model without a rating (say, only wins so far: its strength is infinite, and
    the fit's tiny ridge would call any loss of it a near-impossible vote), or two groups that never met. A
    model's first both-bad vote is predicted: its propensity's prior (`ties.PROPENSITY_PRIOR_SD`) keeps its
    P(both bad) near the field's, shrunk by its record, where the ridge alone would put it at ~1e-9."""
    params, *_ = ties.fit_tie_params(pc)
    return with_seat_effect(outcome_table_from_tie_params(params, pc.n_models, ties.tie_groups(pc)), pc)


def with_seat_effect(table: np.ndarray, pc: PairCounts) -> np.ndarray:
    """`table` with the arena's own left-seat effect: each pair's decisive votes split between the seats as
    expit(logit(q) + delta), q the table's share for the left seat, delta the one shift that makes the left
    seat's expected wins over all decisive votes of `pc` (ordered by seat) equal its observed ones (the
    maximum-likelihood shift). Ties and both-bad votes are left as they are.

    The Davidson fit has no seat term, so without this an honest judge at an arena whose left seat wins a
    little more often was tested against 50:50 seats: a 20-Elo seat effect flags such a judge for side bias
    with probability ~0.16 by 5,000 votes and near certainty by 20,000 (an address pooling many sessions
    gets there), and its votes leave the counts."""
    left, right = pc.pairs[:, 0], pc.pairs[:, 1]
    decisive_table = table[..., A_WINS] + table[..., B_WINS]
    with np.errstate(invalid="ignore", divide="ignore"):
        logit = np.log(table[..., A_WINS]) - np.log(table[..., B_WINS])
    wins, losses = pc.counts[:, 0].astype(np.float64), pc.counts[:, 1].astype(np.float64)
    pair_logit = logit[left, right]
    known = np.isfinite(pair_logit) & (wins + losses > 0)
    if not known.any():
        return table
    pair_logit, decisive, observed = pair_logit[known], (wins + losses)[known], wins[known].sum()
    if observed in (0.0, decisive.sum()):
        return table  # every decisive vote went one way: no finite shift; leave the seats as the fit has them
    delta = 0.0
    for _ in range(50):  # Newton on a concave one-dimensional likelihood: a few steps
        p = expit(pair_logit + delta)
        step = (observed - decisive @ p) / max(decisive @ (p * (1.0 - p)), 1e-12)
        delta += float(np.clip(step, -1.0, 1.0))
        if abs(step) < 1e-10:
            break
    shifted = table.copy()
    shifted[..., A_WINS] = decisive_table * expit(logit + delta)
    shifted[..., B_WINS] = decisive_table - shifted[..., A_WINS]
    return shifted


def look_weight(look: np.ndarray) -> np.ndarray:
    """Share of the level spent at the k-th checkpoint (k >= 1): 6 / (pi^2 k^2), summing to one."""
    look = np.asarray(look, dtype=np.float64)
    return 6.0 / (np.pi**2 * look**2)


@dataclass(frozen=True)
class JudgeScreening:
    """Per-judge results (one entry per distinct judge, sorted); p-values are NaN where a test did not run."""

    judge: np.ndarray  # distinct judge ids as given
    votes: np.ndarray  # votes given on pairs the table predicts (the others are not screened)
    votes_scored: np.ndarray  # the checkpoint screened (0: too few votes, not scored)
    look: np.ndarray  # 1-based checkpoint index (0: not scored)
    level: np.ndarray  # this look's level before the split over tests
    p_likelihood: np.ndarray
    p_favouritism: np.ndarray  # Bonferroni-adjusted over the models tested
    p_side: np.ndarray
    p_fast: np.ndarray
    p_combined: np.ndarray  # smallest p-value times the number of tests run, capped at 1
    flagged: np.ndarray  # bool
    reasons: list[str]  # plain words for flagged judges, "" otherwise
    log_likelihood: np.ndarray
    expected_log_likelihood: np.ndarray
    favourite_model: np.ndarray  # model with the smallest favouritism p-value (-1: none tested)
    favourite_wins: np.ndarray
    favourite_battles: np.ndarray
    favourite_expected_wins: np.ndarray
    left_votes: np.ndarray
    decisive_votes: np.ndarray
    expected_left_votes: np.ndarray
    fast_votes: np.ndarray
    timed_votes: np.ndarray

    @property
    def scored(self) -> np.ndarray:
        """Judges with enough votes to be screened."""
        return self.votes_scored > 0

    def p_values(self) -> np.ndarray:
        """(J, 4) p-values in the order of TESTS."""
        return np.column_stack([self.p_likelihood, self.p_favouritism, self.p_side, self.p_fast])

    def rows(self) -> list[dict]:
        """One finished row per judge for the service layer: flag, reason, p-values, vote counts."""
        p_values = self.p_values()
        return [
            {
                "judge": self.judge[j].item(),
                "votes": int(self.votes[j]),
                "votes_scored": int(self.votes_scored[j]),
                "scored": bool(self.votes_scored[j] > 0),
                "flagged": bool(self.flagged[j]),
                "reason": self.reasons[j],
                "p_combined": float(self.p_combined[j]),
                "level": float(self.level[j]),
                "p_values": {
                    test: float(p_values[j, t]) for t, test in enumerate(TESTS) if not np.isnan(p_values[j, t])
                },
            }
            for j in range(self.judge.size)
        ]


def screen_judges(
    judge: np.ndarray,
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    outcome_probabilities: np.ndarray,
    *,
    seconds_to_vote: np.ndarray | None = None,
    seconds_to_read: np.ndarray | None = None,
    models: Sequence[str] | None = None,
    alpha: float = 0.01,
    checkpoints: Sequence[int] = DEFAULT_CHECKPOINTS,
    tests: Sequence[str] = TESTS,
    min_appearances: int = 5,
    honest_fast_share: float = 0.5,
) -> JudgeScreening:
    """Screen every judge's votes (one row per vote, in time order) against the fit; see the module doc."""
    judge = np.asarray(judge)
    model_a = np.asarray(model_a, dtype=np.int64)
    model_b = np.asarray(model_b, dtype=np.int64)
    outcome = np.asarray(outcome, dtype=np.int64)
    table = np.asarray(outcome_probabilities, dtype=np.float64)
    _check_inputs(judge, model_a, model_b, outcome, table, tests, alpha)
    timed = seconds_to_vote is not None and seconds_to_read is not None
    if (seconds_to_vote is None) != (seconds_to_read is None):
        raise ValueError("pass both seconds_to_vote and seconds_to_read, or neither")

    judges = np.unique(judge)
    predicted = ~np.isnan(table[model_a, model_b]).any(axis=1)
    if not predicted.all():
        judge, model_a, model_b, outcome = judge[predicted], model_a[predicted], model_b[predicted], outcome[predicted]
        if timed:
            seconds_to_vote = np.asarray(seconds_to_vote, float)[predicted]
            seconds_to_read = np.asarray(seconds_to_read, float)[predicted]
    judge_index = np.searchsorted(judges, judge)
    n_judges = judges.size
    votes = np.bincount(judge_index, minlength=n_judges)
    ladder = np.asarray(sorted(set(int(c) for c in checkpoints)), dtype=np.int64)
    if ladder.size == 0 or ladder[0] < 1:
        raise ValueError("checkpoints must be positive vote counts")
    look = np.searchsorted(ladder, votes, side="right")
    votes_scored = np.where(look > 0, ladder[np.maximum(look - 1, 0)], 0)
    level = np.where(look > 0, alpha * look_weight(np.maximum(look, 1)), 0.0)

    # Keep each judge's first `votes_scored` votes, in the order given.
    order = np.argsort(judge_index, kind="stable")
    starts = np.concatenate([[0], np.cumsum(votes)[:-1]])
    rank = np.empty(judge.size, dtype=np.int64)
    rank[order] = np.arange(judge.size) - starts[judge_index[order]]
    keep = rank < votes_scored[judge_index]
    group = judge_index[keep]
    a, b, y = model_a[keep], model_b[keep], outcome[keep]
    probabilities = np.maximum(table[a, b], PROBABILITY_FLOOR)
    probabilities /= probabilities.sum(axis=1, keepdims=True)

    nan = np.full(n_judges, np.nan)
    scored = look > 0
    p_likelihood, p_favouritism, p_side, p_fast = nan.copy(), nan.copy(), nan.copy(), nan.copy()

    log_likelihood, expected_log_likelihood, p = _likelihood_test(group, probabilities, y, n_judges)
    if LIKELIHOOD in tests:
        p_likelihood[scored] = p[scored]

    favourite = _favouritism_test(group, a, b, probabilities, y, n_judges, table.shape[0], min_appearances)
    if FAVOURITISM in tests:
        p_favouritism[scored] = favourite["p"][scored]

    left_votes, decisive_votes, expected_left, p = _side_test(group, probabilities, y, n_judges)
    if SIDE in tests:
        p_side[scored] = p[scored]

    fast_votes = np.zeros(n_judges, dtype=np.int64)
    timed_votes = np.zeros(n_judges, dtype=np.int64)
    if timed:
        fast_votes, timed_votes, p = _fast_test(
            group,
            np.asarray(seconds_to_vote, float)[keep],
            np.asarray(seconds_to_read, float)[keep],
            n_judges,
            honest_fast_share,
        )
        if FAST in tests:
            p_fast[scored & (timed_votes > 0)] = p[scored & (timed_votes > 0)]

    p_values = np.column_stack([p_likelihood, p_favouritism, p_side, p_fast])
    tests_run = (~np.isnan(p_values)).sum(axis=1)
    smallest = np.min(np.where(np.isnan(p_values), 1.0, p_values), axis=1)
    p_combined = np.where(tests_run > 0, np.minimum(1.0, tests_run * smallest), np.nan)
    flagged = scored & (tests_run > 0) & (p_combined <= level)

    screening = JudgeScreening(
        judge=judges,
        votes=votes,
        votes_scored=votes_scored,
        look=look,
        level=level,
        p_likelihood=p_likelihood,
        p_favouritism=p_favouritism,
        p_side=p_side,
        p_fast=p_fast,
        p_combined=p_combined,
        flagged=flagged,
        reasons=[""] * n_judges,
        log_likelihood=np.where(scored, log_likelihood, np.nan),
        expected_log_likelihood=np.where(scored, expected_log_likelihood, np.nan),
        favourite_model=favourite["model"],
        favourite_wins=favourite["wins"],
        favourite_battles=favourite["battles"],
        favourite_expected_wins=favourite["expected"],
        left_votes=left_votes,
        decisive_votes=decisive_votes,
        expected_left_votes=expected_left,
        fast_votes=fast_votes,
        timed_votes=timed_votes,
    )
    reasons = [
        _reason(screening, j, tests_run[j], models, honest_fast_share) if flagged[j] else "" for j in range(n_judges)
    ]
    return replace(screening, reasons=reasons)


def _check_inputs(
    judge: np.ndarray,
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    table: np.ndarray,
    tests: Sequence[str],
    alpha: float,
) -> None:
    """Raise ValueError on malformed votes, table or options."""
    if not (judge.shape == model_a.shape == model_b.shape == outcome.shape) or judge.ndim != 1:
        raise ValueError("judge, model_a, model_b and outcome must be 1-D arrays of the same length")
    if table.ndim != 3 or table.shape[0] != table.shape[1] or table.shape[2] != N_OUTCOMES:
        raise ValueError("outcome_probabilities must have shape (M, M, 4)")
    n_models = table.shape[0]
    if model_a.size and (min(model_a.min(), model_b.min()) < 0 or max(model_a.max(), model_b.max()) >= n_models):
        raise ValueError("model index out of range")
    if np.any(model_a == model_b):
        raise ValueError("a model cannot battle itself")
    if outcome.size and (outcome.min() < 0 or outcome.max() >= N_OUTCOMES):
        raise ValueError("outcome codes must be 0..3")
    if unknown := set(tests) - set(TESTS):
        raise ValueError(f"unknown tests: {sorted(unknown)}")
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be within (0, 1)")


def _likelihood_test(
    group: np.ndarray, probabilities: np.ndarray, outcome: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: total log-likelihood, its expectation under the fit, and the Chernoff bound on its lower tail."""
    # P(S <= s) <= exp(f(t)) for every t >= 0, with f(t) = t s + sum_i log sum_k P_ik^(1 - t) (the
    # moment generating function of -S at t). f is convex with f(0) = 0, so its minimum is found by a
    # safeguarded Newton search on t; any t gives a valid bound, so stopping early only loosens it.
    log_p = np.log(probabilities)
    observed = np.bincount(group, log_p[np.arange(outcome.size), outcome], n_groups)
    expected = np.bincount(group, np.sum(probabilities * log_p, axis=1), n_groups)
    tilt = np.zeros(n_groups)
    lower = np.zeros(n_groups)
    upper = np.full(n_groups, MAX_TILT)
    todo = np.flatnonzero(observed < expected)
    for _ in range(TILT_ITERATIONS):
        if todo.size == 0:
            break
        votes = np.isin(group, todo)
        mean, variance, _ = _tilted_moments(log_p[votes], tilt[group[votes]])
        slope = observed[todo] - np.bincount(group[votes], mean, n_groups)[todo]
        curvature = np.bincount(group[votes], variance, n_groups)[todo]
        lower[todo] = np.where(slope < 0, tilt[todo], lower[todo])
        upper[todo] = np.where(slope > 0, tilt[todo], upper[todo])
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = tilt[todo] - slope / curvature
        inside = np.isfinite(newton) & (newton > lower[todo]) & (newton < upper[todo])
        tilt[todo] = np.where(inside, newton, 0.5 * (lower[todo] + upper[todo]))
        todo = todo[
            (np.abs(slope) > 1e-9 * np.maximum(1.0, np.abs(observed[todo]))) & (upper[todo] - lower[todo] > 1e-12)
        ]
    _, _, log_mgf = _tilted_moments(log_p, tilt[group])
    exponent = tilt * observed + np.bincount(group, log_mgf, n_groups)
    return observed, expected, np.exp(np.minimum(exponent, 0.0))


def _tilted_moments(log_p: np.ndarray, tilt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per vote: mean and variance of log P under weights P^(1 - t), and log sum_k P_k^(1 - t)."""
    weights = (1.0 - tilt)[:, None] * log_p
    top = weights.max(axis=1, keepdims=True)
    exp_weights = np.exp(weights - top)
    total = exp_weights.sum(axis=1, keepdims=True)
    tilted = exp_weights / total
    mean = np.sum(tilted * log_p, axis=1)
    variance = np.maximum(np.sum(tilted * log_p**2, axis=1) - mean**2, 0.0)
    return mean, variance, (top + np.log(total))[:, 0]


def poisson_binomial_tails(
    group: np.ndarray, probability: np.ndarray, observed: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact P(W >= observed) and P(W <= observed) per group, W the number of successes of its trials."""
    # The distribution is built one trial at a time (O(L^2) per group of L trials). Groups are batched
    # by length, rounded up to a power of two, so short groups never pay for a long one's padding;
    # padding trials have success probability 0 and leave the distribution unchanged.
    group = np.asarray(group, dtype=np.int64)
    probability = np.asarray(probability, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.int64)
    lengths = np.bincount(group, minlength=n_groups)
    order = np.argsort(group, kind="stable")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    position = np.arange(group.size) - starts[group[order]]
    upper = (observed <= 0).astype(np.float64)
    lower = np.ones(n_groups)
    bucket = np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64)
    for size_class in np.unique(bucket[lengths > 0]):
        members = np.flatnonzero((bucket == size_class) & (lengths > 0))
        width = int(lengths[members].max())
        slot = np.full(n_groups, -1)
        slot[members] = np.arange(members.size)
        in_bucket = slot[group[order]] >= 0
        trials = np.zeros((members.size, width))
        trials[slot[group[order][in_bucket]], position[in_bucket]] = probability[order][in_bucket]
        pmf = np.zeros((members.size, width + 1))
        pmf[:, 0] = 1.0
        for step in range(width):
            success = trials[:, step : step + 1]
            pmf[:, 1 : step + 2] = pmf[:, 1 : step + 2] * (1.0 - success) + pmf[:, : step + 1] * success
            pmf[:, 0] *= 1.0 - success[:, 0]
        counts = np.arange(width + 1)
        wanted = observed[members][:, None]
        upper[members] = np.minimum(1.0, np.sum(np.where(counts >= wanted, pmf, 0.0), axis=1))
        lower[members] = np.minimum(1.0, np.sum(np.where(counts <= wanted, pmf, 0.0), axis=1))
    return upper, lower


def _favouritism_test(
    group: np.ndarray,
    model_a: np.ndarray,
    model_b: np.ndarray,
    probabilities: np.ndarray,
    outcome: np.ndarray,
    n_groups: int,
    n_models: int,
    min_appearances: int,
) -> dict[str, np.ndarray]:
    """Per group: Bonferroni-adjusted favouritism p-value and the record of its most favoured model."""
    # Each battle is seen from both seats: the left model wins with P[A wins], the right with P[B wins].
    seat_group = np.concatenate([group, group])
    seat_model = np.concatenate([model_a, model_b])
    win_probability = np.concatenate([probabilities[:, A_WINS], probabilities[:, B_WINS]])
    won = np.concatenate([outcome == A_WINS, outcome == B_WINS])
    keys, key_index, appearances = np.unique(
        seat_group * n_models + seat_model, return_inverse=True, return_counts=True
    )
    tested = appearances >= min_appearances
    tested_keys = np.flatnonzero(tested)
    compact = np.full(keys.size, -1)
    compact[tested_keys] = np.arange(tested_keys.size)
    trial_key = compact[key_index]
    in_test = trial_key >= 0
    wins = np.bincount(trial_key[in_test], won[in_test], tested_keys.size).astype(np.int64)
    expected = np.bincount(trial_key[in_test], win_probability[in_test], tested_keys.size)
    p_model, _ = poisson_binomial_tails(trial_key[in_test], win_probability[in_test], wins, tested_keys.size)

    key_group = keys[tested_keys] // n_models
    key_model = keys[tested_keys] % n_models
    models_tested = np.bincount(key_group, minlength=n_groups)
    result = {
        "p": np.full(n_groups, np.nan),
        "model": np.full(n_groups, -1, dtype=np.int64),
        "wins": np.zeros(n_groups, dtype=np.int64),
        "battles": np.zeros(n_groups, dtype=np.int64),
        "expected": np.full(n_groups, np.nan),
    }
    if tested_keys.size:
        # The first row of each group after sorting by (group, p) is its most favoured model.
        order = np.lexsort((p_model, key_group))
        first = order[np.concatenate([[True], key_group[order][1:] != key_group[order][:-1]])]
        owner = key_group[first]
        result["p"][owner] = np.minimum(1.0, models_tested[owner] * p_model[first])
        result["model"][owner] = key_model[first]
        result["wins"][owner] = wins[first]
        result["battles"][owner] = appearances[tested_keys][first]
        result["expected"][owner] = expected[first]
    return result


def _side_test(
    group: np.ndarray, probabilities: np.ndarray, outcome: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per group: left votes, decisive votes, expected left votes and the two-sided side-bias p-value."""
    decisive = (outcome == A_WINS) | (outcome == B_WINS)
    left_given_decisive = probabilities[:, A_WINS] / (probabilities[:, A_WINS] + probabilities[:, B_WINS])
    decisive_group = group[decisive]
    left = np.bincount(decisive_group, outcome[decisive] == A_WINS, n_groups).astype(np.int64)
    decisive_votes = np.bincount(decisive_group, minlength=n_groups)
    expected = np.bincount(decisive_group, left_given_decisive[decisive], n_groups)
    upper, lower = poisson_binomial_tails(decisive_group, left_given_decisive[decisive], left, n_groups)
    return left, decisive_votes, expected, np.minimum(1.0, 2.0 * np.minimum(upper, lower))


def _fast_test(
    group: np.ndarray,
    seconds_to_vote: np.ndarray,
    seconds_to_read: np.ndarray,
    n_groups: int,
    honest_fast_share: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: fast votes, timed votes and the binomial upper-tail p-value against `honest_fast_share`."""
    timed = np.isfinite(seconds_to_vote) & np.isfinite(seconds_to_read)
    fast = timed & (seconds_to_vote < seconds_to_read)
    fast_votes = np.bincount(group, fast, n_groups).astype(np.int64)
    timed_votes = np.bincount(group, timed, n_groups).astype(np.int64)
    return fast_votes, timed_votes, binom.sf(fast_votes - 1, timed_votes, honest_fast_share)


def _format_p(p: float) -> str:
    """A p-value in few characters: 0.003, 2e-9."""
    if p >= 0.001:
        return f"{p:.3f}"
    if p < 1e-300:
        return "< 1e-300"
    mantissa, exponent = f"{p:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _reason(
    screening: JudgeScreening, j: int, tests_run: int, models: Sequence[str] | None, honest_fast_share: float
) -> str:
    """Plain-words reason for a flagged judge: each test that crossed its level, strongest first."""
    s = screening
    findings = []
    if s.p_favouritism[j] * tests_run <= s.level[j]:
        model = int(s.favourite_model[j])
        name = models[model] if models is not None else f"model {model}"
        findings.append(
            (
                s.p_favouritism[j],
                f"voted for {name} in {s.favourite_wins[j]} of {s.favourite_battles[j]} battles where the fit "
                f"expected about {s.favourite_expected_wins[j]:.0f} (p = {_format_p(s.p_favouritism[j])})",
            )
        )
    if s.p_side[j] * tests_run <= s.level[j]:
        left_heavy = s.left_votes[j] >= s.expected_left_votes[j]
        side = "left" if left_heavy else "right"
        count = s.left_votes[j] if left_heavy else s.decisive_votes[j] - s.left_votes[j]
        expected = s.expected_left_votes[j] if left_heavy else s.decisive_votes[j] - s.expected_left_votes[j]
        findings.append(
            (
                s.p_side[j],
                f"voted for the {side} answer in {count} of {s.decisive_votes[j]} decisive votes where the fit "
                f"expected about {expected:.0f} (p = {_format_p(s.p_side[j])})",
            )
        )
    if s.p_fast[j] * tests_run <= s.level[j]:
        findings.append(
            (
                s.p_fast[j],
                f"voted before the answers could be read in {s.fast_votes[j]} of {s.timed_votes[j]} timed votes, "
                f"more than the {honest_fast_share:.0%} allowed to an honest judge (p = {_format_p(s.p_fast[j])})",
            )
        )
    if s.p_likelihood[j] * tests_run <= s.level[j]:
        findings.append(
            (
                s.p_likelihood[j],
                f"{s.votes_scored[j]} votes fit the current ratings worse than chance allows: log-likelihood "
                f"{s.log_likelihood[j]:.1f} where the fit expected about {s.expected_log_likelihood[j]:.1f} "
                f"(p <= {_format_p(s.p_likelihood[j])})",
            )
        )
    findings.sort(key=lambda finding: finding[0])
    return "; ".join(text for _, text in findings)
