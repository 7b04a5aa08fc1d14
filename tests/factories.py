"""Test data builders: plain functions with sensible defaults, one per entity."""

import itertools

from battles.models import Battle, Turn, Vote
from inference.models import ArenaModel, Endpoint

_counter = itertools.count(1)


def make_model(
    name: str | None = None, *, base_url: str = "http://127.0.0.1:9/v1", endpoint: bool = True, **fields
) -> ArenaModel:
    model = ArenaModel.objects.create(name=name or f"model-{next(_counter)}", **fields)
    if endpoint:
        Endpoint.objects.create(model=model, base_url=base_url, served_model_id="served-" + model.name)
    return model


def make_battle(
    *, session_key: str = "session-1", model_a=None, model_b=None, answered: bool = True, prompt: str = "Hi?"
) -> Battle:
    model_a = model_a or make_model()
    model_b = model_b or make_model()
    battle = Battle.objects.create(
        session_key=session_key, model_a=model_a, model_b=model_b,
        endpoint_a=model_a.endpoints.first(), endpoint_b=model_b.endpoints.first(),
    )  # fmt: skip
    status = Turn.Status.DONE if answered else Turn.Status.PENDING
    timings = {"ttft": 0.1, "tokens": 3, "total": 0.3, "finish_reason": "stop"} if answered else {}
    Turn.objects.create(
        battle=battle, index=0, prompt=prompt,
        answer_a="Answer **A**" if answered else "", answer_b="Answer B" if answered else "",
        status_a=status, status_b=status, timings_a=timings, timings_b=timings,
    )  # fmt: skip
    return battle


def make_vote(
    battle: Battle | None = None, *, outcome: str = Vote.Outcome.A, rated: bool = False, **battle_kwargs
) -> Vote:
    """A stored vote, created directly (no rating task queued)."""
    from django.utils import timezone

    from battles.selectors import battle_conversation, battle_timings

    battle = battle or make_battle(**battle_kwargs)
    return Vote.objects.create(
        battle=battle, outcome=outcome, judge_hash="judge-" + battle.session_key,
        conversation_a=battle_conversation(battle, "a"), conversation_b=battle_conversation(battle, "b"),
        timings_a=battle_timings(battle, "a"), timings_b=battle_timings(battle, "b"),
        rated_at=timezone.now() if rated else None,
    )  # fmt: skip
