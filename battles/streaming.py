"""Answer a turn on both sides at once, streaming each side's tokens as they arrive.

Each side runs as its own task, so a slow or failing side never holds back the other.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from channels.db import database_sync_to_async
from django.conf import settings

from battles import events
from battles.models import Turn
from battles.rendering import markdown_to_safe_html
from battles.selectors import battle_request_messages
from battles.services import SIDES, battle_is_voteable, turn_side_finish
from inference.client import InferenceError, StreamStats, stream_chat
from inference.services import endpoint_target

logger = logging.getLogger(__name__)

Send = Callable[[dict], Awaitable[None]]

# What a visitor reads when a side fails: the kind of failure only, never the model or its host.
_FAILURE_TEXT = {
    "timeout": "the model did not answer in time",
    "unreachable": "the model's server could not be reached",
    "dropped": "the answer was cut off mid-stream",
}


def failure_message(side: str, exc: InferenceError) -> str:
    reason = _FAILURE_TEXT.get(exc.kind)
    if reason is None:
        reason = "the model's server returned an error" if exc.kind.startswith("http") else "the model failed"
    return f"Model {side.upper()} could not answer: {reason}. You can regenerate or start a new round."


@database_sync_to_async
def _load_turn(turn_id: int) -> tuple[Turn, dict]:
    turn = Turn.objects.select_related(
        "battle", "battle__model_a", "battle__model_b", "battle__endpoint_a", "battle__endpoint_b"
    ).get(pk=turn_id)
    plans = {}
    for side in SIDES:
        model = getattr(turn.battle, f"model_{side}")
        endpoint = getattr(turn.battle, f"endpoint_{side}")
        plans[side] = {
            "target": endpoint_target(endpoint) if endpoint else None,
            "messages": battle_request_messages(turn.battle, side, turn_index=turn.index),
            "params": {"temperature": model.temperature, "top_p": model.top_p, "max_tokens": model.max_new_tokens},
        }
    return turn, plans


async def _answer_side(turn: Turn, side: str, plan: dict, send: Send) -> None:
    stats = StreamStats()
    pieces: list[str] = []
    try:
        if plan["target"] is None:
            raise InferenceError("unreachable", "endpoint was removed")
        async for piece in stream_chat(
            plan["target"], plan["messages"], stats=stats, **plan["params"],
            connect_timeout=settings.INFERENCE_CONNECT_TIMEOUT, idle_timeout=settings.INFERENCE_IDLE_TIMEOUT,
        ):  # fmt: skip
            pieces.append(piece)
            await send(events.delta(side, piece))
    except InferenceError as exc:
        logger.warning("battle %s turn %s side %s failed: %s", turn.battle_id, turn.index, side, exc)
        timings = stats.as_dict()
        await database_sync_to_async(turn_side_finish)(
            turn_id=turn.pk, side=side, answer="".join(pieces), timings=timings, error=exc.kind
        )
        await send(events.side_error(side, failure_message(side, exc)))
        return
    answer = "".join(pieces)
    timings = stats.as_dict()
    await database_sync_to_async(turn_side_finish)(turn_id=turn.pk, side=side, answer=answer, timings=timings)
    await send(events.side_done(side, markdown_to_safe_html(answer), timings))


async def turn_answer_both(*, turn_id: int, send: Send) -> bool:
    """Stream both answers to `send`; store each as it finishes. Returns whether the battle is voteable."""
    turn, plans = await _load_turn(turn_id)
    await asyncio.gather(*(_answer_side(turn, side, plans[side], send) for side in SIDES))
    voteable = await database_sync_to_async(lambda: battle_is_voteable(turn.battle))()
    await send(events.turn_done(str(turn.battle_id), voteable))
    return voteable
