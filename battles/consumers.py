"""The battle WebSocket: parses visitor messages, calls the services, streams the answers back."""

import asyncio
import json
import logging

import orjson
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from arena import metrics
from arena.db import off_loop
from arena.overload import loop_lag, overloaded, turn_delays
from battles import events, services, stream_stops
from battles.streaming import TurnPlan, turn_answer_both, turn_plan_of
from battles.visitors import session_key_issued, session_recently_issued
from inference import routing
from inference.selectors import drawable_replicas

logger = logging.getLogger(__name__)

OVERLOADED_MESSAGE = "The arena is very busy right now. Please try again in {} seconds."
OVERLOAD_RETRY_SECONDS = 5


def _battle_start_planned(**start) -> tuple[services.TurnStream, TurnPlan | None]:
    """A new battle, and its first turn's plan made from what the start just wrote rather than read back:
    one trip to the database threads and two queries fewer before the models are asked (under load, that
    trip is most of a turn's wait)."""
    stream = services.battle_start(**start)
    try:
        return stream, turn_plan_of(stream.turn, [stream.turn])
    except Exception:  # noqa: BLE001 - the battle is started: the stream plans it again, failing as a turn does
        logger.exception("could not plan the first turn of battle %s with its start", stream.battle_id)
        return stream, None


