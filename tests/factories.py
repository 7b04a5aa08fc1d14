"""Test data builders: plain functions with sensible defaults, one per entity."""

import itertools

from battles.models import Battle, Turn, Vote
from inference.models import ArenaModel, Endpoint

_counter = itertools.count(1)


def make_model(
    name: str | None = None,
    *,
    base_url: str = "http://127.0.0.1:9/v1",
    endpoint: bool = True,
    max_concurrency: int = 4,
    **fields,
) -> ArenaModel:
    model = ArenaModel.objects.create(name=name or f"model-{next(_counter)}", **fields)
    if endpoint:
        Endpoint.objects.create(
            model=model, base_url=base_url, served_model_id="served-" + model.name, max_concurrency=max_concurrency
        )
    return model


def visitor(session_key: str = "session-1", ip: str = ""):
    """The visitor a session key and address stand for, as the services see it."""
    from battles.services import Visitor

    return Visitor.of(session_key=session_key, ip=ip)


def make_battle(
    *, owner: str = "session-1", model_a=None, model_b=None, answered: bool = True, prompt: str | None = None
) -> Battle:
    """A battle owned by the session `owner`, with one turn (answered by default). Each battle gets a
    prompt of its own unless one is given (the ratings down-sample prompts asked very often)."""
    prompt = prompt if prompt is not None else f"Question number {next(_counter)}?"
    model_a = model_a or make_model()
    model_b = model_b or make_model()
    battle = Battle.objects.create(
        owner_hash=visitor(owner).owner, model_a=model_a, model_b=model_b,
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
        battle=battle, outcome=outcome, judge_hash=battle.owner_hash,
        conversation_a=battle_conversation(battle, "a"), conversation_b=battle_conversation(battle, "b"),
        timings_a=battle_timings(battle, "a"), timings_b=battle_timings(battle, "b"),
        rated_at=timezone.now() if rated else None,
    )  # fmt: skip


def cast_vote(battle: Battle, *, owner: str = "session-1", outcome: str = Vote.Outcome.A) -> Vote:
    """A vote through the service, on the answers the battle shows now, as the page sends it."""
    from battles.services import vote_record

    last = battle.turns.order_by("-index").first()
    return vote_record(
        battle_id=battle.id, visitor=visitor(owner), outcome=outcome, turn=last.index, version=last.version
    )
