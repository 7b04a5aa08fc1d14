"""Ratings over time: per-model series from snapshots, a replay of timestamped battle logs, and win rates.

Plain lists and arrays in and out; the charts module plots them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import numpy as np

from ratings.engine import bradley_terry as bt
from ratings.engine.counts import N_OUTCOMES, PairCounts, pair_outcome_counts
from ratings.engine.leaderboard import model_rows
from ratings.engine.matrices import win_fraction_matrix

SERIES_FIELDS = ("rating", "ci_lower", "ci_upper")


def snapshot_series(snapshots: Iterable[tuple[object, Sequence[dict]]]) -> dict[str, dict[str, list]]:
    """Per model {"time", "rating", "ci_lower", "ci_upper"} lists, in time order, from (time, board rows);
    a row without a rating (not rated yet) adds no point, nor does one outside group 1: a group that never met
    the others is centred on its own, and its ratings on the same axis would not compare (a line would jump
    by the difference of the centrings once the groups meet). Rows without a group are of one group."""
    series: dict[str, dict[str, list]] = {}
    for time, rows in sorted(snapshots, key=lambda snapshot: snapshot[0]):
        for row in rows:
            if row.get("rating") is None or row.get("group", 1) != 1:
                continue
            points = series.setdefault(row["name"], {"time": [], **{field: [] for field in SERIES_FIELDS}})
            points["time"].append(time)
            for field in SERIES_FIELDS:
                points[field].append(row.get(field))
    return series


def monthly_cutoffs(timestamps: np.ndarray) -> np.ndarray:
    """Unix times of each UTC month start after the first battle, through the first one after the last."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if timestamps.size == 0:
        return np.array([])
    first = datetime.fromtimestamp(timestamps.min(), UTC)
    last = timestamps.max()
    year, month = first.year, first.month
    cutoffs = []
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        cutoff = datetime(year, month, 1, tzinfo=UTC).timestamp()
        cutoffs.append(cutoff)
        if cutoff > last:
            return np.array(cutoffs)


def cumulative_pair_counts(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    timestamp: np.ndarray,
    models: list[str],
    cutoffs: Sequence[float],
) -> list[PairCounts]:
    """Pair counts of the battles before each cutoff (timestamp < cutoff), cutoffs ascending."""
    # One sort, then each cutoff adds only the battles since the previous one to a running count vector.
    cutoffs = np.asarray(cutoffs, dtype=np.float64)
    if np.any(np.diff(cutoffs) < 0):
        raise ValueError("cutoffs must be ascending")
    pc_all = pair_outcome_counts(model_a, model_b, outcome, models)  # validates indices and outcome codes
    n = len(models)
    order = np.argsort(np.asarray(timestamp, dtype=np.float64), kind="stable")
    sorted_times = np.asarray(timestamp, dtype=np.float64)[order]
    pair_key = np.asarray(model_a, dtype=np.int64)[order] * n + np.asarray(model_b, dtype=np.int64)[order]
    row = np.searchsorted(pc_all.pairs[:, 0] * n + pc_all.pairs[:, 1], pair_key)
    cell = row * N_OUTCOMES + np.asarray(outcome, dtype=np.int64)[order]
    ends = np.searchsorted(sorted_times, cutoffs, side="left")
    running = np.zeros(pc_all.counts.size, dtype=np.int64)
    result, start = [], 0
    for end in ends.tolist():
        running += np.bincount(cell[start:end], minlength=running.size)
        start = end
        counts = running.reshape(-1, N_OUTCOMES)
        keep = counts.sum(axis=1) > 0
        result.append(PairCounts(list(models), pc_all.pairs[keep].copy(), counts[keep].copy()))
    return result


def replay_history(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    timestamp: np.ndarray,
    models: list[str],
    cutoffs: Sequence[float] | None = None,
    *,
    anchor: tuple[str, float] | None = None,
    level: float = 0.95,
) -> list[tuple[float, list[dict]]]:
    """The board (rows as in `compute_leaderboard`, sandwich intervals) at each cutoff; default monthly."""
    if cutoffs is None:
        cutoffs = monthly_cutoffs(timestamp)
    snapshots = []
    for cutoff, pc in zip(
        cutoffs, cumulative_pair_counts(model_a, model_b, outcome, timestamp, models, cutoffs), strict=True
    ):
        if pc.n_battles == 0:
            snapshots.append((float(cutoff), []))
            continue
        # An anchor not yet in the arena at this cutoff would pin the board to a model without battles.
        has_anchor = anchor is not None and pc.votes_per_model()[models.index(anchor[0])] > 0
        board_anchor = anchor if has_anchor else None
        ratings = bt.fit_ratings(pc, anchor=board_anchor)
        lower, upper = bt.sandwich_intervals(pc, ratings, level=level, anchor=board_anchor)
        rows, _ = model_rows(pc, ratings, lower, upper, lower, upper)
        snapshots.append((float(cutoff), rows))
    return snapshots


def average_win_rate(pc: PairCounts, *, predicted: bool = False) -> np.ndarray:
    """Each model's win rate averaged uniformly over the opponents it met, ties left out; NaN if none.

    predicted=True averages the Bradley-Terry predicted win probability over all other models of its rated
    group instead (the bar chart in FastChat's reports; NaN for a model without a rating); the observed one
    needs no fit.
    """
    votes = pc.votes_per_model()
    active = votes > 0
    if predicted:
        groups = bt.PairData.from_counts(pc).rated_groups()
        matrix = bt.predicted_win_matrix(bt.fit_ratings(pc, groups=groups), groups=groups.label)
        matrix[:, ~active] = np.nan
    else:
        matrix = win_fraction_matrix(pc)
    result = np.full(pc.n_models, np.nan)
    with np.errstate(invalid="ignore"):
        sums = np.nansum(matrix, axis=1)
        opponents = np.sum(~np.isnan(matrix), axis=1)
    has = active & (opponents > 0)
    result[has] = sums[has] / opponents[has]
    return result
