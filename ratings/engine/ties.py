"""Tie-aware ratings: a Davidson model with separate "tie" and "both bad" outcomes.

For a battle between models a and b the four outcomes have weights

    A wins:    exp(theta_a)
    B wins:    exp(theta_b)
    tie:       exp(tau   + (theta_a + theta_b) / 2)
    both bad:  exp(kappa + (theta_a + theta_b) / 2 + phi_a + phi_b)

and probabilities proportional to them (a multinomial logit). With phi = 0 this is Davidson's (1970)
tie model with two tie strengths, nu_tie = exp(tau) and nu_both_bad = exp(kappa): ties are likeliest
between equals, and a tie is worth half a win in the sense that it carries the geometric mean of the two
strengths. phi_i is model i's both-bad propensity, a multiplicative factor exp(phi_i) on the odds that
a battle it is in ends with both answers judged bad; theta and phi each have mean zero over the models
with battles (their gauge), so exp(kappa) is the both-bad strength for a pair of average propensity.

Each phi_i has a weak Gaussian prior N(0, PROPENSITY_PRIOR_SD^2): it is shrunk toward the average
propensity. Without it a model that has not yet had a both-bad vote (a new model with 100 votes at a 5%
rate, one time in 170) is fitted at phi -> -infinity, stopped only by the tiny ridge (near -16 on a small
board): a fitted P(both bad) of ~1e-9, published as a 0% rate with a zero-width interval, and a null for the
judge screen (`anomaly.py`) under which an honest visitor's first both-bad vote on that model is near
impossible. The prior's precision is about the information of one both-bad vote, so a model with n of them
is pulled toward the average by roughly 1/(n + 1) of its distance from it; on the real board (every model
has 185 or more) no rate moves by more than 0.03 percentage points and no rating by more than 0.06 Elo.

The model is fitted by penalised Newton on the side-merged pair counts (it is symmetric in the sides).
Each model's opponent-adjusted both-bad rate is its fitted P(both bad) averaged over all other models as
opponents, i.e. against the same field for every model; its interval is a delta-method interval on the
logit scale with the larger of the sandwich (robust) and the model-based variance (the sandwich alone is far
too narrow for a model with few both-bad votes). Ratings are exp(theta) strengths on the Elo scale.

Strengths exist under the same condition as the half-win Bradley-Terry ones (a tie of either kind links two
models both ways), so the fit takes the same rated groups (`rated_groups.py`): only battles inside a group
are fitted, theta is centred per group, and a model without a rating, pinned at zero, gets no row and no
predicted outcome (`outcome_probabilities` is NaN for it and between groups).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, softmax

from ratings.engine.bradley_terry import RIDGE, PairData, _two_sided_z, gauge_matrix, rated_anchor, to_elo
from ratings.engine.bradley_terry import elo_units as _elo_units
from ratings.engine.counts import BOTH_BAD, TIE, PairCounts, merge_sides
from ratings.engine.newton import damped_newton_maximise
from ratings.engine.rated_groups import NOT_RATED, RatedGroups

# Prior standard deviation of each both-bad propensity phi_i (natural log odds). One unit is a factor e on a
# model's both-bad odds, about 4.5 times the spread of the real board's fitted propensities (sd 0.22, from
# -0.7 to +0.44), so the prior is wide where data exist; its precision, 1, is about the information of one
# both-bad vote (the Fisher information on the log odds of a rare outcome is its expected count).
PROPENSITY_PRIOR_SD = 1.0

# Rows: outcomes (A wins, B wins, tie, both bad); columns: local parameters
# (theta_a, theta_b, phi_a, phi_b, tau, kappa). Linear predictor of outcome k = DESIGN[k] @ local.
DESIGN = np.array(
    [
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        [0.5, 0.5, 0.0, 0.0, 1.0, 0.0],
        [0.5, 0.5, 1.0, 1.0, 0.0, 1.0],
    ]
)


def _local_index(model_a: np.ndarray, model_b: np.ndarray, n_models: int) -> np.ndarray:
    """(P, 6) positions of each pair's local parameters in the full vector [theta, phi, tau, kappa]."""
    size = model_a.size
    return np.column_stack(
        [
            model_a,
            model_b,
            n_models + model_a,
            n_models + model_b,
            np.full(size, 2 * n_models),
            np.full(size, 2 * n_models + 1),
        ]
    )


