"""Bradley-Terry with shared covariates: logit P(A wins) = theta_a - theta_b + x . beta.

The common core of the position term (x = 1 for every battle, using the ordered sides) and of style
control (x = standardised style differences per battle). Rows are either pairs with counts or single
battles (one count); ties and both-bad ties count as half a win for each side, as in the plain fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit

from ratings.engine.bradley_terry import RIDGE, PairData, fit_theta, laplacian
from ratings.engine.newton import damped_newton_maximise


@dataclass(frozen=True)
class CovariateRows:
    """Rows of the covariate model: who played whom, how it went, and the covariates."""

    n_models: int
    model_a: np.ndarray  # (R,) int
    model_b: np.ndarray  # (R,) int
    a_wins: np.ndarray  # (R,) float
    b_wins: np.ndarray  # (R,) float
    ties: np.ndarray  # (R,) float, both kinds of tie together
    features: np.ndarray  # (R, F) float

    def reweighted(self, weights: np.ndarray) -> CovariateRows:
        """The same rows with every count multiplied by `weights` (a bootstrap resample)."""
        return CovariateRows(
            self.n_models,
            self.model_a,
            self.model_b,
            self.a_wins * weights,
            self.b_wins * weights,
            self.ties * weights,
            self.features,
        )


@dataclass(frozen=True)
class CovariateFit:
    """Strengths and covariate coefficients (natural log-odds units) with their sandwich covariance."""

    theta: np.ndarray  # (M,), mean zero
    beta: np.ndarray  # (F,)
    covariance: np.ndarray  # (M + F, M + F)


def _probability(params: np.ndarray, rows: CovariateRows) -> np.ndarray:
    """P(A wins) per row at parameters [theta, beta]."""
    n = rows.n_models
    return expit(params[rows.model_a] - params[rows.model_b] + rows.features @ params[n:])


def _objective(params: np.ndarray, rows: CovariateRows) -> float:
    """Penalised ties-as-half-wins log-likelihood (gauge term and tiny ridge as in the plain fit)."""
    n = rows.n_models
    margin = params[rows.model_a] - params[rows.model_b] + rows.features @ params[n:]
    score = rows.a_wins + 0.5 * rows.ties
    losses = rows.b_wins + 0.5 * rows.ties
    value = np.sum(score * log_expit(margin) + losses * log_expit(-margin))
    return float(value - 0.5 * RIDGE * params @ params - 0.5 * params[:n].sum() ** 2 / n)


def _curvature(rows: CovariateRows, weights: np.ndarray) -> np.ndarray:
    """sum_rows weights * z z^T with z = (e_a - e_b, x): the Hessian's and the meat's shape."""
    n = rows.n_models
    x = rows.features
    block = np.zeros((n + x.shape[1], n + x.shape[1]))
    block[:n, :n] = laplacian(rows.model_a, rows.model_b, weights, n)
    weighted_x = weights[:, None] * x
    cross = np.stack(
        [np.bincount(rows.model_a, column, n) - np.bincount(rows.model_b, column, n) for column in weighted_x.T],
        axis=1,
    ).reshape(n, x.shape[1])
    block[:n, n:] = cross
    block[n:, :n] = cross.T
    block[n:, n:] = x.T @ weighted_x
    return block


def _penalised_hessian(params: np.ndarray, rows: CovariateRows) -> np.ndarray:
    """Negative Hessian of `_objective`."""
    n = rows.n_models
    p = _probability(params, rows)
    totals = rows.a_wins + rows.b_wins + rows.ties
    hessian = _curvature(rows, totals * p * (1.0 - p))
    hessian[:n, :n] += 1.0 / n
    hessian[np.diag_indices(hessian.shape[0])] += RIDGE
    return hessian


def _gradient(params: np.ndarray, rows: CovariateRows) -> np.ndarray:
    """Gradient of `_objective`."""
    n = rows.n_models
    totals = rows.a_wins + rows.b_wins + rows.ties
    residual = rows.a_wins + 0.5 * rows.ties - totals * _probability(params, rows)
    gradient = np.concatenate(
        [
            np.bincount(rows.model_a, residual, n) - np.bincount(rows.model_b, residual, n),
            rows.features.T @ residual,
        ]
    )
    gradient -= RIDGE * params
    gradient[:n] -= params[:n].sum() / n
    return gradient


def _plain_start(rows: CovariateRows) -> np.ndarray:
    """Starting point: the plain Bradley-Terry fit on rows aggregated per pair, covariates at zero."""
    # Per-battle rows repeat pairs many times; the aggregated fit is cheap and leaves Newton a few steps.
    n = rows.n_models
    keys, inverse = np.unique(rows.model_a * n + rows.model_b, return_inverse=True)
    size = keys.size
    pairs = PairData(
        n,
        keys // n,
        keys % n,
        np.bincount(inverse, rows.a_wins, size),
        np.bincount(inverse, rows.b_wins, size),
        np.bincount(inverse, rows.ties, size),
    )
    return np.concatenate([fit_theta(pairs), np.zeros(rows.features.shape[1])])


def fit_covariate_params(rows: CovariateRows, start: np.ndarray | None = None, max_iter: int = 100) -> np.ndarray:
    """Penalised maximum likelihood [theta, beta] by damped Newton."""
    return damped_newton_maximise(
        lambda params: _objective(params, rows),
        lambda params: np.linalg.solve(_penalised_hessian(params, rows), _gradient(params, rows)),
        _plain_start(rows) if start is None else start,
        max_iter=max_iter,
    )


def covariate_sandwich(params: np.ndarray, rows: CovariateRows) -> np.ndarray:
    """Robust covariance of [theta, beta]: bread^-1 meat bread^-1 over independent battles."""
    p = _probability(params, rows)
    meat = _curvature(rows, rows.a_wins * (1.0 - p) ** 2 + rows.b_wins * p**2 + rows.ties * (0.5 - p) ** 2)
    bread_inverse = np.linalg.inv(_penalised_hessian(params, rows))
    return bread_inverse @ meat @ bread_inverse


def fit_with_covariates(rows: CovariateRows) -> CovariateFit:
    """Fit strengths and covariate coefficients, with the sandwich covariance."""
    params = fit_covariate_params(rows)
    n = rows.n_models
    return CovariateFit(params[:n], params[n:], covariate_sandwich(params, rows))
