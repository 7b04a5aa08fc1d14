"""Online Elo: the order-dependent rating that the arena showed before Bradley-Terry."""

from __future__ import annotations

import numpy as np

# Points side A scores for each outcome code: win, loss, tie, both-bad tie.
SCORE_OF_A = np.array([1.0, 0.0, 0.5, 0.5])


def elo_update(
    rating_a: float, rating_b: float, outcome: int, *, k: float = 4.0, scale: float = 400.0, base: float = 10.0
) -> tuple[float, float]:
    """Ratings after one battle; ties and both-bad ties score half a win for each side."""
    expected_a = 1.0 / (1.0 + base ** ((rating_b - rating_a) / scale))
    delta = k * (SCORE_OF_A[outcome] - expected_a)
    return rating_a + delta, rating_b - delta


def online_elo(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    n_models: int,
    *,
    k: float = 4.0,
    init: float = 1000.0,
    scale: float = 400.0,
    base: float = 10.0,
) -> np.ndarray:
    """Replay battles in the given order with `elo_update`; returns the final ratings."""
    ratings = np.full(n_models, float(init))
    scores = SCORE_OF_A[np.asarray(outcome, dtype=np.int64)]
    # A plain loop: each update depends on the previous one, so there is nothing to vectorise.
    for a, b, score in zip(np.asarray(model_a).tolist(), np.asarray(model_b).tolist(), scores.tolist(), strict=True):
        expected_a = 1.0 / (1.0 + base ** ((ratings[b] - ratings[a]) / scale))
        delta = k * (score - expected_a)
        ratings[a] += delta
        ratings[b] -= delta
    return ratings
