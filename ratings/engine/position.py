"""Position (left/right) advantage: Bradley-Terry with one shared term for the left side.

logit P(left wins) = theta_left - theta_right + eta, fitted on the ordered (a, b) = (left, right) pairs,
ties counting half a win. eta is reported in Elo points: the rating gap the left seat is worth.
Intervals are sandwich (robust) intervals. Data whose sides were discarded (e.g. pairs stored as i < j)
cannot identify eta meaningfully. Only battles inside a rated group (`rated_groups.py`) are fitted; the
ratings returned are those of the rated models, centred group by group.
"""

from __future__ import annotations

import numpy as np

from ratings.engine.bradley_terry import PairData, _two_sided_z, elo_units, rated_anchor, to_elo
from ratings.engine.counts import A_WINS, B_WINS, BOTH_BAD, TIE, PairCounts
from ratings.engine.covariates import CovariateRows, fit_with_covariates


def position_rows(pc: PairCounts) -> CovariateRows:
    """Ordered pair rows with a constant covariate of one (the left seat)."""
    counts = pc.counts.astype(np.float64)
    return CovariateRows(
        pc.n_models,
        pc.pairs[:, 0],
        pc.pairs[:, 1],
        counts[:, A_WINS],
        counts[:, B_WINS],
        counts[:, TIE] + counts[:, BOTH_BAD],
        np.ones((len(pc.pairs), 1)),
    )


def fit_position(
    pc: PairCounts,
    *,
    anchor: tuple[str, float] | None = None,
    level: float = 0.95,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
) -> dict:
    """Left-seat advantage in Elo points with its interval, and the ratings adjusted for it."""
    groups = PairData.from_counts(pc).rated_groups()
    inside = groups.within(pc.pairs[:, 0], pc.pairs[:, 1])
    rows = position_rows(PairCounts(pc.models, pc.pairs[inside], pc.counts[inside]))
    fit = fit_with_covariates(rows)
    units = elo_units(scale, base)
    eta = float(fit.beta[0])
    standard_error = float(np.sqrt(fit.covariance[-1, -1]))
    half_width = _two_sided_z(level) * standard_error
    ratings = to_elo(fit.theta, groups, rated_anchor(pc.models, anchor, groups), units, init_rating)[0]
    return {
        "elo_points": eta / units,
        "ci_lower": (eta - half_width) / units,
        "ci_upper": (eta + half_width) / units,
        "level": level,
        "log_odds": eta,
        "left_score_between_equals": float(1.0 / (1.0 + np.exp(-eta))),
        "ratings": {name: float(r) for name, r, rated in zip(pc.models, ratings, groups.rated, strict=True) if rated},
    }
