"""Bradley-Terry ratings on the Elo scale, with sandwich and bootstrap intervals.

Model: P(A beats B) = 1 / (1 + base ** ((R_B - R_A) / scale)). A tie and a both-bad tie each count as
half a win for both sides, as on the official leaderboard. Internally ratings live in natural log-odds
units, theta = R * ln(base) / scale; only differences are identified, so each fit fixes the gauge
(mean zero) and the result is shifted afterwards: the anchor model to its given rating, or else the
mean of the rated models to `init_rating`. Intervals are expressed in the same gauge: with an anchor
they are intervals for "rating relative to the anchor" (the anchor's own is zero-width, as in FastChat),
otherwise relative to the mean.

Only models whose battles link them both ways to the others have a rating (`rated_groups.py`): a model
with only wins or only losses has none (NaN here, "not rated yet" on the board), is left out of every fit
and centring, and models that never met, directly or through others, are rated and centred group by group.
Functions that take `groups` fit only inside the rated groups; without it they fit every battle under one
gauge, where the tiny ridge alone holds a model with only wins (robustness.py's refits search with that).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy.special import expit, log_expit

from ratings.engine.counts import A_WINS, B_WINS, BOTH_BAD, TIE, PairCounts, merge_sides
from ratings.engine.newton import MAX_STEP, damped_newton_maximise
from ratings.engine.rated_groups import (
    NOT_RATED,
    RatedGroups,
    SureLinks,
    anchored_direction,
    collapsed_group_direction,
    find_rated_groups,
    one_sided_direction,
    round_groups,
    sure_links,
)

# A tiny ridge keeps the Newton system invertible; its effect on well-sampled ratings is far below 1e-6
# Elo points. It is no substitute for a rating that does not exist: with only wins it would put a model
# thousands of points up, which is why fits given `groups` leave such models out (rated_groups.py).
RIDGE = 1e-8
# Bootstrap rounds stop when their last step is below this (natural units, ~2e-4 Elo points); the
# chord iteration contracts ~10x per step, so the remaining error is ~1e-5 Elo points.
BOOTSTRAP_STEP_TOLERANCE = 1e-6
# Bootstrap rounds are drawn and fitted in chunks of this size: each chunk has its own child generator,
# so results depend on the seed only, not on the number of threads.
BOOTSTRAP_CHUNK = 50


@dataclass(frozen=True)
class PairData:
    """Side-merged pair arrays the likelihood needs: indices and a/b/tie counts per pair."""

    n_models: int
    model_a: np.ndarray  # (P,) int
    model_b: np.ndarray  # (P,) int
    a_wins: np.ndarray  # (P,) float
    b_wins: np.ndarray  # (P,) float
    ties: np.ndarray  # (P,) float: ties and both-bad ties together (both count as half a win)

    @classmethod
    def from_counts(cls, pc: PairCounts) -> PairData:
        """Merge sides and fold both kinds of tie together."""
        merged = merge_sides(pc)
        counts = merged.counts.astype(np.float64)
        return cls(
            pc.n_models,
            merged.pairs[:, 0].copy(),
            merged.pairs[:, 1].copy(),
            counts[:, A_WINS].copy(),
            counts[:, B_WINS].copy(),
            counts[:, TIE] + counts[:, BOTH_BAD],
        )

    @property
    def score_a(self) -> np.ndarray:
        """Points of side A per pair: wins plus half the ties."""
        return self.a_wins + 0.5 * self.ties

    @property
    def totals(self) -> np.ndarray:
        """Battles per pair."""
        return self.a_wins + self.b_wins + self.ties

    def active_models(self) -> np.ndarray:
        """Boolean mask of models with at least one battle."""
        votes = np.bincount(self.model_a, self.totals, self.n_models) + np.bincount(
            self.model_b, self.totals, self.n_models
        )
        return votes > 0

    def rated_groups(self) -> RatedGroups:
        """Which models have a rating, and which of them can be compared (see rated_groups.py)."""
        return find_rated_groups(self.n_models, self.model_a, self.model_b, self.score_a, self.totals)

    def within_groups(self, groups: RatedGroups | None) -> PairData:
        """Only the pairs inside one rated group: the battles a fit with `groups` uses."""
        if groups is None or groups.is_single:
            return self
        keep = groups.within(self.model_a, self.model_b)
        return PairData(
            self.n_models, self.model_a[keep], self.model_b[keep], self.a_wins[keep], self.b_wins[keep], self.ties[keep]
        )


def elo_units(scale: float = 400.0, base: float = 10.0) -> float:
    """Natural log-odds units per Elo point."""
    return float(np.log(base) / scale)


def laplacian(model_a: np.ndarray, model_b: np.ndarray, weights: np.ndarray, n_models: int) -> np.ndarray:
    """Weighted graph Laplacian: the shape of every Bradley-Terry Hessian and meat matrix."""
    flat = np.concatenate(
        [
            model_a * n_models + model_a,
            model_b * n_models + model_b,
            model_a * n_models + model_b,
            model_b * n_models + model_a,
        ]
    )
    values = np.concatenate([weights, weights, -weights, -weights])
    # float64 even without pairs (numpy's bincount of nothing is int64): a board may have no rated pair.
    return np.bincount(flat, values, n_models * n_models).astype(np.float64, copy=False).reshape(n_models, n_models)


def log_likelihood(theta: np.ndarray, data: PairData) -> float:
    """Ties-as-half-wins log-likelihood at natural-unit strengths `theta`."""
    diff = theta[data.model_a] - theta[data.model_b]
    return float(np.sum(data.score_a * log_expit(diff) + (data.totals - data.score_a) * log_expit(-diff)))


def log_likelihood_gradient(theta: np.ndarray, data: PairData) -> np.ndarray:
    """Gradient of `log_likelihood` with respect to theta."""
    residual = data.score_a - data.totals * expit(theta[data.model_a] - theta[data.model_b])
    n = data.n_models
    return np.bincount(data.model_a, residual, n) - np.bincount(data.model_b, residual, n)


def _single(groups: RatedGroups | None) -> bool:
    """Whether the gauge is the plain one: the mean of all models fixed (every model in one group)."""
    return groups is None or groups.is_single


def gauge_matrix(groups: RatedGroups | None, n_models: int) -> np.ndarray | float:
    """Hessian of the gauge penalty: each rated group's mean pinned to zero, a model without a rating to zero."""
    if _single(groups):
        return 1.0 / n_models  # penalising (sum theta)^2 / 2n only picks the mean-zero solution
    matrix = np.zeros((n_models, n_models))
    for group in range(groups.n_groups):
        members = np.flatnonzero(groups.label == group)
        matrix[np.ix_(members, members)] = 1.0 / members.size
    unrated = np.flatnonzero(groups.label == NOT_RATED)
    matrix[unrated, unrated] = 1.0
    return matrix


