"""Reads for battles."""

from battles.models import Battle, Turn


def turn_last(battle: Battle) -> Turn:
    return battle.turns.order_by("-index").first()


def battle_conversation(battle: Battle, side: str, *, upto_index: int | None = None) -> list[dict]:
    """The side's visible conversation as chat messages (no system prompt), optionally up to a turn."""
    messages = []
    for turn in battle.turns.order_by("index"):
        if upto_index is not None and turn.index > upto_index:
            break
        messages.append({"role": "user", "content": turn.prompt})
        answer = getattr(turn, f"answer_{side}")
        if answer and (upto_index is None or turn.index < upto_index):
            messages.append({"role": "assistant", "content": answer})
    return messages


def battle_request_messages(battle: Battle, side: str, *, turn_index: int) -> list[dict]:
    """What is sent to the side's endpoint to answer turn `turn_index`: system prompt, history, prompt."""
    model = battle.model_a if side == "a" else battle.model_b
    system = [{"role": "system", "content": model.system_prompt}] if model.system_prompt else []
    return system + battle_conversation(battle, side, upto_index=turn_index)


def battle_timings(battle: Battle, side: str) -> list[dict]:
    return [getattr(turn, f"timings_{side}") for turn in battle.turns.order_by("index")]


def battle_state(battle: Battle) -> dict:
    """Everything a visitor may see of a battle: model names only once it has a vote."""
    vote = getattr(battle, "vote", None)  # the reverse one-to-one raises AttributeError when absent
    state = {
        "battle_id": str(battle.id),
        "turns": [
            {
                "index": turn.index,
                "prompt": turn.prompt,
                "answer_a": turn.answer_a,
                "answer_b": turn.answer_b,
                "status_a": turn.status_a,
                "status_b": turn.status_b,
            }
            for turn in battle.turns.order_by("index")
        ],
        "voted": vote is not None,
    }
    if vote is not None:
        state.update(
            outcome=vote.outcome,
            model_a=battle.model_a.name,
            model_b=battle.model_b.name,
            counted=not vote.excluded_reason,
            excluded_reason=vote.excluded_reason,
        )
    return state
