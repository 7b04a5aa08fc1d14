"""Writes for battles: start, continue, regenerate, record answers, vote.

Every message raised here as BattleError is shown to the visitor as is, so none names a model.
"""

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from arena.rate_limits import address_key
from battles import budgets
from battles.blindness import prompt_not_blind
from battles.models import Battle, Turn, Vote
from battles.selectors import (
    battle_conversation,
    battle_state,
    battle_timings,
    battle_turns,
    battle_turns_read,
    leak_detector,
    prompt_detector,
    turn_last,
    turns_answered,
)
from battles.signals import vote_recorded
from inference.client import well_formed
from inference.context import prompt_fits
from inference.models import ArenaModel
from inference.selectors import drawable_candidates
from inference.services import NotEnoughModels, battle_pair_draw

SIDES = ("a", "b")
# A stream holds its battle this long, and renews the hold while it runs (see battles/streaming.py).
STREAM_LEASE_SECONDS = 45

logger = logging.getLogger(__name__)


class BattleError(Exception):
    """A request the visitor can fix or must be told about; the message is safe to show."""


class BattleBusy(BattleError):
    """The models that could answer are all at capacity; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"All models are busy right now. Please try again in {retry_after} seconds.")
        self.retry_after = retry_after


def keyed_hash(kind: str, value: str) -> str:
    """HMAC-SHA256 under the arena's hash key (HASH_KEY, not SECRET_KEY): stable, not reversible."""
    return hmac.new(settings.HASH_KEY.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def visitor_hash(session_key: str) -> str:
    """The visitor's id: owner of its battles and judge of its votes. Raw session keys are never stored."""
    return keyed_hash("session", session_key)


def client_hash(ip: str) -> str:
    return keyed_hash("ip", address_key(ip)) if ip else ""


@dataclass(frozen=True)
class Visitor:
    """Who asks: the keyed hashes of a server-issued session and of the address it came from."""

    owner: str
    address: str = ""

    @classmethod
    def of(cls, *, session_key: str, ip: str = "") -> "Visitor":
        return cls(owner=visitor_hash(session_key) if session_key else "", address=client_hash(ip))


def _spend(what: str, per_hour: int, visitor: Visitor, message: str) -> None:
    try:
        budgets.spend(what, per_hour, session=visitor.owner, address=visitor.address, message=message)
    except budgets.OverBudget as exc:
        raise BattleError(str(exc)) from None


def _spend_answers(visitor: Visitor) -> None:
    """Every start, continue and regenerate asks both models: each counts against the hourly budget."""
    limit = settings.ANSWERS_PER_HOUR
    _spend("answers", limit, visitor, f"You have asked for {limit} answers in the last hour, the most we allow; "
           "please come back later.")  # fmt: skip


def vote_exclusion_reason(battle: Battle, *, turns: list[Turn] | None = None) -> str:
    """Why the battle's vote is kept but not counted, or '': it was not blind. An answer named a model or
    its maker, or quoted a model's instructions (battles/blindness.py), or a prompt asked who they are or
    named a model or maker. `turns`: the battle's turns, when the caller holds them already (else read)."""
    detector, strict = leak_detector(), prompt_detector()
    for turn in battle_turns(battle) if turns is None else turns:
        reason = prompt_not_blind(turn.prompt, detector, strict) or turn.earlier_leak or _answers_leak(turn, detector)
        if reason:
            return reason
    return ""


def _answers_leak(turn: Turn, detector) -> str:
    """Why the turn's current answers are not blind, or ''."""
    for timings in (turn.timings_a, turn.timings_b):
        if timings.get("not_blind"):  # seen while streaming, maybe in text a restart then replaced
            return timings["not_blind"]
    for answer, timings in ((turn.answer_a, turn.timings_a), (turn.answer_b, turn.timings_b)):
        if timings.get("blind_scanned"):
            continue  # scanned in full as it streamed, by the same detector: found clean
        leak = detector.find(answer)
        if leak is not None:
            logger.info("battle %s: not blind (%s %r in %r)", turn.battle_id, leak.kind, leak.term, leak.evidence)
            return leak.reason
    return ""


# C0 control characters but tab, newline and carriage return. PostgreSQL cannot store U+0000 at all, and none
# of them is anything a visitor meant to type (they come with text pasted from a terminal, or a crafted frame).
_CONTROL_CHARACTERS = dict.fromkeys(c for c in range(0x20) if chr(c) not in "\t\n\r")


def prompt_clean(prompt: object) -> str:
    """The prompt as stored and sent to the models, or BattleError. Control characters are dropped rather than
    refused: the visitor cannot see them in the box, so a refusal would name nothing they could fix."""
    if isinstance(prompt, str):
        prompt = prompt.translate(_CONTROL_CHARACTERS)
    if not isinstance(prompt, str) or not prompt.strip():
        raise BattleError("Please type a prompt first.")
    prompt = well_formed(prompt.strip())  # a browser sends a lone surrogate (a pasted half emoji) escaped
    if len(prompt) > settings.PROMPT_MAX_CHARS:
        raise BattleError(
            f"Your prompt is {len(prompt):,} characters long; the limit is {settings.PROMPT_MAX_CHARS:,}."
        )
    return prompt


_NOT_YOURS = "This battle does not exist or belongs to another visitor."


def battle_owned(*, battle_id, visitor: Visitor, for_update: bool = False) -> Battle:
    """The battle, if this visitor owns it. Another visitor's battle looks the same as a missing one."""
    # Both models come along (their names are revealed after a vote); only the battle's row is locked.
    queryset = Battle.objects.select_related("model_a", "model_b")
    queryset = queryset.select_for_update(of=("self",)) if for_update else queryset
    try:
        battle = queryset.get(pk=battle_id)
    except (Battle.DoesNotExist, ValidationError, ValueError):
        raise BattleError(_NOT_YOURS) from None
    if not visitor.owner or not hmac.compare_digest(battle.owner_hash, visitor.owner):
        raise BattleError(_NOT_YOURS)
    return battle


def _battle_for_vote(*, battle_id, visitor: Visitor) -> Battle:
    """battle_owned for a vote, locked, with only what a vote reads of it: whose it is, whether a stream holds
    it, and both models' names (revealed after the vote; their other fields load if asked for). Written out:
    Django building this locking SELECT with its two joins cost three times the CPU of running it: the query
    0.73 against 0.22 ms, a vote with its reveal 2.28/2.42 against 1.86/1.77 ms (in-process on PostgreSQL,
    two alternated rounds)."""
    try:
        key = Battle._meta.pk.get_db_prep_value(Battle._meta.pk.to_python(battle_id), connection)
    except (ValidationError, ValueError, TypeError):
        raise BattleError(_NOT_YOURS) from None
    quote = connection.ops.quote_name
    battles, models = quote(Battle._meta.db_table), quote(ArenaModel._meta.db_table)
    column = {name: quote(Battle._meta.get_field(name).column) for name in ("id", "owner_hash", "streaming_until")}
    model_a, model_b = (quote(Battle._meta.get_field(name).column) for name in ("model_a", "model_b"))
    model_id, model_name = quote(ArenaModel._meta.pk.column), quote(ArenaModel._meta.get_field("name").column)
    lock = " FOR UPDATE OF b" if connection.features.has_select_for_update_of else ""  # SQLite: writes queue
    found = list(
        Battle.objects.raw(
            f"SELECT b.{column['id']}, b.{column['owner_hash']}, b.{column['streaming_until']}, b.{model_a},"
            f" b.{model_b}, ma.{model_name} AS model_a_name, mb.{model_name} AS model_b_name FROM {battles} b"
            f" JOIN {models} ma ON ma.{model_id} = b.{model_a} JOIN {models} mb ON mb.{model_id} = b.{model_b}"
            f" WHERE b.{column['id']} = %s{lock}",
            [key],
        )
    )
    if not found or not visitor.owner or not hmac.compare_digest(found[0].owner_hash, visitor.owner):
        raise BattleError(_NOT_YOURS)
    battle = found[0]
    for side in SIDES:
        named = ArenaModel.from_db(connection.alias, ["id", "name"], [getattr(battle, f"model_{side}_id"),
                                                                      getattr(battle, f"model_{side}_name")])  # fmt: skip
        setattr(battle, f"model_{side}", named)
    return battle


def _require_open(battle: Battle) -> None:
    if Vote.objects.filter(battle=battle).exists():
        raise BattleError("This battle has been voted on; start a new round.")


def _streaming(battle: Battle) -> bool:
    return battle.streaming_until is not None and battle.streaming_until > timezone.now()


def _take_stream(battle: Battle, *, take_over: bool = False) -> str:
    """Hold the (locked) battle for one stream: one stream per battle, whatever the socket. A battle another
    stream holds is refused, or with `take_over` taken from it (that stream's end then changes nothing, see
    turn_finish). Returns the id of the stream taken over, or ''."""
    held_by = battle.stream_id if _streaming(battle) else ""
    if held_by and not take_over:
        raise BattleError("Please wait until both answers have finished.")
    battle.stream_id = uuid.uuid4().hex
    battle.streaming_until = timezone.now() + timedelta(seconds=STREAM_LEASE_SECONDS)
    battle.save(update_fields=["stream_id", "streaming_until"])
    return held_by


@dataclass(frozen=True)
class TurnStream:
    """A turn about to be answered, and the id of the stream that holds its battle meanwhile."""

    turn_id: int
    battle_id: str
    index: int
    version: int
    prompt: str
    stream_id: str
    # The turn itself, with its battle and both models as the service left them (to plan the turn without
    # reading it back).
    turn: Turn | None = field(default=None, repr=False, compare=False)
    # The stream this one took the battle from, still running somewhere, to be stopped ('' if none).
    replaced_stream: str = ""

    @classmethod
    def of(cls, turn: Turn, battle: Battle, replaced_stream: str = "") -> "TurnStream":
        return cls(turn.pk, str(battle.pk), turn.index, turn.version, turn.prompt, battle.stream_id, turn,
                   replaced_stream)  # fmt: skip


def _require_room(prompt: str, models: list[ArenaModel], *, history: bool) -> None:
    """Refuse, before asking anyone, a prompt that cannot fit a model's context even on its own: the battle's
    models, and every drawable one. Were only the drawn pair checked, a refusal (free, and repeatable) would
    tell the visitor something of which models were drawn where contexts differ: a follow-up grown until it
    is refused measures the pair's smaller context, and a long start re-sent until accepted draws only
    long-context models."""
    for model in [*models, *drawable_candidates()]:
        if not prompt_fits(prompt, system_prompt=model.system_prompt, context_length=model.context_length,
                           max_new_tokens=model.max_new_tokens):  # fmt: skip
            if model not in models:  # the operator's to know: this model's context sets the arena's prompt limit
                logger.info("a prompt was refused for %s, a drawable model outside the battle", model.name)
            raise BattleError(
                "This prompt is too long for one of the models to answer"
                + ("; vote on the answers so far or start a new round." if history else "; please shorten it.")
            )


@transaction.atomic
def battle_start(
    *, visitor: Visitor, prompt: object, ready: set[int] | None = None, retry_after: int = 0
) -> TurnStream:
    """A new battle between two models drawn from those `ready` (all drawable ones when None), holding
    its first stream. With fewer than two ready, the visitor is told at once: busy (with how long to
    wait) when models are only at capacity, else that not enough are up."""
    prompt = prompt_clean(prompt)
    if not visitor.owner:
        raise BattleError("Your session has expired; reload the page.")
    try:
        model_a, model_b = battle_pair_draw(ready=ready)
    except NotEnoughModels:
        if retry_after:
            raise BattleBusy(retry_after) from None
        raise BattleError(
            "Not enough models are available right now; please try again in a minute, or ask an admin."
        ) from None
    _require_room(prompt, [model_a, model_b], history=False)
    # Spent only once the battle can start: a visitor told "busy" tries again, as told, at no cost.
    limit = settings.BATTLES_PER_HOUR
    _spend("battles", limit, visitor,
           f"You have started {limit} battles in the last hour, the most we allow; please come back later.")  # fmt: skip
    _spend_answers(visitor)
    battle = Battle.objects.create(
        owner_hash=visitor.owner, client_hash=visitor.address, model_a=model_a, model_b=model_b,
        stream_id=uuid.uuid4().hex, streaming_until=timezone.now() + timedelta(seconds=STREAM_LEASE_SECONDS),
    )  # fmt: skip
    return TurnStream.of(Turn.objects.create(battle=battle, index=0, prompt=prompt), battle)


@transaction.atomic
def battle_continue(*, battle_id, visitor: Visitor, prompt: object) -> TurnStream:
    prompt = prompt_clean(prompt)
    battle = battle_owned(battle_id=battle_id, visitor=visitor, for_update=True)
    _require_open(battle)
    _take_stream(battle)
    last = turn_last(battle)
    if last.status_a != Turn.Status.DONE or last.status_b != Turn.Status.DONE:
        raise BattleError("Both answers must finish before you continue; regenerate or start a new round.")
    if last.index + 1 >= settings.BATTLE_MAX_TURNS:
        raise BattleError(f"A battle has at most {settings.BATTLE_MAX_TURNS} turns; vote or start a new round.")
    _require_room(prompt, [battle.model_a, battle.model_b], history=True)
    _spend_answers(visitor)
    return TurnStream.of(Turn.objects.create(battle=battle, index=last.index + 1, prompt=prompt), battle)


@transaction.atomic
def turn_regenerate(*, battle_id, visitor: Visitor) -> TurnStream:
    """A new version of the last answer pair: both sides answer the same prompt again.

    A battle still streaming is taken over: its visitor asks from another socket only when the page lost
    the one it streamed over (or from another tab), and a silently dropped socket is noticed by the web
    server only when its pings time out, tens of seconds later. The caller stops the stream replaced
    (TurnStream.replaced_stream). What that stream showed and found not blind is on the turn already
    (turn_leak_seen), or is noted there as it stops (turn_finish's `leak`), so the takeover keeps the vote
    uncounted as the regenerate of a finished turn does."""
    battle = battle_owned(battle_id=battle_id, visitor=visitor, for_update=True)
    _require_open(battle)
    replaced = _take_stream(battle, take_over=True)
    turn = turn_last(battle)
    if turn.version > settings.REGENERATIONS_PER_TURN:
        raise BattleError(
            f"These answers have been regenerated {settings.REGENERATIONS_PER_TURN} times, the most we allow; "
            "vote, continue or start a new round."
        )
    _spend_answers(visitor)
    # The answers about to be replaced were seen: if they named a model, the vote stays uncounted.
    leak = turn.earlier_leak or _answers_leak(turn, leak_detector())
    turn.version += 1
    turn.version_started = timezone.now()
    for side in SIDES:
        setattr(turn, f"answer_{side}", "")
        setattr(turn, f"status_{side}", Turn.Status.PENDING)
        setattr(turn, f"timings_{side}", {})
    # Every field but earlier_leak: the stream replaced may note a leak meanwhile (turn_leak_seen), which
    # saving the turn as read would wipe out.
    turn.save(update_fields=[f.name for f in Turn._meta.concrete_fields if f.name not in ("id", "earlier_leak")])
    if leak and not turn.earlier_leak:
        turn_leak_seen(turn_id=turn.pk, reason=leak)
        turn.earlier_leak = leak
    return TurnStream.of(turn, battle, replaced_stream=replaced)


def turn_leak_seen(*, turn_id: int, reason: str) -> None:
    """Keep, as soon as a stream shows it, why text the visitor saw was not blind: the answers may yet be
    replaced before their stream stores them (a regenerate that takes the battle over), and the vote on
    whatever replaces them must not count either. The first reason seen stays."""
    Turn.objects.filter(pk=turn_id, earlier_leak="").update(earlier_leak=reason)


@dataclass(frozen=True)
class SideAnswer:
    """How one side of a turn ended: its text, its timings, the kind of failure if it failed, and the endpoint
    that answered it in full if one did."""

    text: str
    timings: dict
    error: str = ""
    endpoint_id: int | None = None

    @property
    def done(self) -> bool:
        return not self.error


def stream_renew(*, battle_id, stream_id: str) -> bool:
    """Extend this stream's hold on its battle; False if the hold was lost (it lapsed and was retaken) or let go.
    A renewal still running on a database thread as its stream ends must not take back the hold turn_finish
    just let go (the battle would refuse votes and new turns for STREAM_LEASE_SECONDS)."""
    until = timezone.now() + timedelta(seconds=STREAM_LEASE_SECONDS)
    held = Battle.objects.filter(pk=battle_id, stream_id=stream_id, streaming_until__isnull=False)
    return bool(held.update(streaming_until=until))


def turn_finish(
    *, turn_id: int, version: int, battle_id, stream_id: str, answers: dict[str, SideAnswer], leak: str = ""
) -> bool:
    """A stream's end: store the answers it got (`answers` may lack a side, or both, when the stream was cut
    short) and end its hold on the battle, noting the endpoint that answered each side. Two statements, in one
    trip from the event loop (it was a trip per side and one to let go: 24.1/24.3 against 25.5/24.6 ms of web
    CPU per battle, bench/load.py, one process at 250 at once).
    A stream that lost its hold (another stream took the battle, and with it any newer answers) changes
    nothing; neither does a late stream of a version a regenerate replaced. But `leak` (why text the stream
    showed was not blind, '' if it was) is noted on the turn whatever the stream held (turn_leak_seen).

    Returns whether the battle can now be voted on: this turn is answered on both sides and the stream still
    held its battle. The turns before it need no reading: a turn is only added once the last one is answered
    on both sides (battle_continue), and only the last one is ever answered again (turn_regenerate)."""
    fields = {}
    for side, answer in answers.items():
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}")
        fields |= {
            # A model may sample U+0000, which PostgreSQL refuses in text: the whole UPDATE failed, and the
            # battle stayed held until its lease ran out.
            f"answer_{side}": answer.text.replace("\x00", ""),
            f"status_{side}": Turn.Status.DONE if answer.done else Turn.Status.FAILED,
            f"timings_{side}": {**answer.timings, "error": answer.error} if answer.error else answer.timings,
        }
    endpoints = {f"endpoint_{side}_id": a.endpoint_id for side, a in answers.items() if a.done and a.endpoint_id}
    # Written out rather than built by the ORM each time (one per battle, on the web process's database
    # threads): building these two UPDATEs cost more CPU than running them.
    quote, key = connection.ops.quote_name, Battle._meta.pk.get_db_prep_value(battle_id, connection)
    turns, battles = quote(Turn._meta.db_table), quote(Battle._meta.db_table)
    with connection.cursor() as cursor:
        if leak:  # rare: a third statement only for a turn whose answers named a model
            column = quote(Turn._meta.get_field("earlier_leak").column)
            cursor.execute(
                f"UPDATE {turns} SET {column} = %s WHERE {quote('id')} = %s AND {column} = ''", [leak, turn_id]
            )
        stored = False
        if fields:
            prepared = {Turn._meta.get_field(name): value for name, value in fields.items()}
            columns = ", ".join(f"{quote(field.column)} = %s" for field in prepared)
            values = [field.get_db_prep_save(value, connection) for field, value in prepared.items()]
            cursor.execute(
                f"UPDATE {turns} SET {columns} WHERE {quote('id')} = %s AND {quote('version')} = %s"
                f" AND {quote('battle_id')} = %s AND EXISTS (SELECT 1 FROM {battles}"
                f" WHERE {quote('id')} = %s AND {quote('stream_id')} = %s)",
                [*values, turn_id, version, key, key, stream_id],
            )
            stored = cursor.rowcount == 1
        noted = (quote(Battle._meta.get_field(name).column) for name in endpoints)
        columns = ", ".join([f"{quote('streaming_until')} = NULL", *(f"{column} = %s" for column in noted)])
        cursor.execute(
            f"UPDATE {battles} SET {columns} WHERE {quote('id')} = %s AND {quote('stream_id')} = %s",
            [*endpoints.values(), key, stream_id],
        )
        released = cursor.rowcount == 1
    return stored and released and all(side in answers and answers[side].done for side in SIDES)