def gauge_gradient(theta: np.ndarray, groups: RatedGroups | None) -> np.ndarray:
    """Gradient of the gauge penalty at strengths `theta` (one row per fit, or a single vector)."""
    if _single(groups):
        return theta.sum(axis=-1, keepdims=True) / theta.shape[-1]
    gradient = np.where(groups.label == NOT_RATED, theta, 0.0)
    for group in range(groups.n_groups):
        members = groups.label == group
        gradient[..., members] = theta[..., members].sum(axis=-1, keepdims=True) / members.sum()
    return gradient


def penalised_hessian(theta: np.ndarray, data: PairData, groups: RatedGroups | None = None) -> np.ndarray:
    """Negative Hessian of the objective: Laplacian (of the pairs inside the groups) + gauge term + tiny ridge."""
    n = data.n_models
    data = data.within_groups(groups)
    p = expit(theta[data.model_a] - theta[data.model_b])
    hessian = laplacian(data.model_a, data.model_b, data.totals * p * (1.0 - p), n)
    hessian += gauge_matrix(groups, n)
    hessian[np.diag_indices(n)] += RIDGE
    return hessian


def _gauge_penalty(theta: np.ndarray, groups: RatedGroups | None) -> float:
    """The gauge penalty itself: half the squared sum per group over its size, half the square per unrated model."""
    if _single(groups):
        return 0.5 * theta.sum() ** 2 / theta.size
    penalty = 0.5 * float(np.sum(theta[groups.label == NOT_RATED] ** 2))
    for group in range(groups.n_groups):
        members = groups.label == group
        penalty += 0.5 * theta[members].sum() ** 2 / members.sum()
    return penalty


def _objective(theta: np.ndarray, data: PairData, groups: RatedGroups | None = None) -> float:
    """Penalised log-likelihood that Newton maximises."""
    return log_likelihood(theta, data) - 0.5 * RIDGE * theta @ theta - _gauge_penalty(theta, groups)


