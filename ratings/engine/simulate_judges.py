"""Simulated judges for the anomaly screen: honest voters drawn from a fit, and attackers."""

from __future__ import annotations

import numpy as np

from ratings.engine import ties
from ratings.engine.counts import A_WINS, B_WINS

# Honest timing (assumed, not measured): the time needed to skim both answers has a median of 20 s;
# each judge's typical vote comes exp(N(0.7, 0.3^2)) times that late and each vote varies by a further
# factor exp(N(0, 0.4^2)), so a typical honest judge beats the skim time on ~4% of votes and a judge two
# standard deviations quicker than typical on ~40%.
MEDIAN_SECONDS_TO_READ = 20.0
HONEST_DELAY_MEAN, HONEST_DELAY_JUDGE_SD, HONEST_DELAY_VOTE_SD = 0.7, 0.3, 0.4
# Fast clickers vote 1-5 s after the answers finish, whatever their length.
FAST_CLICK_SECONDS = (1.0, 5.0)


def uniform_battles(rng: np.random.Generator, n_models: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Ordered pairs of distinct models drawn uniformly, as the arena draws them: (left, right)."""
    model_a = rng.integers(0, n_models, shape)
    # An offset in 1..n-1 gives a distinct partner, uniformly over the others.
    model_b = (model_a + rng.integers(1, n_models, shape)) % n_models
    return model_a, model_b


def target_battles(
    rng: np.random.Generator, n_models: int, target: int, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Battles that contain `target`: the uniform battles an attacker who skips all others gets to vote on."""
    opponent = (target + rng.integers(1, n_models, shape)) % n_models
    target_left = rng.random(shape) < 0.5
    return np.where(target_left, target, opponent), np.where(target_left, opponent, target)


def outcomes_from_table(
    rng: np.random.Generator, table: np.ndarray, model_a: np.ndarray, model_b: np.ndarray
) -> np.ndarray:
    """Honest votes: one outcome per battle drawn from the fit's probabilities for its ordered pair."""
    cumulative = np.cumsum(table[model_a, model_b], axis=-1)
    draw = rng.random(model_a.shape)[..., None]
    return np.minimum((draw > cumulative).sum(axis=-1), 3).astype(np.int64)


def outcomes_with_taste(
    rng: np.random.Generator,
    params: np.ndarray,
    model_a: np.ndarray,
    model_b: np.ndarray,
    taste_sd: float,
) -> np.ndarray:
    """Honest votes from judges with their own taste: Davidson strengths shifted by N(0, taste_sd^2) per judge and model."""
    # Rows of model_a / model_b are judges; each judge's shift of each model is fixed across their votes.
    n_models = (params.size - 2) // 2
    n_judges = model_a.shape[0]
    shift = rng.normal(0.0, taste_sd, (n_judges, n_models))
    rows = np.arange(n_judges)[:, None]
    local = params[ties._local_index(model_a.ravel(), model_b.ravel(), n_models)].reshape(*model_a.shape, 6)
    local[..., 0] += shift[rows, model_a]
    local[..., 1] += shift[rows, model_b]
    logits = local @ ties.DESIGN.T
    probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    draw = rng.random(model_a.shape)[..., None]
    return np.minimum((draw > np.cumsum(probabilities, axis=-1)).sum(axis=-1), 3).astype(np.int64)


def target_outcomes(
    rng: np.random.Generator,
    table: np.ndarray,
    model_a: np.ndarray,
    model_b: np.ndarray,
    target: int,
    elsewhere: str,
) -> np.ndarray:
    """An attacker's votes: the target wins whenever present; elsewhere "honest" or "random" (left or right)."""
    if elsewhere == "honest":
        outcome = outcomes_from_table(rng, table, model_a, model_b)
    elif elsewhere == "random":
        outcome = np.where(rng.random(model_a.shape) < 0.5, A_WINS, B_WINS)
    else:
        raise ValueError('elsewhere must be "honest" or "random"')
    outcome = np.where(model_a == target, A_WINS, outcome)
    return np.where(model_b == target, B_WINS, outcome).astype(np.int64)


def honest_timing(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(seconds_to_vote, seconds_to_read) of honest judges (rows) who read before voting."""
    seconds_to_read = MEDIAN_SECONDS_TO_READ * np.exp(rng.normal(0.0, 0.6, shape))
    judge_delay = rng.normal(HONEST_DELAY_MEAN, HONEST_DELAY_JUDGE_SD, (shape[0], 1))
    delay = np.exp(judge_delay + rng.normal(0.0, HONEST_DELAY_VOTE_SD, shape))
    return seconds_to_read * delay, seconds_to_read


def fast_clicker_timing(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(seconds_to_vote, seconds_to_read) of judges who click within seconds whatever the answers' length."""
    seconds_to_read = MEDIAN_SECONDS_TO_READ * np.exp(rng.normal(0.0, 0.6, shape))
    return rng.uniform(*FAST_CLICK_SECONDS, shape), seconds_to_read