def _version_number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@transaction.atomic
def _vote_store(
    *, battle_id, visitor: Visitor, outcome: object, turn: object, version: object
) -> tuple[Vote, list[Turn]]:
    """vote_record, also returning the battle's turns as the vote read them."""
    if outcome not in Vote.Outcome.values:
        raise BattleError(f"Unknown vote {outcome!r}; choose one of: {', '.join(Vote.Outcome.values)}.")
    battle = _battle_for_vote(battle_id=battle_id, visitor=visitor)
    turns = battle_turns_read(battle.pk)  # read once for every check and snapshot below
    # A second vote is refused by the unique battle of a vote (below), not by a query of its own first.
    if _streaming(battle):
        raise BattleError("An answer is still being written; please vote once both answers have finished.")
    last = turns[-1] if turns else None
    if last is None or _version_number(turn) != last.index or _version_number(version) != last.version:
        raise BattleError("The answers changed since you last saw them; please vote on the answers shown now.")
    if not turns_answered(turns):
        raise BattleError("A side failed or has not finished answering, so this battle can't be voted on.")
    try:
        # No savepoint (two round trips): a refused vote rolls back the whole of vote_record anyway.
        with transaction.atomic(savepoint=False):
            vote = Vote.objects.create(
                battle=battle, outcome=outcome, judge_hash=visitor.owner, turn_version=last.version,
                excluded_reason=vote_exclusion_reason(battle, turns=turns),
                conversation_a=battle_conversation(battle, "a", turns=turns),
                conversation_b=battle_conversation(battle, "b", turns=turns),
                timings_a=battle_timings(battle, "a", turns=turns), timings_b=battle_timings(battle, "b", turns=turns),
            )  # fmt: skip
    except IntegrityError:
        raise BattleError("This battle has been voted on; start a new round.") from None

    transaction.on_commit(lambda: _vote_recorded_announce(vote_id=vote.pk))
    return vote, turns


def vote_record(*, battle_id, visitor: Visitor, outcome: object, turn: object, version: object) -> Vote:
    """Store the vote on the answers the visitor saw (the last turn at `version`), with both conversations
    and timings, then announce it once committed."""
    return _vote_store(battle_id=battle_id, visitor=visitor, outcome=outcome, turn=turn, version=version)[0]


def vote_record_revealed(*, battle_id, visitor: Visitor, outcome: object, turn: object, version: object) -> dict:
    """vote_record; then the battle as its voter may now see it (the models named), from what the vote read."""
    vote, turns = _vote_store(battle_id=battle_id, visitor=visitor, outcome=outcome, turn=turn, version=version)
    return battle_state(vote.battle, turns=turns)


def _vote_recorded_announce(*, vote_id: int) -> None:
    """Tell listeners (ratings) about a committed vote. A failing listener is logged, never raised: the
    vote is stored, and anything a listener missed is caught up by its own sweep."""
    for receiver, result in vote_recorded.send_robust(sender=Vote, vote_id=vote_id):
        if isinstance(result, Exception):
            logger.error("Listener %r failed for vote %s", receiver, vote_id, exc_info=result)