def fit_theta(
    data: PairData, theta0: np.ndarray | None = None, max_iter: int = 200, *, groups: RatedGroups | None = None
) -> np.ndarray:
    """Maximum-likelihood strengths in natural units, mean zero, by damped Newton.

    With `groups`, only battles inside a rated group are fitted, each group has mean zero, and a model
    without a rating stays at zero; without, every battle is fitted with one gauge (the tiny ridge alone
    then holds a model with only wins)."""
    n = data.n_models
    data = data.within_groups(groups)

    def newton_step(theta: np.ndarray) -> np.ndarray:
        gradient = log_likelihood_gradient(theta, data) - RIDGE * theta - gauge_gradient(theta, groups)
        return np.linalg.solve(penalised_hessian(theta, data, groups), gradient)

    start = np.zeros(n) if theta0 is None else theta0
    return damped_newton_maximise(lambda theta: _objective(theta, data, groups), newton_step, start, max_iter=max_iter)


def _resolve_anchor(models: list[str], anchor: tuple[str, float] | None) -> tuple[int, float] | None:
    """Index and rating of the anchor model, or None."""
    if anchor is None:
        return None
    name, rating = anchor
    try:
        return models.index(name), float(rating)
    except ValueError:
        raise ValueError(f"anchor model {name!r} is not among the models") from None


def rated_anchor(models: list[str], anchor: tuple[str, float] | None, groups: RatedGroups) -> tuple[int, float] | None:
    """The resolved anchor if its model has a rating; otherwise None (its group is centred on its mean)."""
    resolved = _resolve_anchor(models, anchor)
    return resolved if resolved is not None and groups.label[resolved[0]] != NOT_RATED else None


def group_labels(groups: RatedGroups | np.ndarray) -> np.ndarray:
    """Group label per model (or per round and model), NOT_RATED for none; a boolean mask is one group."""
    if isinstance(groups, RatedGroups):
        return groups.label
    groups = np.asarray(groups)
    return np.where(groups, 0, NOT_RATED) if groups.dtype == bool else groups


