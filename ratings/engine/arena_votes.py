"""Boards that need single arena votes rather than pair counts: style control and the left-seat advantage.

Imported logs are left out by the caller: pair counts carry no style, and their sides may not be real seats.
Each result has a "reason" that is empty when it was fitted, and otherwise says why it was not.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ratings.engine.counts import N_OUTCOMES, pair_outcome_counts
from ratings.engine.leaderboard import json_safe, ranked_rows
from ratings.engine.position import fit_position
from ratings.engine.style import fit_style_controlled, style_features

# The per-side style counts each vote carries, named as `style_features` takes them.
STYLE_COUNTS = ("tokens", "headers", "lists", "bold")
# The style bootstrap refits battle by battle, so it is capped below the board's rounds.
STYLE_BOOTSTRAP_ROUNDS = 100
_FIT_ERRORS = (ValueError, np.linalg.LinAlgError, FloatingPointError)


class ArenaVotes(NamedTuple):
    """One row per counted arena vote: model indices into `models`, outcome code, style counts per side."""

    models: list[str]
    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray
    style_a: dict[str, np.ndarray]  # STYLE_COUNTS -> (n,) counts of the left answer
    style_b: dict[str, np.ndarray]

    @property
    def n_votes(self) -> int:
        return int(self.outcome.size)


def arena_votes_json(votes: ArenaVotes) -> dict:
    """The download format: model names, then per vote (in order) the two models' indices, the outcome code
    and each side's style counts, all integers."""
    return {
        "models": list(votes.models),
        "model_a": votes.model_a.astype(np.int64).tolist(),
        "model_b": votes.model_b.astype(np.int64).tolist(),
        "outcome": votes.outcome.astype(np.int64).tolist(),
        **{f"style_{side}": {key: getattr(votes, f"style_{side}")[key].astype(np.int64).tolist() for key in STYLE_COUNTS}
           for side in "ab"},
    }  # fmt: skip


def arena_votes_from_json(data: object) -> ArenaVotes:
    """ArenaVotes from the download format; ValueError (saying what is wrong) for anything else."""
    if not isinstance(data, dict):
        raise ValueError("Arena votes must be a JSON object.")
    try:
        models = [str(name) for name in data["models"]]
        columns = {key: np.asarray(data[key], dtype=np.int64) for key in ("model_a", "model_b", "outcome")}
        styles = {side: {key: np.asarray(data[f"style_{side}"][key], dtype=np.float64) for key in STYLE_COUNTS}
                  for side in "ab"}  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"Not arena votes (model names, then model_a, model_b, outcome, style_a, style_b): {exc}"
        ) from None
    n = columns["outcome"].size
    arrays = [*columns.values(), *styles["a"].values(), *styles["b"].values()]
    if any(array.ndim != 1 or array.size != n for array in arrays):
        raise ValueError("Arena votes' columns must be lists of one length, one entry per vote.")
    if n and (min(columns["model_a"].min(), columns["model_b"].min()) < 0
              or max(columns["model_a"].max(), columns["model_b"].max()) >= len(models)):  # fmt: skip
        raise ValueError("A vote names a model index outside the model list.")
    if n and (columns["outcome"].min() < 0 or columns["outcome"].max() >= N_OUTCOMES):
        raise ValueError(f"An outcome code outside 0-{N_OUTCOMES - 1} (A wins, B wins, tie, both bad).")
    return ArenaVotes(models, columns["model_a"], columns["model_b"], columns["outcome"], styles["a"], styles["b"])


def _scope(votes: ArenaVotes) -> dict:
    return {"scope": "arena votes", "vote_count": votes.n_votes}


def style_board(
    votes: ArenaVotes,
    *,
    min_votes: int,
    anchor: tuple[str, float] | None = None,
    rounds: int = STYLE_BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> dict:
    """Style-controlled leaderboard rows and style coefficients, JSON-safe; a reason instead below min_votes."""
    if votes.n_votes < min_votes or len(votes.models) < 2:
        reason = f"Needs at least {min_votes} rated arena votes; there are {votes.n_votes}."
        return {"models": [], "reason": reason, **_scope(votes)}
    features = style_features(
        **{f"{side}_{key}": getattr(votes, f"style_{side}")[key] for key in STYLE_COUNTS for side in "ab"}
    )
    style_anchor = anchor if anchor and anchor[0] in votes.models else None
    rounds = min(rounds, STYLE_BOOTSTRAP_ROUNDS)
    try:
        fit = fit_style_controlled(
            votes.model_a, votes.model_b, votes.outcome, features, votes.models,
            anchor=style_anchor, rounds=rounds, seed=seed,
        )  # fmt: skip
    except _FIT_ERRORS as exc:
        return {"models": [], "reason": f"The style-controlled fit failed: {exc}", **_scope(votes)}
    n = len(votes.models)
    per_model = np.bincount(votes.model_a, minlength=n) + np.bincount(votes.model_b, minlength=n)
    rows = ranked_rows(
        votes.models, fit["ratings"], fit["ci_lower"], fit["ci_upper"],
        fit["sandwich_lower"], fit["sandwich_upper"], per_model, shown=per_model > 0, groups=fit["groups"],
    )  # fmt: skip
    return json_safe(
        {
            "models": rows,
            "style": fit["style"],
            "intervals": fit["intervals"],
            "rounds": fit["rounds"],
            "level": fit["level"],
            "anchor": list(style_anchor) if style_anchor else None,
            "reason": "",
            **_scope(votes),
        }
    )


def position_summary(votes: ArenaVotes, *, min_votes: int) -> dict:
    """The left seat's advantage in Elo points with its interval, JSON-safe; a reason instead below min_votes."""
    if votes.n_votes < min_votes or len(votes.models) < 2:
        return {"reason": f"Needs at least {min_votes} rated arena votes; there are {votes.n_votes}.", **_scope(votes)}
    try:
        fit = fit_position(pair_outcome_counts(votes.model_a, votes.model_b, votes.outcome, votes.models))
    except _FIT_ERRORS as exc:
        return {"reason": f"The position fit failed: {exc}", **_scope(votes)}
    keys = ("elo_points", "ci_lower", "ci_upper", "level", "left_score_between_equals")
    return json_safe({**{key: fit[key] for key in keys}, "reason": "", **_scope(votes)})
