"""Style control: Bradley-Terry with per-battle style covariates, so ratings are net of style.

logit P(A wins) = theta_a - theta_b + sum_f beta_f x_f, with four features per battle, each the
normalised difference (a - b) / (a + b + 1) of answer length (tokens), markdown headers, list items and
bold spans, then standardised over the battles. Ties count half a win. Ratings intervals come from a
percentile bootstrap over battles (multinomial battle weights, `rounds` > 0) and, always, from the
sandwich; the style coefficients get both as well. Only battles inside a rated group are fitted
(`rated_groups.py`), each round of the bootstrap with its own groups, as in the plain board.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ratings.engine.bradley_terry import (
    PairData,
    _two_sided_z,
    elo_units,
    gauge_variances,
    multinomial_draws,
    percentile_intervals,
    rated_anchor,
    rated_in_rounds,
    to_elo,
    with_unrated_rounds,
)
from ratings.engine.counts import A_WINS, B_WINS, WINNER_CODES, pair_outcome_counts
from ratings.engine.covariates import CovariateRows, covariate_sandwich, fit_covariate_params
from ratings.engine.rated_groups import RatedGroups, sure_links

STYLE_FEATURES = ("length", "headers", "lists", "bold")


def _normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b + 1): bounded, and zero when both sides are equal."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a - b) / (a + b + 1.0)


def style_features(
    a_tokens: np.ndarray,
    b_tokens: np.ndarray,
    a_headers: np.ndarray,
    b_headers: np.ndarray,
    a_lists: np.ndarray,
    b_lists: np.ndarray,
    a_bold: np.ndarray,
    b_bold: np.ndarray,
) -> np.ndarray:
    """(n, 4) standardised style differences, columns in STYLE_FEATURES order."""
    raw = np.column_stack(
        [
            _normalised_difference(a_tokens, b_tokens),
            _normalised_difference(a_headers, b_headers),
            _normalised_difference(a_lists, b_lists),
            _normalised_difference(a_bold, b_bold),
        ]
    )
    spread = raw.std(axis=0)
    # A feature that never varies carries no information; leave it at zero rather than divide by 0.
    return (raw - raw.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def style_inputs_from_clean_battles(records: list[dict]) -> tuple:
    """From FastChat clean_battle records with conv_metadata: (models, model_a, model_b, outcome, features)."""
    models = sorted({r["model_a"] for r in records} | {r["model_b"] for r in records})
    index = {name: i for i, name in enumerate(models)}
    model_a = np.array([index[r["model_a"]] for r in records], dtype=np.int64)
    model_b = np.array([index[r["model_b"]] for r in records], dtype=np.int64)
    outcome = np.array([WINNER_CODES[r["winner"]] for r in records], dtype=np.int64)

    def side_totals(key: str, side: str) -> np.ndarray:
        """Sum of a metadata entry (a number, or a dict of counts) for one side."""
        values = []
        for record in records:
            value = record.get("conv_metadata", {}).get(f"{key}_{side}", 0)
            values.append(sum(value.values()) if isinstance(value, dict) else value)
        return np.asarray(values, dtype=np.float64)

    features = style_features(
        _tokens(records, "a"),
        _tokens(records, "b"),
        side_totals("header_count", "a"),
        side_totals("header_count", "b"),
        side_totals("list_count", "a"),
        side_totals("list_count", "b"),
        side_totals("bold_count", "a"),
        side_totals("bold_count", "b"),
    )
    return models, model_a, model_b, outcome, features


def _tokens(records: list[dict], side: str) -> np.ndarray:
    """Total assistant tokens of one side per record."""
    key = f"sum_assistant_{side}_tokens"
    return np.array([r.get("conv_metadata", {}).get(key, 0) for r in records], dtype=np.float64)


def battle_rows(
    model_a: np.ndarray, model_b: np.ndarray, outcome: np.ndarray, features: np.ndarray, n_models: int
) -> CovariateRows:
    """One covariate row per battle."""
    outcome = np.asarray(outcome)
    return CovariateRows(
        n_models,
        np.asarray(model_a, dtype=np.int64),
        np.asarray(model_b, dtype=np.int64),
        (outcome == A_WINS).astype(np.float64),
        (outcome == B_WINS).astype(np.float64),
        (outcome >= 2).astype(np.float64),
        np.asarray(features, dtype=np.float64).reshape(len(outcome), -1),
    )


def fit_style_controlled(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    features: np.ndarray,
    models: list[str],
    *,
    anchor: tuple[str, float] | None = None,
    rounds: int = 100,
    seed: int = 0,
    level: float = 0.95,
    feature_names: tuple[str, ...] = STYLE_FEATURES,
    progress: Callable[[int, int], None] | None = None,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
) -> dict:
    """Style-controlled ratings and style coefficients, with bootstrap (if rounds > 0) and sandwich intervals."""
    # Returns arrays "ratings", "ci_lower"/"ci_upper" (bootstrap, or sandwich when rounds == 0) and
    # "sandwich_lower"/"sandwich_upper", and "style": {name: {"coefficient", "ci_lower", "ci_upper",
    # "sandwich_lower", "sandwich_upper"}} with coefficients in log-odds per standard deviation.
    n = len(models)
    groups = PairData.from_counts(pair_outcome_counts(model_a, model_b, outcome, models)).rated_groups()
    inside = groups.within(np.asarray(model_a, dtype=np.int64), np.asarray(model_b, dtype=np.int64))
    features = np.asarray(features, dtype=np.float64).reshape(len(inside), -1)
    rows = battle_rows(
        np.asarray(model_a)[inside], np.asarray(model_b)[inside], np.asarray(outcome)[inside], features[inside], n
    )
    units = elo_units(scale, base)
    resolved = rated_anchor(models, anchor, groups)
    params = fit_covariate_params(rows)
    ratings = to_elo(params[:n], groups, resolved, units, init_rating)[0]
    beta = params[n:]
    z = _two_sided_z(level)

    covariance = covariate_sandwich(params, rows)
    variance = gauge_variances(covariance[:n, :n], groups, None if resolved is None else resolved[0])
    rating_half = z * np.sqrt(variance) / units
    beta_half = z * np.sqrt(np.diag(covariance)[n:])
    result = {
        "models": list(models),
        "ratings": ratings,
        "sandwich_lower": ratings - rating_half,
        "sandwich_upper": ratings + rating_half,
        "intervals": "bootstrap" if rounds > 0 else "sandwich",
        "rounds": rounds,
        "level": level,
        "groups": groups.label,  # rated group per model (NOT_RATED: none): ranks compare within a group only
    }
    beta_lower, beta_upper = beta - beta_half, beta + beta_half
    if rounds > 0:
        theta_samples, beta_samples, labels, pairs, score, totals = _bootstrap(
            rows, params, groups, rounds, seed, progress
        )
        rating_samples = to_elo(theta_samples, labels, resolved, units, init_rating, weights=groups.played)
        rating_samples = with_unrated_rounds(
            rating_samples, labels, groups, pairs[:, 0], pairs[:, 1], score, totals, resolved
        )
        tail = (1.0 - level) / 2.0
        result["ci_lower"], result["ci_upper"] = percentile_intervals(rating_samples, level)
        boot_lower, boot_upper = np.quantile(beta_samples, [tail, 1 - tail], axis=0)
    else:
        result["ci_lower"], result["ci_upper"] = result["sandwich_lower"], result["sandwich_upper"]
        boot_lower, boot_upper = beta_lower, beta_upper
    result["style"] = {
        name: {
            "coefficient": float(beta[i]),
            "ci_lower": float(boot_lower[i]),
            "ci_upper": float(boot_upper[i]),
            "sandwich_lower": float(beta_lower[i]),
            "sandwich_upper": float(beta_upper[i]),
        }
        for i, name in enumerate(feature_names[: beta.size])
    }
    return result


def _bootstrap(
    rows: CovariateRows,
    params: np.ndarray,
    groups: RatedGroups,
    rounds: int,
    seed: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[np.ndarray, ...]:
    """Refit on multinomial battle weights, warm-started at the full fit: strengths and coefficients (R, .),
    each round's group labels (R, M), and its ordered pairs' (P, 2) score and battles (R, P)."""
    rng = np.random.default_rng(seed)
    n = rows.n_models
    battles = np.ones(rows.model_a.size, dtype=np.int64)
    keys, pair_of = np.unique(rows.model_a * n + rows.model_b, return_inverse=True)
    pairs = np.column_stack([keys // n, keys % n])
    battle_score = rows.a_wins + 0.5 * rows.ties
    full_score = np.bincount(pair_of, battle_score, keys.size)
    links = sure_links(groups, pairs[:, 0], pairs[:, 1], full_score, np.bincount(pair_of, minlength=keys.size))
    thetas, betas, labels, scores, totals = [], [], [], [], []
    for done in range(1, rounds + 1):
        weights = multinomial_draws(rng, battles, 1)[0].astype(np.float64)
        score = np.bincount(pair_of, weights * battle_score, keys.size)[None, :]
        total = np.bincount(pair_of, weights, keys.size)[None, :]
        # A model this round leaves without battles, or one-sided, leaves its fit (see bradley_terry).
        round_labels, keep = rated_in_rounds(groups, pairs[:, 0], pairs[:, 1], score, total, links)
        if not keep.all():
            weights = weights * keep[0, pair_of]
        refit = fit_covariate_params(rows.reweighted(weights), start=params)
        thetas.append(refit[:n])
        betas.append(refit[n:])
        labels.append(round_labels[0])
        scores.append(score[0])
        totals.append(total[0])
        if progress is not None:
            progress(done, rounds)
    return np.array(thetas), np.array(betas), np.array(labels), pairs, np.array(scores), np.array(totals)
