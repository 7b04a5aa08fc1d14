"""Writes for battles: start, continue, regenerate, record answers, vote.

Every message raised here as BattleError is shown to the visitor as is, so none names a model.
"""

import hashlib
import hmac
import logging
import re
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from battles.models import Battle, Turn, Vote
from battles.selectors import battle_conversation, battle_timings, turn_last
from inference.services import NotEnoughModels, battle_pair_draw, endpoint_pick

SIDES = ("a", "b")

logger = logging.getLogger(__name__)


class BattleError(Exception):
    """A request the visitor can fix or must be told about; the message is safe to show."""


def judge_hash(session_key: str) -> str:
    """A stable, unlinkable id for the visitor: HMAC of the session key under the site secret."""
    return hmac.new(settings.SECRET_KEY.encode(), session_key.encode(), hashlib.sha256).hexdigest()


def client_hash(ip: str) -> str:
    """The visitor's IP address, HMAC'd like the judge id: usable for rate limits, not reversible."""
    return judge_hash(f"ip:{ip}") if ip else ""


def battle_rate_limit_check(*, session_key: str, client: str) -> None:
    """Refuse a new battle past BATTLES_PER_HOUR for this session or this address: scripted ballot
    stuffing needs many battles, and one visitor reading answers needs few."""
    since = timezone.now() - timedelta(hours=1)
    recent = Battle.objects.filter(created__gte=since)
    limit = settings.BATTLES_PER_HOUR
    if recent.filter(session_key=session_key).count() >= limit or (
        client and recent.filter(client_hash=client).count() >= limit
    ):
        raise BattleError(
            f"You have started {limit} battles in the last hour, the most we allow; please come back later."
        )


def identity_leak_reason(battle: Battle) -> str:
    """Why the battle's answers give away a model (its name, served id or maker named), or ''.

    Such a vote is kept but not counted: a visitor who knows who wrote an answer is no longer blind.
    """
    terms = set()
    for side in SIDES:
        model = getattr(battle, f"model_{side}")
        endpoint = getattr(battle, f"endpoint_{side}")
        terms |= {model.name, model.organization, endpoint.served_model_id if endpoint else ""}
    patterns = [
        re.compile(rf"(?<![\w-]){re.escape(term.lower())}(?![\w-])") for term in terms if len(term.strip()) >= 4
    ]
    for turn in battle.turns.all():
        for answer in (turn.answer_a.lower(), turn.answer_b.lower()):
            if any(pattern.search(answer) for pattern in patterns):
                return "An answer named a model in this battle or its maker, so the vote was not blind."
    return ""


def prompt_clean(prompt: object) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise BattleError("Please type a prompt first.")
    prompt = prompt.strip()
    if len(prompt) > settings.PROMPT_MAX_CHARS:
        raise BattleError(
            f"Your prompt is {len(prompt):,} characters long; the limit is {settings.PROMPT_MAX_CHARS:,}."
        )
    return prompt


def battle_owned(*, battle_id, session_key: str, for_update: bool = False) -> Battle:
    """The battle, if this session owns it. Another session's battle looks the same as a missing one."""
    queryset = Battle.objects.select_for_update() if for_update else Battle.objects
    try:
        battle = queryset.get(pk=battle_id)
    except (Battle.DoesNotExist, ValidationError, ValueError):
        raise BattleError("This battle does not exist or belongs to another visitor.") from None
    if not session_key or not hmac.compare_digest(battle.session_key, session_key):
        raise BattleError("This battle does not exist or belongs to another visitor.")
    return battle


@transaction.atomic
def battle_start(*, session_key: str, prompt: object, client_ip: str = "") -> Battle:
    prompt = prompt_clean(prompt)
    if not session_key:
        raise BattleError("Your session has expired; reload the page.")
    client = client_hash(client_ip)
    battle_rate_limit_check(session_key=session_key, client=client)
    try:
        model_a, model_b = battle_pair_draw()
        battle = Battle.objects.create(
            session_key=session_key,
            client_hash=client, model_a=model_a, model_b=model_b,
            endpoint_a=endpoint_pick(model_a), endpoint_b=endpoint_pick(model_b),
        )  # fmt: skip
    except NotEnoughModels:
        raise BattleError("The arena needs at least two active models; ask an admin to register them.") from None
    Turn.objects.create(battle=battle, index=0, prompt=prompt)
    return battle


