"""Which pair of models to put in the next battle: votes go where they teach the board the most.

The probability of drawing an unordered pair mixes three parts, each a distribution over the pairs whose
two models are both *eligible* (endpoint available and admin weight > 0); other pairs get exactly 0:

- exploration (share `exploration`): over eligible pairs in proportion to the product of the two admin
  weights (uniform when they are equal), so every eligible pair stays possible;
- boost (share `boost_share`, only while an eligible model is under its boost target): one side is a
  model under its target, picked in proportion to the votes it still lacks (target - votes), so a model
  gets the whole boost share while it is the only one behind and loses it the moment it reaches the
  target; the other side is drawn in proportion to what one battle against each opponent teaches about
  the boosted model's rating (near-even, well-known opponents);
- informative (the rest): the planned use of the next `batch_votes` votes; each pair's gain in the plan
  is multiplied by the product of its admin weights.

The plan. Each quantity the board cares about is a contrast c of the strengths (natural units), with a
goal variance t_c = (goal 95% half-width / 1.96)^2:
- every difference between two of the top-k eligible rated models (all pairs, not only neighbours in
  the fitted order, which is itself uncertain); such a difference is settled when its interval excludes
  zero or is within +-top_gap_half_width_elo, so t_c = max(goal, (fitted gap / 1.96)^2);
- every eligible model's rating relative to the mean of the rated models, goal +-rating_half_width_elo.
The plan minimises sum_c (v_c / t_c)^focus_power, v_c = c'Sc. With power 1 this is the summed variance
(A-optimal), which spreads votes evenly over the board; a higher power works first on whatever is
furthest from its goal (the widest intervals, the closest unresolved top-k pairs), approaching
minimax. One battle between i and j adds p(1 - p) of Fisher information on d = e_i - e_j (p = P(i
beats j) from the ratings), so by Sherman-Morrison every v_c falls by I (c'Sd)^2 / (1 + I d'Sd). The
votes are planned in `plan_steps` equal chunks, each on the pair whose chunk lowers the objective most
given the chunks planned before it (greedy sequential design); chunk counts become the probabilities.
Drawing in proportion to one battle's gain instead spreads the draws over the many indirect pairs that
each teach a little: on the real board, drawn so for the top-10 gaps alone, only 9% of draws would pit
two top-10 models against each other. Recomputed at every snapshot, the plan keeps steering votes to
what is least known.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy.special import expit

from ratings.engine.bradley_terry import PairData, elo_units, fit_theta, penalised_hessian, to_elo
from ratings.engine.counts import PairCounts
from ratings.engine.rated_groups import RatedGroups

# Prior spread of a model nobody has voted on (Elo points): about the real board's spread (sd ~106),
# with room for a model far off it. Used where the covariance says nothing about a model.
PRIOR_SD_ELO = 150.0
# One battle carries at most p(1 - p) <= 1/4 of Fisher information, so a model with v votes cannot be
# known better than variance 4 / v: a floor against near-zero variances of models with only wins.
MAX_INFORMATION_PER_VOTE = 0.25


@dataclass(frozen=True)
class PairPolicy:
    """A pair-sampling policy: the mixed probabilities, their parts, and the share of draws by purpose."""

    probabilities: np.ndarray  # (n, n) symmetric, zero diagonal, upper triangle sums to 1
    informative: np.ndarray  # (n, n) the planned part alone (same normalisation; zeros if no share)
    boost: np.ndarray  # (n, n) the boost part alone (zeros when no model is under its target)
    exploration: np.ndarray  # (n, n) over eligible pairs, proportional to the product of admin weights
    shares: dict[str, float]  # exploration, boost, top_order, board_precision: shares of all draws, sum 1
    top: np.ndarray  # indices of the top-k eligible rated models, best first
    boosted: np.ndarray  # indices of the eligible models under their boost target


class ContrastPlan:
    """A covariance and a set of weighted contrasts, updated as planned battles add information."""

    def __init__(self, covariance: np.ndarray, contrasts: np.ndarray, goal_variance: np.ndarray, power: float):
        self.power = power
        self.covariance = np.array(covariance, dtype=np.float64)
        self.shifted = self.covariance @ contrasts  # (n, m): column m is S c_m, so c_m'Sd = shifted[i] - shifted[j]
        self.goal_variance = goal_variance
        self.variance = np.maximum(np.einsum("im,im->m", contrasts, self.shifted), 0.0)

    def _slope(self) -> np.ndarray:
        """Derivative of the objective sum (v / t)^p with respect to each contrast's variance, up to a common factor."""
        # Dividing by the largest ratio first keeps (v / t)^(p - 1) finite; only relative gains are used.
        ratio = self.variance / self.goal_variance
        ratio /= max(ratio.max(initial=0.0), 1e-300)
        return ratio ** (self.power - 1.0) / self.goal_variance

    def pair_gain(self, information: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """First-order drop of the objective if each pair (rows[k], cols[k]) gains `information[k]`."""
        # sum_m slope_m (c_m'Sd)^2 = q_ii + q_jj - 2 q_ij with q = shifted diag(slope) shifted': one
        # O(n^2 m) product, then O(1) per pair instead of O(m).
        slope = self._slope()
        # Contrasts far inside their goals weigh ~(v / t)^(p - 1) ~ nothing: leaving them out changes no gain
        # by more than 1e-12 of the largest term and makes the product much smaller.
        kept = slope > 1e-12 * slope.max(initial=0.0)
        q = (self.shifted[:, kept] * slope[kept]) @ self.shifted[:, kept].T
        diag = np.diag(q)
        spread = np.maximum(diag[rows] + diag[cols] - 2.0 * q[rows, cols], 0.0)
        s = self.covariance
        pair_variance = np.diag(s)[rows] + np.diag(s)[cols] - 2.0 * s[rows, cols]
        return information * spread / (1.0 + information * pair_variance)

    def contrast_drops(self, i: int, j: int, information: float) -> np.ndarray:
        """Weighted first-order drop of each contrast's term if battles between i and j add `information`."""
        covariation = self.shifted[i] - self.shifted[j]
        pair_variance = self.covariance[i, i] + self.covariance[j, j] - 2.0 * self.covariance[i, j]
        return self._slope() * information * covariation**2 / (1.0 + information * pair_variance)

    def add_battles(self, i: int, j: int, information: float) -> None:
        """Fold `information` (Fisher units) on e_i - e_j into the covariance (Sherman-Morrison)."""
        column = self.covariance[:, i] - self.covariance[:, j]  # S d
        factor = information / (1.0 + information * (column[i] - column[j]))
        covariation = self.shifted[i] - self.shifted[j]  # d'SC
        self.covariance -= factor * np.outer(column, column)
        self.shifted -= factor * np.outer(column, covariation)
        self.variance = np.maximum(self.variance - factor * covariation**2, 0.0)


def planned_allocation(
    plan: ContrastPlan,
    battle_information: np.ndarray,
    pair_weight: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    votes: float,
    steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy plan of `votes` in `steps` chunks: chunks per pair, and per contrast the gain they bought."""
    chunks = np.zeros(rows.size)
    bought = np.zeros(plan.variance.size)
    chunk = votes / steps
    for _ in range(steps):
        gain = pair_weight * plan.pair_gain(chunk * battle_information, rows, cols)
        best = int(np.argmax(gain))
        if not gain[best] > 0.0:
            break
        chunks[best] += 1.0
        i, j, information = rows[best], cols[best], chunk * battle_information[best]
        bought += plan.contrast_drops(i, j, information)
        plan.add_battles(i, j, information)
    return chunks, bought


def _as_vector(values, n: int, name: str, dtype=np.float64) -> np.ndarray:
    """A length-n array, or a ValueError naming the argument."""
    array = np.asarray(values, dtype=dtype)
    if array.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), not {array.shape}")
    return array


def _pair_matrix(n: int, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A symmetric (n, n) matrix with `values` on the given upper-triangle pairs, zeros elsewhere."""
    matrix = np.zeros((n, n))
    matrix[rows, cols] = values
    matrix[cols, rows] = values
    return matrix


def _normalised(values: np.ndarray) -> np.ndarray:
    """Values scaled to sum to 1; uniform when they are all zero or not finite."""
    total = values.sum()
    if not np.isfinite(total) or total <= 0.0:
        return np.full(values.size, 1.0 / values.size)
    return values / total


def fisher_covariance(data: PairData, theta: np.ndarray, groups: RatedGroups | None = None) -> np.ndarray:
    """Inverse Fisher information of theta (natural units): the covariance to plan with.

    With the fit's rated groups, the offset between two groups (never compared) is given the prior spread
    of an unknown model, so battles that would link them count as informative."""
    # Planning asks what future battles are expected to teach, so it wants expected information. The
    # sandwich covariance is right for intervals, but its meat is realised squared residuals, noisy on
    # thinly played pairs, and a planner chases that noise (bench/sampling.py measures the difference).
    covariance = np.linalg.inv(penalised_hessian(theta, data, groups))
    if groups is not None and groups.n_groups > 1:
        prior_variance = (PRIOR_SD_ELO * elo_units()) ** 2
        for group in range(groups.n_groups):
            members = (groups.label == group).astype(np.float64)
            covariance += prior_variance * np.outer(members, members)
    return covariance


def working_covariance(
    covariance: np.ndarray, votes: np.ndarray, units: float, rated: np.ndarray | None = None
) -> np.ndarray:
    """The covariance centred on the rated models, floored by the votes, with the prior for the others.

    `rated` defaults to the models with votes; a model with votes but no rating yet (say, only wins) is
    planned for like an unplayed one, at the prior spread."""
    # Only contrasts are identified; centring on the rated models makes each diagonal entry the variance
    # relative to the board's centre, their mean weighted by votes as the board weighs them (bradley_terry's
    # centring_weights); a fit's raw entries for an unplayed model are numerical noise.
    n = votes.size
    rated = votes > 0 if rated is None else rated
    votes = np.where(rated, votes, 0)
    centring = np.eye(n)  # row i maps strengths to theta_i - centre(rated theta); unplayed rows are zero
    centring[np.ix_(rated, rated)] -= votes[rated] / max(votes[rated].sum(), 1)
    centring[~rated] = 0.0
    centred = centring @ np.nan_to_num(covariance) @ centring.T
    prior_variance = (PRIOR_SD_ELO * units) ** 2
    floor = 1.0 / (MAX_INFORMATION_PER_VOTE * votes + 1.0 / prior_variance)
    centred[np.diag_indices(n)] += np.maximum(floor - np.diag(centred), 0.0)
    return centred


def rating_contrasts(candidates: np.ndarray, rated: np.ndarray) -> np.ndarray:
    """(n, candidates): column j maps strengths to candidate j's rating relative to the rated models' plain
    mean. Not the board's centre (their mean weighted by votes): measured with bench/sampling.py (16 seeds,
    widths judged against the board's centre), goals against the weighted centre made the plan chase the
    thinnest models' own variance and resolve the top 10 later (80% fewer votes than uniform, against 84%
    with the plain mean; every interval under 20 Elo: 28% against 29%)."""
    contrasts = np.eye(rated.size)[:, candidates]
    if rated.any():
        contrasts[rated] -= 1.0 / rated.sum()
    return contrasts


def top_models(ratings: np.ndarray, candidates: np.ndarray, top_k: int) -> np.ndarray:
    """Indices of the `top_k` highest-rated among `candidates` (a boolean mask), best first."""
    indices = np.flatnonzero(candidates)
    return indices[np.argsort(-ratings[indices], kind="stable")][:top_k]


def pair_policy(
    ratings: np.ndarray,
    covariance: np.ndarray,
    *,
    votes: np.ndarray,
    admin_weights: np.ndarray,
    boost_targets: np.ndarray,
    available: np.ndarray,
    exploration: float = 0.1,
    boost_share: float = 0.25,
    top_k: int = 10,
    ranked: np.ndarray | None = None,
    top_gap_half_width_elo: float = 5.0,
    rating_half_width_elo: float = 10.0,
    level: float = 0.95,
    focus_power: float = 8.0,
    batch_votes: float = 1000.0,
    plan_steps: int = 50,
    scale: float = 400.0,
    base: float = 10.0,
) -> PairPolicy:
    """Pair-drawing policy from a fit (Elo ratings, natural-unit covariance, ideally `fisher_covariance`).

    A NaN rating marks a model without a rating yet: it is planned for as an average model of unknown
    strength. `ranked` says which models may be in the top-k (default: every rated model); the top of a
    board is that of its main rated group."""
    ratings = np.asarray(ratings, dtype=np.float64)
    n = ratings.size
    covariance = np.asarray(covariance, dtype=np.float64)
    if covariance.shape != (n, n):
        raise ValueError(f"covariance must have shape ({n}, {n}), not {covariance.shape}")
    votes = _as_vector(votes, n, "votes")
    admin_weights = _as_vector(admin_weights, n, "admin_weights")
    boost_targets = _as_vector(boost_targets, n, "boost_targets")
    available = _as_vector(available, n, "available", dtype=bool)
    if np.any(admin_weights < 0) or np.any(votes < 0) or np.any(boost_targets < 0):
        raise ValueError("votes, admin weights and boost targets must be >= 0")
    if not (0.0 <= exploration <= 1.0 and 0.0 <= boost_share <= 1.0 and exploration + boost_share <= 1.0):
        raise ValueError("exploration and boost_share must be within [0, 1] and sum to at most 1")
    if min(top_gap_half_width_elo, rating_half_width_elo, batch_votes) <= 0 or plan_steps < 1 or focus_power < 1:
        raise ValueError("goals and batch_votes must be positive, plan_steps and focus_power at least 1")

    eligible = available & (admin_weights > 0)
    candidates = np.flatnonzero(eligible)
    if candidates.size < 2:
        raise ValueError("fewer than two models are available with a positive weight")
    upper_rows, upper_cols = np.triu_indices(candidates.size, k=1)
    rows, cols = candidates[upper_rows], candidates[upper_cols]

    deficit = np.where(eligible, np.maximum(boost_targets - votes, 0.0), 0.0)
    boosted = np.flatnonzero(deficit > 0)
    used_boost_share = boost_share if boosted.size else 0.0
    informative_share = 1.0 - exploration - used_boost_share

    units = elo_units(scale, base)
    rated = (votes > 0) & np.isfinite(ratings)
    if rated.all():
        theta = (ratings - np.nanmean(ratings)) * units
    else:
        # A model without a rating is planned for as an average one: its strength is not known at all.
        theta = np.where(rated, (ratings - (ratings[rated].mean() if rated.any() else 0.0)) * units, 0.0)
    p = expit(theta[rows] - theta[cols])
    battle_information = p * (1.0 - p)
    pair_weight = admin_weights[rows] * admin_weights[cols]
    # Exploration is uniform over eligible pairs when weights are equal; weights multiply in, as in the
    # weighted pair sampling of the public arena.
    explore = pair_weight / pair_weight.sum()
    sigma = working_covariance(covariance, votes, units, rated)

    # The order that matters is that of the models that can be drawn: an unavailable leader's gaps could
    # only be narrowed through others, slowly, and would soak up the plan.
    top = top_models(ratings, eligible & rated & (rated if ranked is None else np.asarray(ranked, bool)), top_k)
    # Every pair within the top-k, not just neighbours in the fitted order: close models swap places
    # from one snapshot to the next, so "adjacent" is itself uncertain.
    higher, lower = np.triu_indices(top.size, k=1)
    top_pairs = np.zeros((n, higher.size))
    top_pairs[top[higher], np.arange(higher.size)] = 1.0
    top_pairs[top[lower], np.arange(higher.size)] = -1.0
    each_rating = rating_contrasts(candidates, rated)
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    # A top-k difference is settled once its interval excludes zero or is within +-top_gap_half_width_elo:
    # its goal variance is the larger of the two, so far-apart pairs ask for almost nothing.
    gap = np.abs(theta[top[higher]] - theta[top[lower]])
    goal_variance = np.concatenate(
        [
            np.maximum((top_gap_half_width_elo * units / z) ** 2, (gap / z) ** 2),
            np.full(each_rating.shape[1], (rating_half_width_elo * units / z) ** 2),
        ]
    )
    plan = ContrastPlan(sigma, np.hstack([top_pairs, each_rating]), goal_variance, focus_power)
    chunks, bought = planned_allocation(
        plan, battle_information, pair_weight, rows, cols, max(informative_share, 0.0) * batch_votes, plan_steps
    )
    informative = _normalised(chunks)
    top_fraction = float(bought[: top_pairs.shape[1]].sum() / bought.sum()) if bought.sum() > 0 else 0.0

    boost = np.zeros(rows.size)
    if boosted.size:
        # Opponents in proportion to what one battle teaches about the boosted model's rating: spread out
        # while its rating is unknown, near-even opponents as it settles.
        for model in boosted:
            on_model = (rows == model) | (cols == model)
            own_rating = each_rating[:, np.searchsorted(candidates, model)][:, None]
            rating_plan = ContrastPlan(sigma, own_rating, np.ones(1), 1.0)
            opponents = np.zeros(rows.size)
            opponents[on_model] = pair_weight[on_model] * rating_plan.pair_gain(
                battle_information[on_model], rows[on_model], cols[on_model]
            )
            if not opponents.sum() > 0:
                opponents = on_model.astype(np.float64)
            boost += (deficit[model] / deficit.sum()) * opponents / opponents.sum()

    mixed = exploration * explore + used_boost_share * boost + informative_share * informative
    return PairPolicy(
        probabilities=_pair_matrix(n, rows, cols, mixed / mixed.sum()),
        informative=_pair_matrix(n, rows, cols, informative if informative_share > 0 else np.zeros(rows.size)),
        boost=_pair_matrix(n, rows, cols, boost),
        exploration=_pair_matrix(n, rows, cols, explore),
        shares={
            "exploration": float(exploration),
            "boost": float(used_boost_share),
            "top_order": informative_share * top_fraction,
            "board_precision": informative_share * (1.0 - top_fraction),
        },
        top=top,
        boosted=boosted,
    )


def policy_summary(policy: PairPolicy) -> dict[str, float | int]:
    """Plain figures for the 'about the ratings' page: shares of draws by purpose, and top-k pairings."""
    n = policy.probabilities.shape[0]
    in_top = np.zeros(n, dtype=bool)
    in_top[policy.top] = True
    upper = np.triu(policy.probabilities, k=1)
    return {
        **policy.shares,
        "top_k": int(policy.top.size),
        "boosted_models": int(policy.boosted.size),
        # Share of all battles that pit two top-k models against each other, whatever part drew them.
        "top_k_pairs": float(upper[np.ix_(in_top, in_top)].sum()),
    }


def describe_policy(summary: dict[str, float | int]) -> str:
    """The summary as one short paragraph of plain words."""
    k = summary["top_k"]
    parts = [
        f"{summary['exploration']:.0%} of battles pair two available models at random",
        f"{summary['top_order']:.0%} go where they best settle the order of the top {k}",
        f"{summary['board_precision']:.0%} go where they best narrow the widest intervals",
    ]
    if summary["boosted_models"]:
        models = "model" if summary["boosted_models"] == 1 else "models"
        parts.append(f"{summary['boost']:.0%} help {summary['boosted_models']} new {models} reach their target")
    pairs = f"In all, {summary['top_k_pairs']:.0%} of battles pit two top-{k} models against each other."
    return "; ".join(parts) + ". " + pairs


def policy_for_counts(
    pc: PairCounts,
    *,
    admin_weights: np.ndarray,
    boost_targets: np.ndarray,
    available: np.ndarray,
    **settings,
) -> PairPolicy:
    """The policy for a board's pair counts (models in `pc.models` order, those without battles included):
    fits the strengths, plans with their Fisher covariance, counts each model's votes."""
    data = PairData.from_counts(pc)
    groups = data.rated_groups()
    theta = fit_theta(data, groups=groups)
    ratings = to_elo(theta, groups, None, elo_units(), 1000.0)[0]
    return pair_policy(
        ratings, fisher_covariance(data, theta, groups), votes=pc.votes_per_model(), admin_weights=admin_weights,
        boost_targets=boost_targets, available=available, ranked=groups.label == 0, **settings,
    )  # fmt: skip


def pair_list(probabilities: np.ndarray) -> list[tuple[int, int, float]]:
    """(i, j, probability) of every unordered pair with i < j and a probability above zero."""
    upper = np.triu(np.asarray(probabilities), k=1)
    return [(int(i), int(j), float(upper[i, j])) for i, j in zip(*np.nonzero(upper), strict=True)]
