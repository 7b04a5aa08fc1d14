"""Battle outcomes aggregated into counts per ordered model pair.

Outcome codes used throughout the engine: 0 = A (left) wins, 1 = B (right) wins, 2 = tie,
3 = tie with both answers bad.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

A_WINS, B_WINS, TIE, BOTH_BAD = 0, 1, 2, 3
N_OUTCOMES = 4

# FastChat's `winner` strings, mapped to the outcome codes above.
WINNER_CODES = {"model_a": A_WINS, "model_b": B_WINS, "tie": TIE, "tie (bothbad)": BOTH_BAD}


@dataclass(frozen=True)
class PairCounts:
    """Outcome counts per ordered (left, right) model pair."""

    models: list[str]
    pairs: np.ndarray  # (P, 2) int: (a, b) = (left, right) model indices
    counts: np.ndarray  # (P, 4) int64: a_wins, b_wins, tie, both_bad

    @property
    def n_models(self) -> int:
        """Number of models, including any without battles."""
        return len(self.models)

    @property
    def n_battles(self) -> int:
        """Total number of battles."""
        return int(self.counts.sum())

    def with_models(self, models: list[str]) -> PairCounts:
        """The same counts indexed by `models`, which must include every model here (others get no battles)."""
        index = {name: i for i, name in enumerate(models)}
        remap = np.array([index[name] for name in self.models], dtype=np.int64)
        pairs = remap[self.pairs] if self.pairs.size else self.pairs.reshape(-1, 2)
        return PairCounts(list(models), pairs, self.counts)

    def votes_per_model(self) -> np.ndarray:
        """Battles each model took part in, on either side."""
        per_pair = self.counts.sum(axis=1)
        return np.bincount(self.pairs[:, 0], per_pair, self.n_models).astype(np.int64) + np.bincount(
            self.pairs[:, 1], per_pair, self.n_models
        ).astype(np.int64)


def pair_outcome_counts(model_a: np.ndarray, model_b: np.ndarray, outcome: np.ndarray, models: list[str]) -> PairCounts:
    """Aggregate per-battle index arrays into counts per ordered pair (sides kept)."""
    model_a = np.asarray(model_a, dtype=np.int64)
    model_b = np.asarray(model_b, dtype=np.int64)
    outcome = np.asarray(outcome, dtype=np.int64)
    n_models = len(models)
    if not (model_a.shape == model_b.shape == outcome.shape):
        raise ValueError("model_a, model_b and outcome must have the same length")
    if model_a.size and (min(model_a.min(), model_b.min()) < 0 or max(model_a.max(), model_b.max()) >= n_models):
        raise ValueError("model index out of range")
    if np.any(model_a == model_b):
        raise ValueError("a model cannot battle itself")
    if outcome.size and (outcome.min() < 0 or outcome.max() >= N_OUTCOMES):
        raise ValueError("outcome codes must be 0..3")
    pair_key = model_a * n_models + model_b
    keys, inverse = np.unique(pair_key, return_inverse=True)
    counts = np.bincount(inverse * N_OUTCOMES + outcome, minlength=keys.size * N_OUTCOMES)
    pairs = np.column_stack([keys // n_models, keys % n_models]).astype(np.int64)
    return PairCounts(list(models), pairs, counts.reshape(-1, N_OUTCOMES).astype(np.int64))


def counts_from_pair_counts_json(path_or_dict: str | Path | dict) -> PairCounts:
    """Read the shared `{"models", "X", "Y"}` pair-counts format (X[k][0] is side A)."""
    if isinstance(path_or_dict, dict):
        data = path_or_dict
    else:
        with open(path_or_dict, encoding="utf-8") as handle:
            data = json.load(handle)
    pairs = np.asarray(data["X"], dtype=np.int64).reshape(-1, 2)
    counts = np.asarray(data["Y"], dtype=np.int64).reshape(-1, N_OUTCOMES)
    return _combine_duplicate_rows(PairCounts(list(data["models"]), pairs, counts))


def counts_from_clean_battles(records: list[dict]) -> PairCounts:
    """Aggregate FastChat `clean_battle` records (model_a, model_b, winner)."""
    models = sorted({r["model_a"] for r in records} | {r["model_b"] for r in records})
    index = {name: i for i, name in enumerate(models)}
    model_a = np.fromiter((index[r["model_a"]] for r in records), np.int64, len(records))
    model_b = np.fromiter((index[r["model_b"]] for r in records), np.int64, len(records))
    outcome = np.fromiter((WINNER_CODES[r["winner"]] for r in records), np.int64, len(records))
    return pair_outcome_counts(model_a, model_b, outcome, models)


def merge_sides(pc: PairCounts) -> PairCounts:
    """Fold (b, a) rows into (a, b) with a < b, swapping the win columns; for order-free methods."""
    swap = pc.pairs[:, 0] > pc.pairs[:, 1]
    pairs = np.where(swap[:, None], pc.pairs[:, ::-1], pc.pairs)
    counts = np.where(swap[:, None], pc.counts[:, [B_WINS, A_WINS, TIE, BOTH_BAD]], pc.counts)
    return _combine_duplicate_rows(PairCounts(pc.models, pairs, counts))


def swap_sides(pc: PairCounts) -> PairCounts:
    """Every battle with its sides exchanged (left becomes right)."""
    return PairCounts(pc.models, pc.pairs[:, ::-1].copy(), pc.counts[:, [B_WINS, A_WINS, TIE, BOTH_BAD]].copy())


def _combine_duplicate_rows(pc: PairCounts) -> PairCounts:
    """Sum rows that share an ordered pair and drop empty rows, sorted by pair."""
    n = max(pc.n_models, 1)
    keys, inverse = np.unique(pc.pairs[:, 0] * n + pc.pairs[:, 1], return_inverse=True)
    counts = np.zeros((keys.size, N_OUTCOMES), dtype=np.int64)
    np.add.at(counts, inverse.ravel(), pc.counts)
    pairs = np.column_stack([keys // n, keys % n]).astype(np.int64)
    keep = counts.sum(axis=1) > 0
    return PairCounts(pc.models, pairs[keep], counts[keep])
