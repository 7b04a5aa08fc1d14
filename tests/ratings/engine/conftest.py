"""Shared data for the engine tests: the real pair counts, loaded once."""

from pathlib import Path

import pytest

from ratings.engine.counts import counts_from_pair_counts_json

REAL_COUNTS = Path(__file__).resolve().parents[3] / "data" / "chatbot-arena-20240814" / "pair_counts.json"
ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)


@pytest.fixture(scope="session")
def real_counts():
    """The 1,670,250 real Chatbot Arena battles, aggregated per pair."""
    return counts_from_pair_counts_json(REAL_COUNTS)