def _probabilities(params: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(P, 4) outcome probabilities."""
    return softmax(params[index] @ DESIGN.T, axis=1)


def _scatter_blocks(blocks: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """Sum (P, 6, 6) local blocks into a (size, size) matrix."""
    flat = (index[:, :, None] * size + index[:, None, :]).ravel()
    return np.bincount(flat, blocks.ravel(), size * size).reshape(size, size)


def _penalty_hessian(size: int, n_models: int, groups: RatedGroups | None = None) -> np.ndarray:
    """Gauge terms for theta (each rated group's mean) and phi (the rated models' mean; phi compares across
    groups through the shared both-bad strength), a model without a rating pinned at zero, the propensity
    prior, the tiny ridge."""
    penalty = np.zeros((size, size))
    penalty[:n_models, :n_models] = gauge_matrix(groups, n_models)
    one_group = None if groups is None else RatedGroups(np.where(groups.rated, 0, NOT_RATED), groups.battles[:1])
    penalty[n_models : 2 * n_models, n_models : 2 * n_models] = gauge_matrix(one_group, n_models)
    # The prior is centred at zero, which the gauge makes the propensities' mean: for given differences
    # sum(phi^2) is least at mean zero, so the prior leaves the gauge, and kappa's meaning, as they were.
    propensities = np.arange(n_models, 2 * n_models)
    penalty[propensities, propensities] += 1.0 / PROPENSITY_PRIOR_SD**2
    penalty[np.diag_indices(size)] += RIDGE
    return penalty


def _objective(params: np.ndarray, counts: np.ndarray, index: np.ndarray, penalty: np.ndarray) -> float:
    """Penalised multinomial log-likelihood."""
    log_p = log_softmax(params[index] @ DESIGN.T, axis=1)
    return float(np.sum(counts * log_p) - 0.5 * params @ penalty @ params)


def _gradient_and_hessian(
    params: np.ndarray, counts: np.ndarray, index: np.ndarray, penalty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and negative Hessian of `_objective`."""
    size = params.size
    p = _probabilities(params, index)
    totals = counts.sum(axis=1)
    mean_design = p @ DESIGN
    local_gradient = counts @ DESIGN - totals[:, None] * mean_design
    gradient = np.bincount(index.ravel(), local_gradient.ravel(), size) - penalty @ params
    local_hessian = totals[:, None, None] * (
        np.einsum("pk,ki,kj->pij", p, DESIGN, DESIGN) - mean_design[:, :, None] * mean_design[:, None, :]
    )
    return gradient, _scatter_blocks(local_hessian, index, size) + penalty


def _sandwich(
    params: np.ndarray, counts: np.ndarray, index: np.ndarray, penalty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Robust covariance (each battle's score is its outcome's design row minus the expected row), and the
    model-based one (the inverse of the penalised negative Hessian, the bread)."""
    p = _probabilities(params, index)
    centred = DESIGN[None, :, :] - (p @ DESIGN)[:, None, :]
    meat = _scatter_blocks(np.einsum("pk,pki,pkj->pij", counts, centred, centred), index, params.size)
    _, bread = _gradient_and_hessian(params, counts, index, penalty)
    bread_inverse = np.linalg.inv(bread)
    return bread_inverse @ meat @ bread_inverse, bread_inverse


def tie_groups(pc: PairCounts) -> RatedGroups:
    """The rated groups of a board (the same as its Bradley-Terry fit's)."""
    return PairData.from_counts(pc).rated_groups()


def fit_tie_params(pc: PairCounts, max_iter: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Penalised MLE [theta, phi, tau, kappa] by damped Newton; also (counts, index, penalty) for reuse.

    Only battles inside a rated group are fitted (`tie_groups`); the others carry no information on a
    strength that exists."""
    merged = merge_sides(pc)
    n = pc.n_models
    groups = tie_groups(pc)
    if not groups.is_single:
        inside = groups.within(merged.pairs[:, 0], merged.pairs[:, 1])
        merged = PairCounts(merged.models, merged.pairs[inside], merged.counts[inside])
    counts = merged.counts.astype(np.float64)
    index = _local_index(merged.pairs[:, 0], merged.pairs[:, 1], n)
    size = 2 * n + 2
    penalty = _penalty_hessian(size, n, groups)
    params = np.zeros(size)
    # Start the tie strengths at their pooled log-odds against a decisive outcome between equals.
    pooled = counts.sum(axis=0) + 0.5
    params[2 * n] = np.log(pooled[2] / (0.5 * (pooled[0] + pooled[1])))
    params[2 * n + 1] = np.log(pooled[3] / (0.5 * (pooled[0] + pooled[1])))

    def newton_step(params: np.ndarray) -> np.ndarray:
        gradient, hessian = _gradient_and_hessian(params, counts, index, penalty)
        return np.linalg.solve(hessian, gradient)

    params = damped_newton_maximise(
        lambda params: _objective(params, counts, index, penalty), newton_step, params, max_iter=max_iter
    )
    return params, counts, index, penalty


def adjusted_both_bad_rates(params: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each model's P(both bad) averaged over the other models of its group, and its gradient (M, params).

    `active` is a boolean mask of one group, or group labels (NOT_RATED: no rate)."""
    labels = np.where(active, 0, NOT_RATED) if np.asarray(active).dtype == bool else np.asarray(active)
    n = labels.size
    players = np.flatnonzero(labels != NOT_RATED)
    model_a, model_b = np.meshgrid(players, players, indexing="ij")
    # Only opponents of the same group: a prediction across groups would compare ratings that do not compare.
    opponent = (model_a != model_b) & (labels[model_a] == labels[model_b])
    model_a, model_b = model_a[opponent], model_b[opponent]
    index = _local_index(model_a, model_b, n)
    p = _probabilities(params, index)
    both_bad = p[:, 3]
    local_gradient = both_bad[:, None] * (DESIGN[3] - p @ DESIGN)
    opponents = np.maximum(np.bincount(model_a, minlength=n), 1)
    rates = np.bincount(model_a, both_bad, n) / opponents
    flat = (model_a[:, None] * params.size + index).ravel()
    gradient = np.bincount(flat, local_gradient.ravel(), n * params.size).reshape(n, params.size) / opponents[:, None]
    rates[labels == NOT_RATED] = np.nan
    return rates, gradient


def fit_tie_model(
    pc: PairCounts,
    *,
    anchor: tuple[str, float] | None = None,
    level: float = 0.95,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
) -> dict:
    """Davidson ratings, tie and both-bad strengths, and opponent-adjusted both-bad rates with intervals."""
    n = pc.n_models
    params, counts, index, penalty = fit_tie_params(pc)
    covariance, model_covariance = _sandwich(params, counts, index, penalty)
    z = _two_sided_z(level)
    votes = pc.votes_per_model()
    groups = tie_groups(pc)
    ratings = to_elo(params[:n], groups, rated_anchor(pc.models, anchor, groups), _elo_units(scale, base), init_rating)
    ratings = ratings[0]

    rates, gradient = adjusted_both_bad_rates(params, groups.label)
    # The sandwich estimates a rate's variance from the scores seen; a model with few or no both-bad votes
    # has scores that barely vary (no event: each is minus a small probability), so its robust interval is
    # far too narrow. The model-based variance takes the spread from the fitted probabilities instead; the
    # larger of the two is used (on the real board they differ by under 2% for every model).
    robust_variance = np.einsum("iq,qr,ir->i", gradient, covariance, gradient)
    model_variance = np.einsum("iq,qr,ir->i", gradient, model_covariance, gradient)
    rate_se = np.sqrt(np.maximum(np.maximum(robust_variance, model_variance), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        logit = np.log(rates / (1.0 - rates))
        logit_half = z * rate_se / (rates * (1.0 - rates))
    # expit, not 1 / (1 + exp(-x)): a model with very few votes has a half-width of dozens of log-odds units
    # (its lower end 0), where exp overflowed with a warning.
    rate_lower = expit(logit - logit_half)
    rate_upper = expit(logit + logit_half)
    # Observed over all the model's battles (its fitted rate uses those inside its group only).
    both_bad = pc.counts[:, 3].astype(np.float64)
    both_bad_votes = np.bincount(pc.pairs[:, 0], both_bad, n) + np.bincount(pc.pairs[:, 1], both_bad, n)

    def strength(position: int, outcome: int) -> dict:
        """exp of a log tie strength with its interval. With no such outcome yet the sandwich's scores do not
        vary and its interval collapsed onto the ridge's ~1e-8 ([7e-9, 1.3e-8] after 30 battles: certainty,
        where they allow a rate of several per cent): then it is [0, the strength at which seeing none has
        chance (1 - level) / 2]."""
        value, half = params[position], z * np.sqrt(covariance[position, position])
        if counts[:, outcome].sum() == 0:
            return {"value": float(np.exp(value)), "ci_lower": 0.0,
                    "ci_upper": _none_seen_upper(params, counts, index, position, outcome, level)}  # fmt: skip
        return {
            "value": float(np.exp(value)),
            "ci_lower": float(np.exp(value - half)),
            "ci_upper": float(np.exp(value + half)),
        }

    rated = groups.rated
    order = np.flatnonzero(rated)[np.lexsort((-ratings[rated], groups.label[rated]))]
    return {
        "method": "davidson-two-ties",
        "level": level,
        "tie_strength": strength(2 * n, TIE),
        "both_bad_strength": strength(2 * n + 1, BOTH_BAD),
        "models": [
            {
                "name": pc.models[i],
                "rating": float(ratings[i]),
                "both_bad_propensity": float(params[n + i]),
                "both_bad_rate": float(rates[i]),
                "both_bad_rate_lower": float(rate_lower[i]),
                "both_bad_rate_upper": float(rate_upper[i]),
                "observed_both_bad_rate": float(both_bad_votes[i] / votes[i]),
                "votes": int(votes[i]),
            }
            for i in order.tolist()
        ],
    }


def _none_seen_upper(
    params: np.ndarray, counts: np.ndarray, index: np.ndarray, position: int, outcome: int, level: float
) -> float:
    """The strength (at `position`, the others as fitted) at which the battles in `counts` give no outcome of
    that kind with chance (1 - level) / 2; +inf when no strength makes that chance so small (a handful of
    battles between very unequal models)."""
    target = -np.log((1.0 - level) / 2.0)  # -log P(none seen)
    battles = counts.sum(axis=1)

    def surprise(log_strength: float) -> float:
        trial = params.copy()
        trial[position] = log_strength
        return float(-(battles @ np.log1p(-_probabilities(trial, index)[:, outcome])))

    low, high = params[position], params[position] + 1.0
    while surprise(high) < target:
        if high > 50.0:
            return float("inf")
        low, high = high, high + 2.0 * (high - low)
    for _ in range(60):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if surprise(middle) < target else (low, middle)
    return float(np.exp(high))