class BattleConsumer(AsyncJsonWebsocketConsumer):
    # No channel layer: a battle talks only to its own socket, so a Redis outage must not close it.
    channel_layer_alias = None

    @classmethod
    async def decode_json(cls, text_data: str) -> object:
        """The message, or None when it is not JSON (receive_json tells the visitor). A lone surrogate escaped
        ("\\ud800", a pasted half emoji) is JSON that orjson refuses and json reads; the prompt is then made
        well-formed (services.prompt_clean)."""
        try:
            return orjson.loads(text_data)
        except orjson.JSONDecodeError:
            try:
                return json.loads(text_data)
            except (ValueError, RecursionError):  # not JSON, or nested deeper than json reads
                return None

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Channels raises on a binary or empty frame (the socket closes, a traceback is logged): such a message
        # is refused as any other that is not a JSON object.
        await self.receive_json(await self.decode_json(text_data) if text_data else None, **kwargs)

    @classmethod
    async def encode_json(cls, content) -> str:
        # Every streamed frame is encoded here: orjson takes a tenth of json.dumps's time (0.2 against 2.6 us).
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS).decode()

    async def connect(self):
        key = self.scope.get("cookies", {}).get(settings.SESSION_COOKIE_NAME, "")
        if not key or not (session_recently_issued(key) or await off_loop(session_key_issued)(key)):
            # Only a session the arena issued (when the visitor started a battle) may own one.
            await self.close(code=4401)
            return
        # scope["client"] is the peer, or the forwarded client when the web server trusts proxy headers.
        ip = (self.scope.get("client") or ("",))[0] or ""
        self.visitor = services.Visitor.of(session_key=key, ip=ip)
        self.streaming: asyncio.Task | None = None
        loop_lag()  # this process starts watching its own load with its first visitor
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "streaming", None) and not self.streaming.done():
            self.streaming.cancel()

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            await self.send_json(events.error("Messages must be JSON objects."))
            return
        if self.streaming and not self.streaming.done():
            await self.send_json(events.error("Please wait until both answers have finished."))
            return
        kind = content.get("type")
        if kind == "vote":
            await self._vote(content)
            return
        if kind == "start" and overloaded(settings.WEB_MAX_DELAY, settings.WEB_MAX_CPU):
            # Battles already running carry on; a new one would only make every visitor here wait longer.
            metrics.BUSY_REFUSALS.labels(reason="web").inc()
            await self.send_json(events.busy(OVERLOADED_MESSAGE.format(OVERLOAD_RETRY_SECONDS), OVERLOAD_RETRY_SECONDS))
            return
        # This process's own delay is measured from here until the turn can ask the models.
        delays = turn_delays()
        ticket = delays.begin()
        try:
            made = await self._turn_make(kind, content)
            if made is None:
                return
            turn, plan, seen = made
            if kind == "start":
                metrics.BATTLES_STARTED.inc()
            started = events.turn_started(
                turn.battle_id, turn.index, turn.version, turn.prompt, regenerated=kind == "regenerate"
            )
            await self.send_json(started)
            # Run the stream as a task so the socket keeps reading (and can refuse overlapping requests).
            self.streaming = asyncio.ensure_future(
                turn_answer_both(
                    turn_id=turn.turn_id,
                    stream_id=turn.stream_id,
                    send=self._stream_send,
                    ticket=ticket,
                    planned=plan,
                    seen=seen,
                )
            )
            # The stream ends the ticket; so does the task's end, should it be cancelled before it ever ran
            # (a socket closed at once), or the process would count that turn as waiting.
            handed_over = ticket
            self.streaming.add_done_callback(lambda _task: delays.end(handed_over, reached_models=False))
            ticket = None
        finally:
            if ticket is not None:
                delays.end(ticket, reached_models=False)

    async def _stream_send(self, event: dict) -> None:
        """A frame of the running stream. When the visitor has gone, the web server refuses the send (uvicorn
        raises ClientDisconnected, an OSError, or a RuntimeError once it closed the socket itself) a moment
        before disconnect() is called: the stream is then cancelled, as disconnect() would, and the frame
        dropped, rather than the side that sent failing as "unexpected" while the other streams on."""
        try:
            await self.send_json(event)
        except (OSError, RuntimeError):
            if self.streaming is not None and not self.streaming.done():
                self.streaming.cancel()

    async def _vote(self, content) -> None:
        """A vote on the socket the battle streamed over: the checks and the record of the HTTP vote, without
        a request of its own (a vote through Django's HTTP stack costs about 1.6 times the web CPU)."""
        try:
            revealed = await off_loop(services.vote_record_revealed)(
                battle_id=content.get("battle_id"), visitor=self.visitor, outcome=content.get("outcome"),
                turn=content.get("turn"), version=content.get("version"),
            )  # fmt: skip
        except services.BattleError as exc:
            await self.send_json(events.error(str(exc)))
            return
        await self.send_json(events.voted(revealed))

    async def _turn_make(self, kind, content) -> tuple[services.TurnStream, TurnPlan | None, dict | None] | None:
        """The new turn, its plan when made with it, and the replica states its battle was drawn by (for a
        new battle); or None once the visitor has been told why not."""
        try:
            if kind == "start":
                fleet = await drawable_replicas()
                ready = await routing.availability(fleet)
                turn, plan = await off_loop(_battle_start_planned)(
                    visitor=self.visitor, prompt=content.get("prompt"), ready=ready.ready,
                    retry_after=ready.retry_after if ready.busy else 0,
                )  # fmt: skip
                return turn, plan, ready.states
            if kind == "continue":
                turn = await off_loop(services.battle_continue)(
                    battle_id=content.get("battle_id"), visitor=self.visitor, prompt=content.get("prompt")
                )
                return turn, None, None
            if kind == "regenerate":
                turn = await off_loop(services.turn_regenerate)(
                    battle_id=content.get("battle_id"), visitor=self.visitor
                )
                if turn.replaced_stream:  # from a socket that dropped unnoticed, or another tab: it ends now
                    await stream_stops.stream_stop(turn.replaced_stream)
                return turn, None, None
            await self.send_json(events.error("Unknown message type."))
        except services.BattleBusy as exc:
            metrics.BUSY_REFUSALS.labels(reason="models").inc()
            await self.send_json(events.busy(str(exc), exc.retry_after))
        except services.BattleError as exc:
            await self.send_json(events.error(str(exc)))
        return None
