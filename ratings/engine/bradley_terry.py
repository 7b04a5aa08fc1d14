"""Bradley-Terry ratings on the Elo scale, with sandwich and bootstrap intervals.

Model: P(A beats B) = 1 / (1 + base ** ((R_B - R_A) / scale)). A tie and a both-bad tie each count as
half a win for both sides, as on the official leaderboard. Internally ratings live in natural log-odds
units, theta = R * ln(base) / scale; only differences are identified, so each fit fixes the gauge
(mean zero) and the result is shifted afterwards: the anchor model to its given rating, or else the
mean of the models that have battles to `init_rating`. Intervals are expressed in the same gauge: with
an anchor they are intervals for "rating relative to the anchor" (the anchor's own is zero-width, as
in FastChat), otherwise relative to the mean.
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

# A tiny ridge keeps the Newton system invertible for models without battles or with only wins; its
# effect on well-sampled ratings is far below 1e-6 Elo points.
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
    return np.bincount(flat, values, n_models * n_models).reshape(n_models, n_models)


def log_likelihood(theta: np.ndarray, data: PairData) -> float:
    """Ties-as-half-wins log-likelihood at natural-unit strengths `theta`."""
    diff = theta[data.model_a] - theta[data.model_b]
    return float(np.sum(data.score_a * log_expit(diff) + (data.totals - data.score_a) * log_expit(-diff)))


def log_likelihood_gradient(theta: np.ndarray, data: PairData) -> np.ndarray:
    """Gradient of `log_likelihood` with respect to theta."""
    residual = data.score_a - data.totals * expit(theta[data.model_a] - theta[data.model_b])
    n = data.n_models
    return np.bincount(data.model_a, residual, n) - np.bincount(data.model_b, residual, n)


def penalised_hessian(theta: np.ndarray, data: PairData) -> np.ndarray:
    """Negative Hessian of the objective: Laplacian + gauge term (fixes the mean) + tiny ridge."""
    n = data.n_models
    p = expit(theta[data.model_a] - theta[data.model_b])
    hessian = laplacian(data.model_a, data.model_b, data.totals * p * (1.0 - p), n)
    hessian += 1.0 / n  # gauge: penalising (sum theta)^2 / 2n only picks the mean-zero solution
    hessian[np.diag_indices(n)] += RIDGE
    return hessian


def _objective(theta: np.ndarray, data: PairData) -> float:
    """Penalised log-likelihood that Newton maximises."""
    return log_likelihood(theta, data) - 0.5 * RIDGE * theta @ theta - 0.5 * theta.sum() ** 2 / data.n_models


def fit_theta(data: PairData, theta0: np.ndarray | None = None, max_iter: int = 200) -> np.ndarray:
    """Maximum-likelihood strengths in natural units, mean zero, by damped Newton."""
    n = data.n_models

    def newton_step(theta: np.ndarray) -> np.ndarray:
        gradient = log_likelihood_gradient(theta, data) - RIDGE * theta - theta.sum() / n
        return np.linalg.solve(penalised_hessian(theta, data), gradient)

    start = np.zeros(n) if theta0 is None else theta0
    return damped_newton_maximise(lambda theta: _objective(theta, data), newton_step, start, max_iter=max_iter)


def _resolve_anchor(models: list[str], anchor: tuple[str, float] | None) -> tuple[int, float] | None:
    """Index and rating of the anchor model, or None."""
    if anchor is None:
        return None
    name, rating = anchor
    try:
        return models.index(name), float(rating)
    except ValueError:
        raise ValueError(f"anchor model {name!r} is not among the models") from None


def to_elo(
    theta: np.ndarray,
    active: np.ndarray,
    anchor: tuple[int, float] | None,
    units: float,
    init_rating: float,
) -> np.ndarray:
    """Natural-unit strengths (one row per fit) shifted onto the Elo scale."""
    theta = np.atleast_2d(theta)
    if anchor is None:
        centre = theta[:, active].mean(axis=1, keepdims=True) if active.any() else 0.0
        ratings = init_rating + (theta - centre) / units
    else:
        index, rating = anchor
        ratings = rating + (theta - theta[:, [index]]) / units
    return ratings


def fit_ratings(
    pc: PairCounts,
    *,
    anchor: tuple[str, float] | None = None,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
) -> np.ndarray:
    """Maximum-likelihood Bradley-Terry ratings on the Elo scale, one per model in `pc.models`."""
    data = PairData.from_counts(pc)
    theta = fit_theta(data)
    ratings = to_elo(
        theta, data.active_models(), _resolve_anchor(pc.models, anchor), elo_units(scale, base), init_rating
    )
    return ratings[0]


def _two_sided_z(level: float) -> float:
    """Standard normal quantile for a two-sided interval at `level`."""
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def sandwich_covariance(data: PairData, theta: np.ndarray) -> np.ndarray:
    """Robust covariance of theta (natural units): bread^-1 meat bread^-1 over independent battles."""
    p = expit(theta[data.model_a] - theta[data.model_b])
    bread = penalised_hessian(theta, data)
    # Each battle's score is (y - p) with y in {1, 0, 1/2}; the meat sums their squares per pair.
    meat_weights = data.a_wins * (1.0 - p) ** 2 + data.b_wins * p**2 + data.ties * (0.5 - p) ** 2
    meat = laplacian(data.model_a, data.model_b, meat_weights, data.n_models)
    bread_inverse = np.linalg.inv(bread)
    return bread_inverse @ meat @ bread_inverse


def gauge_variances(covariance: np.ndarray, active: np.ndarray, anchor_index: int | None) -> np.ndarray:
    """Variance of each strength relative to the anchor, or to the mean of the active models."""
    variance = np.full(covariance.shape[0], np.nan)
    if anchor_index is not None:
        diag = np.diag(covariance)
        variance = diag + covariance[anchor_index, anchor_index] - 2.0 * covariance[:, anchor_index]
    else:
        sub = covariance[np.ix_(active, active)]
        m = sub.shape[0]
        if m:
            contrast = np.eye(m) - 1.0 / m
            variance[active] = np.einsum("ij,jk,ik->i", contrast, sub, contrast)
    variance[~active] = np.nan
    return np.maximum(variance, 0.0)


def sandwich_intervals(
    pc: PairCounts,
    ratings: np.ndarray,
    *,
    level: float = 0.95,
    anchor: tuple[str, float] | None = None,
    scale: float = 400.0,
    base: float = 10.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Normal intervals from robust (sandwich) standard errors; NaN for models without battles."""
    data = PairData.from_counts(pc)
    units = elo_units(scale, base)
    theta = (np.asarray(ratings, dtype=np.float64) - np.nanmean(ratings)) * units
    covariance = sandwich_covariance(data, theta)
    resolved = _resolve_anchor(pc.models, anchor)
    variance = gauge_variances(covariance, data.active_models(), None if resolved is None else resolved[0])
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
) -> tuple[np.ndarray, np.ndarray]:
    """Fit all bootstrap rounds (rows) at once from the full fit: strengths (R, M) and each round's last step."""
    # Iterates theta += H0^-1 g with the full-data Hessian H0 (a chord Newton method: resampled Hessians
    # differ from H0 by O(1/sqrt(n)), so it contracts ~10x per step with one shared inverse and no
    # per-round solves); rounds still unsettled after 8 steps switch to exact batched Newton.
    n = data.n_models
    rounds = a_wins.shape[0]
    score = a_wins + 0.5 * ties
    totals = a_wins + b_wins + ties
    chord_inverse = np.linalg.inv(penalised_hessian(theta_full, data))
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
        gradient -= RIDGE * current + current.sum(axis=1, keepdims=True) / n
        if iteration < 8:
            step = gradient @ chord_inverse
        else:
            # Exact Newton for the few rounds the chord iteration has not settled.
            p = expit(diff)
            weights = totals[todo] * p * (1.0 - p)
            hessians = np.stack([laplacian(data.model_a, data.model_b, w, n) for w in weights])
            hessians += 1.0 / n
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
    active = data.active_models()
    resolved = _resolve_anchor(pc.models, anchor)
    theta_full = fit_theta(data)
    cells = np.column_stack([data.a_wins, data.b_wins, data.ties]).astype(np.int64).ravel()
    chunk_sizes = [min(BOOTSTRAP_CHUNK, rounds - start) for start in range(0, rounds, BOOTSTRAP_CHUNK)]
    generators = np.random.default_rng(seed).spawn(len(chunk_sizes))

    def run_chunk(generator: np.random.Generator, size: int) -> np.ndarray:
        """Draw and fit one chunk of rounds; returns Elo ratings (size, M)."""
        draws = multinomial_draws(generator, cells, size).reshape(size, -1, 3).astype(np.float64)
        theta, _ = refit_rounds(data, theta_full, draws[:, :, 0], draws[:, :, 1], draws[:, :, 2])
        return to_elo(theta, active, resolved, units, init_rating)

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
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(samples, [tail, 1.0 - tail], axis=0) if rounds else (None, None)
    return lower, upper, samples


def ranks(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rank = 1 + number of models whose lower bound is above this model's upper bound."""
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


def predicted_win_matrix(ratings: np.ndarray, *, scale: float = 400.0, base: float = 10.0) -> np.ndarray:
    """P(row model beats column model) under the fitted ratings; NaN on the diagonal."""
    ratings = np.asarray(ratings, dtype=np.float64)
    matrix = 1.0 / (1.0 + base ** ((ratings[None, :] - ratings[:, None]) / scale))
    np.fill_diagonal(matrix, np.nan)
    return matrix
