"""Every WebSocket message of the battle socket, as TypedDicts. None of them ever names a model."""

from typing import Literal, TypedDict

Side = Literal["a", "b"]


# Visitor -> server
class StartMessage(TypedDict):
    type: Literal["start"]
    prompt: str


class ContinueMessage(TypedDict):
    type: Literal["continue"]
    battle_id: str
    prompt: str


class RegenerateMessage(TypedDict):
    type: Literal["regenerate"]
    battle_id: str


class VoteMessage(TypedDict):
    """The same vote as POST /api/battles/<id>/vote, on the socket the battle streamed over."""

    type: Literal["vote"]
    battle_id: str
    outcome: str
    turn: int
    version: int


# Server -> visitor
class TurnStartedEvent(TypedDict):
    type: Literal["turn_started"]
    battle_id: str
    turn: int
    version: int  # of the answers about to stream; a vote names it
    prompt: str
    regenerated: bool


class DeltaEvent(TypedDict):
    """New text of one side or both, since the last delta (plain text; the sanitised HTML comes at the end)."""

    type: Literal["delta"]
    text: dict[Side, str]


class SideDoneEvent(TypedDict):
    type: Literal["side_done"]
    side: Side
    html: str


class SideErrorEvent(TypedDict):
    type: Literal["side_error"]
    side: Side
    message: str


class SideRestartEvent(TypedDict):
    """The side's server went away mid-answer: forget its text so far, a fresh answer follows."""

    type: Literal["side_restart"]
    side: Side


class BlindBrokenEvent(TypedDict):
    """The round is no longer blind (an answer gave a model away, or the prompt asked who they are): a vote
    on it will be recorded but not counted. The message never names a model."""

    type: Literal["blind_broken"]
    message: str


class TurnDoneEvent(TypedDict):
    type: Literal["turn_done"]
    battle_id: str
    voteable: bool


class VotedEvent(TypedDict):
    """The vote is recorded; `battle` is what POST /api/battles/<id>/vote answers (names revealed)."""

    type: Literal["voted"]
    battle: dict


class ErrorEvent(TypedDict):
    type: Literal["error"]
    message: str


class ReplacedEvent(TypedDict):
    """This socket's battle was taken over by another socket of the same visitor (a regenerate in another
    tab): its turn has ended here, and the page should leave the battle to that tab."""

    type: Literal["replaced"]
    battle_id: str
    message: str


class BusyEvent(TypedDict):
    """Every model that could answer is at capacity: nothing was started; try again after retry_after."""

    type: Literal["busy"]
    message: str
    retry_after: int


def turn_started(
    battle_id: str, turn: int, version: int, prompt: str, *, regenerated: bool = False
) -> TurnStartedEvent:
    return {
        "type": "turn_started", "battle_id": battle_id, "turn": turn, "version": version, "prompt": prompt,
        "regenerated": regenerated,
    }  # fmt: skip


def delta(text: dict[Side, str]) -> DeltaEvent:
    return {"type": "delta", "text": text}


def side_done(side: Side, html: str) -> SideDoneEvent:
    """A side's whole answer, rendered. Without its timings (they are stored): a server's exact token count
    beside the text would tell which tokenizer, so which model family, wrote it before the vote."""
    return {"type": "side_done", "side": side, "html": html}


def side_error(side: Side, message: str) -> SideErrorEvent:
    return {"type": "side_error", "side": side, "message": message}


def side_restart(side: Side) -> SideRestartEvent:
    return {"type": "side_restart", "side": side}


def blind_broken(message: str) -> BlindBrokenEvent:
    return {"type": "blind_broken", "message": message}


def turn_done(battle_id: str, voteable: bool) -> TurnDoneEvent:
    return {"type": "turn_done", "battle_id": battle_id, "voteable": voteable}


def error(message: str) -> ErrorEvent:
    return {"type": "error", "message": message}


def replaced(battle_id: str, message: str) -> ReplacedEvent:
    return {"type": "replaced", "battle_id": battle_id, "message": message}


def busy(message: str, retry_after: int) -> BusyEvent:
    return {"type": "busy", "message": message, "retry_after": retry_after}


def voted(battle: dict) -> VotedEvent:
    return {"type": "voted", "battle": battle}
