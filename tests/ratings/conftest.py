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


def addressed_battle(*, ip: str = "", **kwargs):
    """A battle (tests.factories.make_battle) started from `ip`, as battle_start stores it: the address's
    keyed hash ("" without one)."""
    from battles.services import client_hash

    battle = make_battle(**kwargs)
    battle.client_hash = client_hash(ip)
    battle.save(update_fields=["client_hash"])
    return battle


def rated_vote(model_a, model_b, outcome: str = Vote.Outcome.A, **kwargs) -> Vote:
    """A vote between two given models (from the address `ip`, if given), with its rating applied as the task
    would."""
    from ratings.services import vote_rate

    vote = make_vote(addressed_battle(model_a=model_a, model_b=model_b, **kwargs), outcome=outcome)
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


def styled_votes(models, n: int, *, seed: int = 0, length_effect: float = 3.0, verbose: dict | None = None) -> None:
    """`n` votes between equally good models where longer answers win more often, rated by the service.

    verbose maps a model name to its typical answer length in tokens (default 100). Outcomes depend only
    on the length difference, so a style-controlled fit should find the models about equal.
    """
    import numpy as np

    from battles.models import Battle
    from ratings.services import vote_rate

    rng = np.random.default_rng(seed)
    verbose = verbose or {}
    battles, sides = [], []
    for _ in range(n):
        a, b = rng.choice(len(models), size=2, replace=False)
        tokens = [int(verbose.get(models[i].name, 100) * rng.uniform(0.5, 1.5)) for i in (a, b)]
        battles.append(Battle(owner_hash="styled", model_a=models[a], model_b=models[b]))
        sides.append(tokens)
    Battle.objects.bulk_create(battles)
    votes = []
    for battle, (tokens_a, tokens_b) in zip(battles, sides, strict=True):
        diff = (tokens_a - tokens_b) / (tokens_a + tokens_b + 1)
        p_a = 1.0 / (1.0 + np.exp(-length_effect * diff))
        draw = rng.random()
        outcome = Vote.Outcome.TIE if draw < 0.1 else (Vote.Outcome.A if draw < 0.1 + 0.9 * p_a else Vote.Outcome.B)
        conversation = lambda tokens: [  # noqa: E731
            {"role": "user", "content": f"question {len(votes)}"},
            {"role": "assistant", "content": "**bold**\n- item\n" * (tokens // 100)},
        ]
        votes.append(
            Vote(
                battle=battle,
                outcome=outcome,
                judge_hash="styled",
                conversation_a=conversation(tokens_a),
                conversation_b=conversation(tokens_b),
                timings_a=[{"tokens": tokens_a}],
                timings_b=[{"tokens": tokens_b}],
            )  # fmt: skip
        )
    for vote in Vote.objects.bulk_create(votes):
        vote_rate(vote_id=vote.pk)