def centring_weights(groups: RatedGroups | np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """How much each model weighs in its group's centre: `weights` if given, else the battles it played inside
    its group (RatedGroups.played), else one each.

    Weighted by battles, not one model one share: with a plain mean, a newcomer with three battles (a huge
    variance) took a 1/m share of the centre, so every established model's interval (taken against that
    centre) widened two- to threefold, and in a bootstrap the centre jumped whenever the newcomer dropped out
    of a round, merging ranks that its own data never touched."""
    if weights is None and isinstance(groups, RatedGroups):
        weights = groups.played
    if weights is None:
        return np.ones(group_labels(groups).shape[-1])
    return np.asarray(weights, dtype=np.float64)


def to_elo(
    theta: np.ndarray,
    groups: RatedGroups | np.ndarray,
    anchor: tuple[int, float] | None,
    units: float,
    init_rating: float,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Natural-unit strengths (one row per fit) shifted onto the Elo scale, NaN for models without a rating.

    `groups` gives each model's group (per round too, shape (R, M), in a bootstrap) or is a boolean mask of
    one group. Each group is centred on its members' mean weighted by `centring_weights` (the battles each
    played: pass the data's `groups.played` with per-round labels), except the anchor's, which is shifted so
    the anchor has its rating; a group whose anchor has no rating in a round is NaN in that round.
    """
    theta = np.atleast_2d(theta)
    weight = centring_weights(groups, weights)
    labels = group_labels(groups)
    if labels.ndim == 2 and labels.shape[0] and (labels == labels[:1]).all():
        labels = labels[0]
    ratings = np.full(theta.shape, np.nan)
    if labels.ndim == 1:
        for group in np.unique(labels[labels != NOT_RATED]).tolist():
            members = labels == group
            if anchor is not None and members[anchor[0]]:
                index, rating = anchor
                ratings[:, members] = rating + (theta[:, members] - theta[:, [index]]) / units
            else:
                centre = theta[:, members] @ weight[members] / weight[members].sum()
                ratings[:, members] = init_rating + (theta[:, members] - centre[:, None]) / units
        return ratings
    # Rounds differ: each group is centred on its members of that round; the anchor's group is NaN in the
    # rounds where the anchor itself has no rating.
    anchor_group = NOT_RATED if anchor is None else int(labels[:, anchor[0]].max())
    for group in np.unique(labels[labels != NOT_RATED]).tolist():
        members = labels == group
        if group == anchor_group:
            index, rating = anchor
            values = rating + (theta - theta[:, [index]]) / units
            values[labels[:, index] != group] = np.nan
        else:
            member_weight = np.where(members, weight, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                centre = (member_weight * theta).sum(axis=1, keepdims=True) / member_weight.sum(axis=1, keepdims=True)
            values = init_rating + (theta - centre) / units
        ratings = np.where(members, values, ratings)
    return ratings


def fit_ratings(
    pc: PairCounts,
    *,
    anchor: tuple[str, float] | None = None,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    groups: RatedGroups | None = None,
) -> np.ndarray:
    """Maximum-likelihood Bradley-Terry ratings on the Elo scale, one per model in `pc.models`; NaN for a model
    without a rating (no battles, or wins and losses that do not link it both ways to the others). `groups`,
    if the caller has them already, must be those of `pc`."""
    data = PairData.from_counts(pc)
    groups = groups or data.rated_groups()
    theta = fit_theta(data, groups=groups)
    ratings = to_elo(theta, groups, rated_anchor(pc.models, anchor, groups), elo_units(scale, base), init_rating)
    return ratings[0]


def _two_sided_z(level: float) -> float:
    """Standard normal quantile for a two-sided interval at `level`."""
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def sandwich_covariance(data: PairData, theta: np.ndarray, groups: RatedGroups | None = None) -> np.ndarray:
    """Robust covariance of theta (natural units): bread^-1 meat bread^-1 over independent battles."""
    data = data.within_groups(groups)
    p = expit(theta[data.model_a] - theta[data.model_b])
    bread = penalised_hessian(theta, data, groups)
    # Each battle's score is (y - p) with y in {1, 0, 1/2}; the meat sums their squares per pair.
    meat_weights = data.a_wins * (1.0 - p) ** 2 + data.b_wins * p**2 + data.ties * (0.5 - p) ** 2
    meat = laplacian(data.model_a, data.model_b, meat_weights, data.n_models)
    bread_inverse = np.linalg.inv(bread)
    return bread_inverse @ meat @ bread_inverse


def gauge_variances(
    covariance: np.ndarray,
    groups: RatedGroups | np.ndarray,
    anchor_index: int | None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Variance of each strength relative to the anchor (in its group), or to its group's centre (the mean
    weighted by `centring_weights`, as `to_elo` centres); NaN unrated.

    `groups` is a RatedGroups or a boolean mask of one group (the models with battles)."""
    weight = centring_weights(groups, weights)
    labels = group_labels(groups)
    variance = np.full(covariance.shape[0], np.nan)
    for group in np.unique(labels[labels != NOT_RATED]).tolist():
        members = labels == group
        if anchor_index is not None and members[anchor_index]:
            diag = np.diag(covariance)
            relative = diag + covariance[anchor_index, anchor_index] - 2.0 * covariance[:, anchor_index]
            variance[members] = relative[members]
        else:
            sub = covariance[np.ix_(members, members)]
            share = weight[members] / weight[members].sum()
            contrast = np.eye(share.size) - share[None, :]  # row i: theta_i minus the weighted centre
            variance[members] = np.einsum("ij,jk,ik->i", contrast, sub, contrast)
    variance[labels == NOT_RATED] = np.nan
    return np.maximum(variance, 0.0)


def sandwich_intervals(
    pc: PairCounts,
    ratings: np.ndarray,
    *,
    level: float = 0.95,
    anchor: tuple[str, float] | None = None,
    scale: float = 400.0,
    base: float = 10.0,
    groups: RatedGroups | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Normal intervals from robust (sandwich) standard errors; NaN for models without a rating. `groups`,
    if the caller has them already, must be those of `pc`."""
    data = PairData.from_counts(pc)
    groups = groups or data.rated_groups()
    units = elo_units(scale, base)
    ratings = np.asarray(ratings, dtype=np.float64)
    if not groups.rated.any():
        return np.full(ratings.shape, np.nan), np.full(ratings.shape, np.nan)
    theta = (ratings - np.nanmean(ratings)) * units
    if not groups.is_single:
        # Only differences inside a group enter the covariance; a model without a rating has no battle in it.
        theta = np.nan_to_num(theta)
    covariance = sandwich_covariance(data, theta, groups)
    resolved = rated_anchor(pc.models, anchor, groups)
    variance = gauge_variances(covariance, groups, None if resolved is None else resolved[0])
    half_width = _two_sided_z(level) * np.sqrt(variance) / units
    return ratings - half_width, ratings + half_width


def multinomial_draws(rng: np.random.Generator, counts: np.ndarray, size: int) -> np.ndarray:
    """Exact Multinomial(sum(counts), counts / sum) draws, `size` rows, about 2x faster than rng.multinomial."""
    # Poisson counts with total mean lam = N - 4 sqrt(N), given their sum S, are Multinomial(S, p); rows
    # with S > N (about 3 in 100,000) are redrawn, which conditions on S only. Adding the missing N - S
    # battles as uniform picks among the N observed battles makes each row exactly Multinomial(N, p),
    # with about N / 300 picks per row instead of one sequential binomial per cell.
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    cells = counts.size
    if total == 0:
        return np.zeros((size, cells), dtype=np.int64)
    lam = max(total - 4.0 * np.sqrt(total), 0.0) * (counts / total)
    draws = rng.poisson(lam, size=(size, cells))
    over = draws.sum(axis=1) > total
    while over.any():
        draws[over] = rng.poisson(lam, size=(int(over.sum()), cells))
        over = draws.sum(axis=1) > total
    missing = total - draws.sum(axis=1)
    picks = _pick_cells(rng, counts, int(missing.sum()))
    rows = np.repeat(np.arange(size), missing)
    draws += np.bincount(rows * cells + picks, minlength=size * cells).reshape(size, cells)
    return draws


def _pick_cells(rng: np.random.Generator, counts: np.ndarray, n: int) -> np.ndarray:
    """Cells of `n` battles picked uniformly with replacement from all observed battles."""
    total = int(counts.sum())
    if total <= 50_000_000:
        # A battle -> cell lookup table makes each pick O(1): one integer draw and one gather.
        cell_of_battle = np.repeat(np.arange(counts.size, dtype=np.int32), counts)
        return cell_of_battle[rng.integers(0, total, n)]
    return np.searchsorted(np.cumsum(counts), rng.integers(0, total, n), side="right")


def refit_rounds(
    data: PairData,
    theta_full: np.ndarray,
    a_wins: np.ndarray,
    b_wins: np.ndarray,
    ties: np.ndarray,
    max_iter: int = 100,
    *,
    groups: RatedGroups | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit all bootstrap rounds (rows) at once from the full fit: strengths (R, M) and each round's last step.

    With `groups` the gauge is the rated groups' (as `fit_theta` with them); the caller zeroes the counts of
    pairs that must not enter a round's fit."""
    # Iterates theta += H0^-1 g with the full-data Hessian H0 (a chord Newton method: resampled Hessians
    # differ from H0 by O(1/sqrt(n)), so it contracts ~10x per step with one shared inverse and no
    # per-round solves); rounds still unsettled after 8 steps switch to exact batched Newton.
    n = data.n_models
    rounds = a_wins.shape[0]
    score = a_wins + 0.5 * ties
    totals = a_wins + b_wins + ties
    chord_inverse = np.linalg.inv(penalised_hessian(theta_full, data, groups))
    theta = np.tile(theta_full, (rounds, 1))
    offsets = (np.arange(rounds) * n)[:, None]
    # Flat indices into theta.ravel(): one 1-D gather and one bincount per side and iteration.
    flat_a = (offsets + data.model_a).ravel()
    flat_b = (offsets + data.model_b).ravel()
    last_step = np.full(rounds, np.inf)
    todo = np.arange(rounds)
    for iteration in range(max_iter):
        k = todo.size
        current = theta[todo] if k < rounds else theta
        flat = current.ravel()
        fa, fb = flat_a[: k * data.model_a.size], flat_b[: k * data.model_b.size]
        diff = (flat[fa] - flat[fb]).reshape(k, -1)
        residual = (score[todo] - totals[todo] * expit(diff)).ravel()
        gradient = (np.bincount(fa, residual, k * n) - np.bincount(fb, residual, k * n)).reshape(k, n)
        gradient -= RIDGE * current + gauge_gradient(current, groups)
        if iteration < 8:
            step = gradient @ chord_inverse
        else:
            # Exact Newton for the few rounds the chord iteration has not settled.
            p = expit(diff)
            weights = totals[todo] * p * (1.0 - p)
            hessians = np.stack([laplacian(data.model_a, data.model_b, w, n) for w in weights])
            hessians += gauge_matrix(groups, n)
            hessians[:, np.arange(n), np.arange(n)] += RIDGE
            step = np.linalg.solve(hessians, gradient[..., None])[..., 0]
        largest = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(largest, 1e-300))[:, None]
        theta[todo] = current + step
        last_step[todo] = largest
        todo = todo[largest >= BOOTSTRAP_STEP_TOLERANCE]
        if todo.size == 0:
            break
    return theta, last_step


def bootstrap_intervals(
    pc: PairCounts,
    *,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    anchor: tuple[str, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bootstrap over battles: (lower, upper, samples of shape (rounds, M))."""
    # Each round resamples all battles with replacement, i.e. draws the a-wins / b-wins / tie cells of
    # every side-merged pair from one multinomial with the observed total; merging cells first is exact
    # because a multinomial's aggregated cells are again multinomial, and the fit only sees these sums.
    data = PairData.from_counts(pc)
    units = elo_units(scale, base)
    groups = data.rated_groups()
    resolved = rated_anchor(pc.models, anchor, groups)
    theta_full = fit_theta(data, groups=groups)
    links = sure_links(groups, data.model_a, data.model_b, data.score_a, data.totals)
    cells = np.column_stack([data.a_wins, data.b_wins, data.ties]).astype(np.int64).ravel()
    chunk_sizes = [min(BOOTSTRAP_CHUNK, rounds - start) for start in range(0, rounds, BOOTSTRAP_CHUNK)]
    generators = np.random.default_rng(seed).spawn(len(chunk_sizes))

    def run_chunk(generator: np.random.Generator, size: int) -> np.ndarray:
        """Draw and fit one chunk of rounds; returns Elo ratings (size, M)."""
        draws = multinomial_draws(generator, cells, size).reshape(size, -1, 3).astype(np.float64)
        a_wins, b_wins, ties = draws[:, :, 0], draws[:, :, 1], draws[:, :, 2]
        score, totals = a_wins + 0.5 * ties, a_wins + b_wins + ties
        labels, keep = rated_in_rounds(groups, data.model_a, data.model_b, score, totals, links)
        if not keep.all():
            a_wins, b_wins, ties = a_wins * keep, b_wins * keep, ties * keep
        theta, _ = refit_rounds(data, theta_full, a_wins, b_wins, ties, groups=groups)
        ratings = to_elo(theta, labels, resolved, units, init_rating, weights=groups.played)
        return with_unrated_rounds(ratings, labels, groups, data.model_a, data.model_b, score, totals, resolved)

    samples = np.empty((rounds, data.n_models))
    workers = threads if threads is not None else min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        futures = [pool.submit(run_chunk, g, s) for g, s in zip(generators, chunk_sizes, strict=True)]
        done = 0
        for future, size in zip(futures, chunk_sizes, strict=True):
            samples[done : done + size] = future.result()
            done += size
            if progress is not None:
                progress(done, rounds)
    lower, upper = percentile_intervals(samples, level) if rounds else (None, None)
    return lower, upper, samples


def rated_in_rounds(
    groups: RatedGroups,
    model_a: np.ndarray,
    model_b: np.ndarray,
    score_a: np.ndarray,
    totals: np.ndarray,
    links: SureLinks | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each round's group labels (R, M) and which pairs (R, P) enter its fit: those inside one rated group.

    A model that a resample leaves without battles, or with a one-sided record, has no rating in that round:
    its battles are left out of the round's fit, so they neither pull the others nor move their centring.
    """
    labels = round_groups(groups, model_a, model_b, score_a, totals, links)
    keep = np.repeat(groups.within(model_a, model_b)[None, :], labels.shape[0], axis=0)
    # Only pairs with a model whose label some round changed differ from the data's; looking up both labels
    # of every pair in every round took as long as finding the labels.
    moved = (labels != groups.label).any(axis=0)
    pairs = np.flatnonzero(moved[model_a] | moved[model_b])
    if pairs.size:
        label_a, label_b = labels[:, model_a[pairs]], labels[:, model_b[pairs]]
        keep[:, pairs] = (label_a != NOT_RATED) & (label_a == label_b)
    return labels, keep


def with_unrated_rounds(
    ratings: np.ndarray,
    labels: np.ndarray,
    groups: RatedGroups,
    model_a: np.ndarray,
    model_b: np.ndarray,
    score_a: np.ndarray,
    totals: np.ndarray,
    anchor: tuple[int, float] | None = None,
) -> np.ndarray:
    """Round ratings (R, M) with each round's unrated models set to what their rating there is: +inf if they
    only beat that round's rated models, -inf if they only lost, NaN if they did not meet them; models
    without a rating in the data are NaN throughout.

    A round in which a whole group has no rating (a two-model group at 7-1 resampled 8-0) counts too: its
    models that only won there are +inf and those that only lost -inf. Left out as NaN, such rounds gave a
    7-1 pair finite, one-sided intervals that did not overlap. On an anchored board, a round in which the
    anchor has no rating puts its whole group on the anchor's scale by that round's arrows
    (`anchored_direction`): left out, a 5-1, 5-1 chain anchored at its top gave the anchor [1000, +inf]."""
    out = labels == NOT_RATED
    if not out[:, groups.rated].any():
        return ratings
    direction = one_sided_direction(labels, model_a, model_b, score_a, totals)
    anchor_group = None if anchor is None else int(groups.label[anchor[0]])
    collapsed = collapsed_group_direction(labels, groups, model_a, model_b, score_a, totals, skip_group=anchor_group)
    direction = np.where(direction != 0, direction, collapsed)
    if anchor_group is not None and anchor_group >= 0:
        anchor_out, relative = anchored_direction(labels, groups, model_a, model_b, score_a, totals, anchor[0])
        cells = np.ix_(np.flatnonzero(anchor_out), np.flatnonzero(groups.label == anchor_group))
        out[cells] = True
        direction[cells] = relative[cells]
    ratings = np.where(out, np.where(direction > 0, np.inf, np.where(direction < 0, -np.inf, np.nan)), ratings)
    ratings[:, ~groups.rated] = np.nan
    return ratings


# Stand-in for an infinite bootstrap rating while taking quantiles (interpolating between two infinities
# gives NaN); any quantile beyond UNBOUNDED_CUTOFF is such a sample or a blend with one, hence unbounded.
_UNBOUNDED_STAND_IN = 1e300
_UNBOUNDED_CUTOFF = 1e290


def percentile_intervals(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column of bootstrap samples (rounds, M).

    Samples may be +-inf (the rating was infinite in that round: the bound is then infinite if enough of
    them are) or NaN (no rating in that round: left out); a column with no sample at all gives NaN."""
    tail = (1.0 - level) / 2.0
    if np.isfinite(samples).all():
        return tuple(np.quantile(samples, [tail, 1.0 - tail], axis=0))
    lower = np.full(samples.shape[1], np.nan)
    upper = np.full(samples.shape[1], np.nan)
    some = ~np.isnan(samples).all(axis=0)
    if not some.any():
        return lower, upper
    stood_in = np.clip(samples, -_UNBOUNDED_STAND_IN, _UNBOUNDED_STAND_IN)
    bounds = np.full((2, samples.shape[1]), np.nan)
    # nanquantile runs column by column in Python: only the columns with a NaN need it (on category boards,
    # a thin model or two), the others are plain quantiles (the same values).
    gaps = np.isnan(samples).any(axis=0)
    bounds[:, ~gaps] = np.quantile(stood_in[:, ~gaps], [tail, 1.0 - tail], axis=0)
    if (gaps & some).any():
        bounds[:, gaps & some] = np.nanquantile(stood_in[:, gaps & some], [tail, 1.0 - tail], axis=0)
    bounds[bounds > _UNBOUNDED_CUTOFF] = np.inf
    bounds[bounds < -_UNBOUNDED_CUTOFF] = -np.inf
    lower[some], upper[some] = bounds[:, some]
    return lower, upper


def ranks(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rank = 1 + number of models whose lower bound is above this model's upper bound."""
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


def predicted_win_matrix(
    ratings: np.ndarray, *, scale: float = 400.0, base: float = 10.0, groups: np.ndarray | None = None
) -> np.ndarray:
    """P(row model beats column model) under the fitted ratings; NaN on the diagonal, for a model without a
    rating, and (given group labels) between models of different groups, whose ratings do not compare."""
    ratings = np.asarray(ratings, dtype=np.float64)
    matrix = 1.0 / (1.0 + base ** ((ratings[None, :] - ratings[:, None]) / scale))
    np.fill_diagonal(matrix, np.nan)
    if groups is not None:
        labels = np.asarray(groups)
        matrix[(labels[:, None] != labels[None, :]) | (labels[:, None] == NOT_RATED)] = np.nan
    return matrix
