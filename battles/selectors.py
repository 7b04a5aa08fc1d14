"""Reads for battles."""

import time

from django.db import connection

from battles.blindness import Identity, LeakDetector
from battles.models import Battle, Turn
from battles.rendering import markdown_to_safe_html
from inference.chat_format import template_default_system
from inference.models import ArenaModel

# How long a process reuses its leak detector before reading the registry again.
DETECTOR_CACHE_SECONDS = 60.0
_detectors: tuple[float, LeakDetector, LeakDetector] | None = None


def arena_identities() -> list[Identity]:
    """Every live model as the blindness check sees it: name, maker, each served id, its system prompt."""
    identities = []
    for model in ArenaModel.objects.filter(is_historical=False).prefetch_related("endpoints"):
        system_prompt = model.system_prompt or template_default_system(model.chat_template)
        served_ids = sorted({e.served_model_id for e in model.endpoints.all()}) or [""]
        identities += [Identity(model.name, model.organization, served, system_prompt) for served in served_ids]
    return identities


def _current_detectors() -> tuple[float, LeakDetector, LeakDetector]:
    """Both detectors for the current registry, built once a minute per process (building costs a few ms)."""
    global _detectors
    now = time.monotonic()
    if _detectors is None or now - _detectors[0] > DETECTOR_CACHE_SECONDS:
        identities = arena_identities()
        strict = LeakDetector(identities, makers_need_context=False, common_words_need_context=False)
        _detectors = (now, LeakDetector(identities), strict)
    return _detectors


def leak_detector() -> LeakDetector:
    """The detector for answers: a name that is also an everyday word, or a maker, counts only where the
    answer says it is that model or was made by that company."""
    return _current_detectors()[1]


def prompt_detector() -> LeakDetector:
    """The detector with no context rules: every name and maker counts wherever it is written (for prompts
    that make the answer depend on who the model is: blindness.prompt_not_blind)."""
    return _current_detectors()[2]


def forget_leak_detector() -> None:
    global _detectors
    _detectors = None


def battle_turns(battle: Battle) -> list[Turn]:
    """The battle's turns in order (Turn.Meta.ordering), in one query: read them once and pass them as
    `turns=` to the selectors below, which otherwise read them each."""
    return list(battle.turns.all())


def battle_turns_read(battle_id) -> list[Turn]:
    """The battle's turns in order, read for a vote: one written-out statement through Django's raw queries.
    Building the same query's SQL each time cost the ORM more CPU than running it (a battle's turns,
    in-process on PostgreSQL: 1.05-1.4 ms, against 0.46-0.51 ms through raw); votes are the web tier's
    busiest write. SELECT * maps every column to its field (JSON decoded) as the ORM would."""
    quote = connection.ops.quote_name
    table, battle, index = quote(Turn._meta.db_table), quote("battle_id"), quote("index")
    key = Battle._meta.pk.get_db_prep_value(battle_id, connection)  # as the database stores it (SQLite: hex)
    return list(Turn.objects.raw(f"SELECT * FROM {table} WHERE {battle} = %s ORDER BY {index}", [key]))


def turns_answered(turns) -> bool:
    """Whether there are turns and both answers of every one are done."""
    turns = list(turns)
    return bool(turns) and all(t.status_a == t.status_b == Turn.Status.DONE for t in turns)


def turn_last(battle: Battle) -> Turn | None:
    turns = battle_turns(battle)
    return turns[-1] if turns else None


def battle_conversation(
    battle: Battle, side: str, *, upto_index: int | None = None, turns: list[Turn] | None = None
) -> list[dict]:
    """The side's visible conversation as chat messages (no system prompt), optionally up to a turn. `turns`:
    the battle's turns, when the caller holds them already (else they are read)."""
    messages = []
    for turn in battle_turns(battle) if turns is None else turns:
        if upto_index is not None and turn.index > upto_index:
            break
        messages.append({"role": "user", "content": turn.prompt})
        answer = getattr(turn, f"answer_{side}")
        if answer and (upto_index is None or turn.index < upto_index):
            messages.append({"role": "assistant", "content": answer})
    return messages


def battle_request_messages(
    battle: Battle, side: str, *, turn_index: int, turns: list[Turn] | None = None
) -> list[dict]:
    """What is sent to the side's endpoint to answer turn `turn_index`: system prompt, history, prompt."""
    model = battle.model_a if side == "a" else battle.model_b
    system = [{"role": "system", "content": model.system_prompt}] if model.system_prompt else []
    return system + battle_conversation(battle, side, upto_index=turn_index, turns=turns)


def battle_timings(battle: Battle, side: str, *, turns: list[Turn] | None = None) -> list[dict]:
    return [getattr(turn, f"timings_{side}") for turn in (battle_turns(battle) if turns is None else turns)]


def battle_state(battle: Battle, *, turns: list[Turn] | None = None, rendered: bool = False) -> dict:
    """Everything a visitor may see of a battle: model names only once it has a vote. `turns`: the battle's
    turns, when the caller holds them already (else they are read). `rendered`: each finished answer also as
    the sanitised HTML the page shows (for a page restoring the battle after a reload; not on the vote path,
    which would render every answer again for nothing)."""
    vote = getattr(battle, "vote", None)  # the reverse one-to-one raises AttributeError when absent
    state = {
        "battle_id": str(battle.id),
        "turns": [_turn_state(turn, rendered) for turn in (battle_turns(battle) if turns is None else turns)],
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


def _turn_state(turn: Turn, rendered: bool) -> dict:
    state = {
        "index": turn.index,
        "version": turn.version,
        "prompt": turn.prompt,
        "answer_a": turn.answer_a,
        "answer_b": turn.answer_b,
        "status_a": turn.status_a,
        "status_b": turn.status_b,
    }
    if rendered:
        for side in ("a", "b"):
            if getattr(turn, f"status_{side}") == Turn.Status.DONE:
                state[f"html_{side}"] = markdown_to_safe_html(getattr(turn, f"answer_{side}"))
    return state
