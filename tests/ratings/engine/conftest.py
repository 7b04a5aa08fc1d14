"""Shared data for the engine tests: the real pair counts, loaded once."""

from pathlib import Path

import numpy as np
import pytest

from ratings.engine import bradley_terry as bt
from ratings.engine.counts import A_WINS, B_WINS, TIE, counts_from_pair_counts_json, pair_outcome_counts
from ratings.engine.rated_groups import sure_links

REAL_COUNTS = Path(__file__).resolve().parents[3] / "data" / "chatbot-arena-20240814" / "pair_counts.json"
ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)


@pytest.fixture(scope="session")
def real_counts():
    """The 1,670,250 real Chatbot Arena battles, aggregated per pair."""
    return counts_from_pair_counts_json(REAL_COUNTS)


def resampled_thin_boards(seeds, rounds: int):
    """Per seed, a random board with thin models (every third seed in two blocks that never meet) and `rounds`
    multinomial resamples of it: (seed, data, groups, score, totals, links), score and totals (rounds, P)."""
    for seed in seeds:
        rng = np.random.default_rng(seed)
        n = int(rng.integers(3, 14))
        a, b = rng.integers(0, n, 400), rng.integers(0, n, 400)
        thin = rng.random(n) < 0.4
        keep = (a != b) & (~(thin[a] | thin[b]) | (rng.random(a.size) < 0.1))
        if seed % 3 == 0:  # two blocks that never meet
            block = rng.random(n) < 0.5
            keep &= block[a] == block[b]
        a, b = a[keep], b[keep]
        strengths = rng.normal(0.0, 1.0, n)
        u = rng.random(a.size)
        outcome = np.where(
            u < 0.1, TIE, np.where(u < 0.1 + 0.9 / (1 + np.exp(strengths[b] - strengths[a])), A_WINS, B_WINS)
        )
        data = bt.PairData.from_counts(pair_outcome_counts(a, b, outcome, [f"m{i}" for i in range(n)]))
        groups = data.rated_groups()
        cells = np.column_stack([data.a_wins, data.b_wins, data.ties]).astype(np.int64).ravel()
        draws = bt.multinomial_draws(rng, cells, rounds).reshape(rounds, -1, 3).astype(float)
        score, totals = draws[:, :, 0] + 0.5 * draws[:, :, 2], draws.sum(axis=2)
        links = sure_links(groups, data.model_a, data.model_b, data.score_a, data.totals)
        yield seed, data, groups, score, totals, links
