"""Ratings test data: rated votes, the real pair counts, and an in-memory channel layer."""

from pathlib import Path

import pytest

from battles.models import Vote
from tests.factories import make_battle, make_model, make_vote

REAL_PAIR_COUNTS = Path(__file__).resolve().parents[2] / "data" / "chatbot-arena-20240814" / "pair_counts.json"
ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    """No Redis needed: group messages stay in this process."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def rated_vote(model_a, model_b, outcome: str = Vote.Outcome.A, **kwargs) -> Vote:
    """A vote between two given models, with its rating applied as the task would."""
    from ratings.services import vote_rate

    vote = make_vote(make_battle(model_a=model_a, model_b=model_b, **kwargs), outcome=outcome)
    vote_rate(vote_id=vote.pk)
    vote.refresh_from_db()
    return vote


@pytest.fixture
def three_models(db):
    """Three models named so that sorting by name is obvious in assertions."""
    return make_model("alpha"), make_model("bravo"), make_model("charlie")


@pytest.fixture
def small_arena(three_models):
    """A dozen rated votes among three models where alpha is clearly best and charlie worst."""
    alpha, bravo, charlie = three_models
    for winner, loser, n in [(alpha, bravo, 3), (bravo, charlie, 3), (alpha, charlie, 3)]:
        for i in range(n):
            # Alternate sides so that both ordered pairs exist.
            if i % 2:
                rated_vote(loser, winner, Vote.Outcome.B)
            else:
                rated_vote(winner, loser, Vote.Outcome.A)
    rated_vote(bravo, alpha, Vote.Outcome.A)  # one upset keeps the fit finite
    rated_vote(charlie, bravo, Vote.Outcome.TIE)
    rated_vote(charlie, alpha, Vote.Outcome.BOTH_BAD)
    return three_models
