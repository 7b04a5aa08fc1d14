"""Simulated arenas with known ratings, for tests and the coverage benchmark."""

from __future__ import annotations

import numpy as np

from ratings.engine.counts import A_WINS, B_WINS, BOTH_BAD, TIE


def simulate_battles(
    ratings: np.ndarray,
    n_battles: int,
    *,
    seed: int = 0,
    tie_propensity: float = 0.3,
    both_bad_share: float = 0.5,
    scale: float = 400.0,
    base: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random battles between distinct models whose expected score is the BT probability: (a, b, outcome)."""
    # With p = P(A beats B) from the ratings, a tie happens with probability 4 c p (1 - p) (c =
    # tie_propensity <= 0.5) and takes half its mass from each side's win, so A's expected score is
    # exactly p: the ties-as-half-wins Bradley-Terry fit is then consistent for the given ratings.
    if not 0.0 <= tie_propensity <= 0.5:
        raise ValueError("tie_propensity must be within [0, 0.5]")
    rng = np.random.default_rng(seed)
    ratings = np.asarray(ratings, dtype=np.float64)
    n_models = ratings.size
    model_a = rng.integers(0, n_models, n_battles)
    # An offset in 1..n-1 guarantees two distinct models, uniformly over ordered pairs.
    model_b = (model_a + rng.integers(1, n_models, n_battles)) % n_models
    p = 1.0 / (1.0 + base ** ((ratings[model_b] - ratings[model_a]) / scale))
    tie = 4.0 * tie_propensity * p * (1.0 - p)
    u = rng.random(n_battles)
    outcome = np.where(u < p - tie / 2, A_WINS, np.where(u < 1.0 - tie, B_WINS, TIE))
    both_bad = (outcome == TIE) & (rng.random(n_battles) < both_bad_share)
    outcome[both_bad] = BOTH_BAD
    return model_a, model_b, outcome.astype(np.int64)


def simulate_style_battles(
    ratings: np.ndarray,
    style_effects: np.ndarray,
    n_battles: int,
    *,
    seed: int = 0,
    scale: float = 400.0,
    base: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Battles with logit P(A wins) = rating gap + features @ style_effects, no ties: (a, b, outcome, features)."""
    rng = np.random.default_rng(seed)
    ratings = np.asarray(ratings, dtype=np.float64)
    model_a = rng.integers(0, ratings.size, n_battles)
    model_b = (model_a + rng.integers(1, ratings.size, n_battles)) % ratings.size
    features = rng.normal(size=(n_battles, len(style_effects)))
    margin = (ratings[model_a] - ratings[model_b]) * np.log(base) / scale + features @ np.asarray(style_effects)
    outcome = np.where(rng.random(n_battles) < 1.0 / (1.0 + np.exp(-margin)), A_WINS, B_WINS)
    return model_a, model_b, outcome.astype(np.int64), features


def simulate_left_advantage(
    ratings: np.ndarray,
    left_elo: float,
    n_battles: int,
    *,
    seed: int = 0,
    scale: float = 400.0,
    base: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Battles where the left seat is worth `left_elo` rating points; no ties."""
    rng = np.random.default_rng(seed)
    ratings = np.asarray(ratings, dtype=np.float64)
    model_a = rng.integers(0, ratings.size, n_battles)
    model_b = (model_a + rng.integers(1, ratings.size, n_battles)) % ratings.size
    p = 1.0 / (1.0 + base ** ((ratings[model_b] - ratings[model_a] - left_elo) / scale))
    outcome = np.where(rng.random(n_battles) < p, A_WINS, B_WINS)
    return model_a, model_b, outcome.astype(np.int64)


def simulate_tie_model(
    theta: np.ndarray,
    phi: np.ndarray,
    tau: float,
    kappa: float,
    n_battles: int,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Battles drawn from the two-tie Davidson model of `ties.py` (natural-unit parameters)."""
    rng = np.random.default_rng(seed)
    theta = np.asarray(theta, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    model_a = rng.integers(0, theta.size, n_battles)
    model_b = (model_a + rng.integers(1, theta.size, n_battles)) % theta.size
    mid = 0.5 * (theta[model_a] + theta[model_b])
    logits = np.column_stack([theta[model_a], theta[model_b], tau + mid, kappa + mid + phi[model_a] + phi[model_b]])
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    cumulative = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    outcome = (rng.random(n_battles)[:, None] > cumulative).sum(axis=1)
    return model_a, model_b, np.minimum(outcome, 3).astype(np.int64)
