"""Damped Newton ascent, shared by every maximum-likelihood fit in the engine."""

from collections.abc import Callable

import numpy as np

# Largest move of any parameter in one step (natural units, ~350 Elo points): guards against overshoot
# when a model has (nearly) only wins or only losses.
MAX_STEP = 2.0
# Converged once no parameter moves by more than this (natural units; about 2e-8 Elo points).
STEP_TOLERANCE = 1e-10


def damped_newton_maximise(
    objective: Callable[[np.ndarray], float],
    newton_step: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    *,
    max_iter: int,
) -> np.ndarray:
    """Maximise a concave objective from `start`: each Newton step is capped at MAX_STEP and halved
    until it does not lower the objective; stop when the step falls below STEP_TOLERANCE."""
    params = np.array(start, dtype=np.float64)
    current = objective(params)
    for _ in range(max_iter):
        step = newton_step(params)
        largest = np.abs(step).max(initial=0.0)
        if largest > MAX_STEP:
            step *= MAX_STEP / largest
        # The objective is concave, so halving an overshooting step always helps eventually.
        for _ in range(30):
            candidate = params + step
            value = objective(candidate)
            if value >= current - 1e-12 * abs(current):
                break
            step *= 0.5
        params, current = candidate, value
        if largest < STEP_TOLERANCE:
            break
    return params
