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