def _require_open(battle: Battle) -> None:
    if Vote.objects.filter(battle=battle).exists():
        raise BattleError("This battle has been voted on; start a new round.")


@transaction.atomic
def battle_continue(*, battle_id, session_key: str, prompt: object) -> Turn:
    prompt = prompt_clean(prompt)
    battle = battle_owned(battle_id=battle_id, session_key=session_key, for_update=True)
    _require_open(battle)
    last = turn_last(battle)
    if last.status_a != Turn.Status.DONE or last.status_b != Turn.Status.DONE:
        raise BattleError("Both answers must finish before you continue; regenerate or start a new round.")
    if last.index + 1 >= settings.BATTLE_MAX_TURNS:
        raise BattleError(f"A battle has at most {settings.BATTLE_MAX_TURNS} turns; vote or start a new round.")
    return Turn.objects.create(battle=battle, index=last.index + 1, prompt=prompt)


@transaction.atomic
def turn_regenerate(*, battle_id, session_key: str) -> Turn:
    """Clear the last answer pair so both sides answer the same prompt again."""
    battle = battle_owned(battle_id=battle_id, session_key=session_key, for_update=True)
    _require_open(battle)
    turn = turn_last(battle)
    for side in SIDES:
        setattr(turn, f"answer_{side}", "")
        setattr(turn, f"status_{side}", Turn.Status.PENDING)
        setattr(turn, f"timings_{side}", {})
    turn.save()
    return turn


def turn_side_finish(*, turn_id: int, side: str, answer: str, timings: dict, error: str = "") -> None:
    """Store one side's finished (or failed) answer."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}")
    status = Turn.Status.FAILED if error else Turn.Status.DONE
    timings = {**timings, "error": error} if error else timings
    Turn.objects.filter(pk=turn_id).update(
        **{f"answer_{side}": answer, f"status_{side}": status, f"timings_{side}": timings}
    )


def battle_is_voteable(battle: Battle) -> bool:
    turns = list(battle.turns.all())
    return bool(turns) and all(t.status_a == t.status_b == Turn.Status.DONE for t in turns)


@transaction.atomic
def vote_record(*, battle_id, session_key: str, outcome: object) -> Vote:
    """Store the vote with both conversations and timings, then queue its rating update on commit."""
    if outcome not in Vote.Outcome.values:
        raise BattleError(f"Unknown vote {outcome!r}; choose one of: {', '.join(Vote.Outcome.values)}.")
    battle = battle_owned(battle_id=battle_id, session_key=session_key, for_update=True)
    _require_open(battle)
    if not battle_is_voteable(battle):
        raise BattleError("A side failed or has not finished answering, so this battle can't be voted on.")
    try:
        with transaction.atomic():
            vote = Vote.objects.create(
                battle=battle, outcome=outcome, judge_hash=judge_hash(session_key),
                excluded_reason=identity_leak_reason(battle),
                conversation_a=battle_conversation(battle, "a"), conversation_b=battle_conversation(battle, "b"),
                timings_a=battle_timings(battle, "a"), timings_b=battle_timings(battle, "b"),
            )  # fmt: skip
    except IntegrityError:
        raise BattleError("This battle has been voted on; start a new round.") from None

    transaction.on_commit(lambda: vote_rating_queue(vote_id=vote.pk))
    return vote


def vote_rating_queue(*, vote_id: int) -> bool:
    """Queue the vote's rating task. With the broker down the vote stays stored (unrated) and the
    periodic `votes_rate_pending` task rates it later: a Redis fault never loses or fails a vote."""
    from ratings.tasks import vote_rate

    try:
        vote_rate.delay(vote_id)
    except Exception:  # noqa: BLE001 - any broker failure; the sweep picks the vote up
        logger.warning("Could not queue the rating of vote %s; it will be rated by the sweep", vote_id, exc_info=True)
        return False
    return True


def vote_mark_rated(*, vote_id: int) -> None:
    Vote.objects.filter(pk=vote_id, rated_at__isnull=True).update(rated_at=timezone.now())
