"""Answer a turn on both sides at once, streaming each side's text to the visitor as it arrives.

Each side runs as its own task, so a slow or failing side never holds back the other. A side is served by
the least-loaded healthy replica of its model (inference/routing.py); a replica that fails before its
first token is swapped for another, unseen by the visitor. Whatever happens on a side, it ends as done or
failed with a message, and the turn always ends with `turn_done`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from django.conf import settings

from arena import metrics
from arena.db import off_loop
from arena.overload import frame_pacer, turn_delays
from battles import events, services, stream_stops
from battles.blindness import Leak, LeakDetector, prompt_not_blind
from battles.models import Turn
from battles.rendering import markdown_to_safe_html
from battles.selectors import battle_request_messages, battle_turns, leak_detector, prompt_detector
from inference import health, routing
from inference.chat_format import template_overhead_tokens, template_stops
from inference.client import ChatTarget, InferenceError, Limits, StreamStats, stream_chat
from inference.context import ContextTooSmall, fit_to_context
from inference.selectors import replicas_of_models

logger = logging.getLogger(__name__)

Send = Callable[[dict], Awaitable[None]]

# What a visitor reads when a side fails: the kind of failure only, never the model or its host.
_FAILURE_TEXT = {
    "timeout": "the model did not answer in time",
    "unreachable": "the model's server could not be reached",
    "dropped": "the answer was cut off mid-stream",
    "busy": "the model is busy with other battles",
    "context": "the conversation is too long for this model",
    "unexpected": "something went wrong on our side",
}
# How long a side waits for a free slot when its model filled up between the draw and the stream.
SLOT_WAIT_SECONDS = 5.0
# What a socket whose battle was taken over by another (services.turn_regenerate) is told.
REPLACED_SIDE = "This answer was stopped: the battle was regenerated in another window."
REPLACED_MESSAGE = (
    "This battle was regenerated in another window or tab, and its answers go on there. Start a new round here."
)


def failure_message(side: str, kind: str) -> str:
    reason = _FAILURE_TEXT.get(kind)
    if reason is None:
        reason = "the model's server returned an error" if kind.startswith("http") else "the model failed"
    return f"Model {side.upper()} could not answer: {reason}. You can regenerate or start a new round."


@dataclass(frozen=True)
class SidePlan:
    side: str
    model_name: str  # for operators' metrics only; never sent to the visitor
    replicas: list[routing.Replica]
    messages: list[dict]
    # The system prompt and the newest prompt alone: sent instead if a server still says "too long".
    shortest_messages: list[dict]
    params: dict  # temperature, top_p, max_tokens, stop
    dropped_turns: int


@dataclass(frozen=True)
class TurnPlan:
    turn_id: int
    battle_id: str
    version: int
    sides: list[SidePlan]
    detector: LeakDetector
    # Why the vote will not count before any answer streams ('' if it may): the prompt, or text that an
    # earlier version of this turn showed (a regenerate; a stream taken over).
    not_blind_before: str


class BlindnessWatch:
    """Watches both sides' text as it streams and tells the visitor, once, as soon as the round stops
    being blind, so nobody votes believing the vote will count. Keeps the first reason an answer gave, for
    the turn's end to note on the turn however the stream ends (services.turn_finish)."""

    def __init__(self, send: Send):
        self.send = send
        self.told = False
        self.answer_leak = ""

    def saw(self, reason: str) -> None:
        self.answer_leak = self.answer_leak or reason

    async def tell(self, message: str) -> None:
        if not self.told:
            self.told = True
            await self.send(events.blind_broken(message))


def turn_plan(turn_id: int) -> TurnPlan:
    """Everything both streams need, read in one go: replicas, fitted messages, sampling settings."""
    turn = Turn.objects.select_related("battle", "battle__model_a", "battle__model_b").get(pk=turn_id)
    return turn_plan_of(turn, battle_turns(turn.battle))  # the turns read once, for both sides' messages


def _shortest(messages: list[dict]) -> list[dict]:
    """The system prompt and the newest prompt alone."""
    return [m for m in messages[:1] if m["role"] == "system"] + messages[-1:]


def turn_plan_of(turn: Turn, turns: list[Turn]) -> TurnPlan:
    """The plan for `turn` (its battle and both models loaded) given its battle's turns: no query of its own
    but the fleet's cached views."""
    battle = turn.battle
    replicas = replicas_of_models([battle.model_a_id, battle.model_b_id])
    asked = {side: battle_request_messages(battle, side, turn_index=turn.index, turns=turns) for side in services.SIDES}

    def fitted(side: str, min_dropped: int = 0) -> tuple[list[dict], int, int]:
        model = getattr(battle, f"model_{side}")
        overhead = template_overhead_tokens(model.chat_template)
        try:
            fit = fit_to_context(asked[side], context_length=model.context_length - overhead,
                                 max_new_tokens=model.max_new_tokens, min_dropped=min_dropped)  # fmt: skip
            return fit.messages, fit.max_tokens, fit.dropped_turns
        except ContextTooSmall:
            # Refused before the turn was made (services._require_room); kept as a last line of defence.
            return _shortest(asked[side]), model.max_new_tokens, 0

    fits = {side: fitted(side) for side in services.SIDES}
    # Both sides answer the same conversation: a side that kept turns the other had to drop would remember
    # what the other forgot, and show the visitor which side has the smaller context (often, which model).
    dropped = max(fit[2] for fit in fits.values())
    sides = []
    for side in services.SIDES:
        model = getattr(battle, f"model_{side}")
        messages, max_tokens, side_dropped = fits[side] if fits[side][2] == dropped else fitted(side, dropped)
        params = {"temperature": model.temperature, "top_p": model.top_p, "max_tokens": max_tokens,
                  "stop": template_stops(model.chat_template)}  # fmt: skip
        sides.append(SidePlan(side, model.name, replicas.get(model.pk, []), messages, _shortest(asked[side]), params,
                              side_dropped))  # fmt: skip
    detector = leak_detector()
    verdict = prompt_not_blind(turn.prompt, detector, prompt_detector()) or turn.earlier_leak
    return TurnPlan(turn.pk, str(battle.pk), turn.version, sides, detector, verdict)


class DeltaCoalescer:
    """Sends a turn's streamed text as `delta` frames that carry both sides' new text: a side's first piece
    at once, then at most one frame per interval for the turn, so two fast models cost a frame every few
    tens of milliseconds rather than one per token per side (frames were a sixth of a battle's CPU).
    `interval()` is asked at each piece: the process's load may stretch it."""

    def __init__(self, send: Send, interval: Callable[[], float]):
        self.send, self.interval = send, interval
        self.loop = asyncio.get_running_loop()
        self.pending: dict[str, list[str]] = {}
        self.started: set[str] = set()  # sides whose first piece went out
        self.last_sent = float("-inf")
        self.timer: asyncio.TimerHandle | None = None
        self.lock = asyncio.Lock()  # frames go out in order
        self.flushes: set[asyncio.Task] = set()

    async def push(self, side: str, text: str) -> None:
        self.pending.setdefault(side, []).append(text)
        interval = self.interval()
        if side not in self.started or self.loop.time() - self.last_sent >= interval:
            self.started.add(side)
            await self.flush()
        elif self.timer is None:
            # Text must not wait for the next token: it goes out when the interval is up, regardless.
            self.timer = self.loop.call_at(self.last_sent + interval, self._flush_later)

    def _flush_later(self) -> None:
        self.timer = None
        task = self.loop.create_task(self.flush())
        self.flushes.add(task)
        task.add_done_callback(self.flushes.discard)

    async def flush(self) -> None:
        """Send every side's text held back; when this returns, all text pushed before it has gone out (so
        a side's own event may follow)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        async with self.lock:
            if not self.pending:
                return
            text = {side: "".join(pieces) for side, pieces in self.pending.items()}
            self.pending = {}
            self.last_sent = self.loop.time()
            await self.send(events.delta(text))

    async def close(self) -> None:
        """Send what is left; nothing is sent after this returns."""
        await self.flush()
        if self.flushes:
            await asyncio.gather(*self.flushes, return_exceptions=True)

    def abandon(self) -> None:
        """The stream was cut short: text held back is not sent later (its socket is likely gone)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _target(replica: routing.Replica) -> ChatTarget:
    return ChatTarget(base_url=replica.base_url, model=replica.served_model_id, api_key=replica.api_key)


async def _reserve(
    plan: SidePlan, tried: set[int], hold: float, seen: dict[int, routing.ReplicaState] | None = None
) -> routing.Lease | None:
    """A slot on a replica not tried yet; if they are all full (the model filled up since the draw, or the
    others are busy when one fails), wait a little for one. `seen`: the replicas' states from the look
    that drew this battle, to choose by on the first try (later tries look again)."""
    if all(replica.endpoint_id in tried for replica in plan.replicas):
        return None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SLOT_WAIT_SECONDS
    while True:
        lease = await routing.reserve(plan.replicas, hold_seconds=hold, exclude=tried, seen=seen)
        if lease is not None or loop.time() >= deadline:
            return lease
        seen = None
        await asyncio.sleep(0.25)


async def answer_side(
    plan: TurnPlan,
    side: SidePlan,
    send: Send,
    watch: BlindnessWatch,
    coalescer: DeltaCoalescer,
    seen: dict[int, routing.ReplicaState] | None = None,
) -> services.SideAnswer:
    """Stream one side's answer; returns how it ended, for the turn's end to store (turn_answer_both). Never
    raises (but for cancellation). `seen`: replica states to choose the first replica by (_reserve)."""
    limits = Limits(
        connect=settings.INFERENCE_CONNECT_TIMEOUT,
        idle=settings.INFERENCE_IDLE_TIMEOUT,
        answer=settings.INFERENCE_ANSWER_DEADLINE,
    )
    pieces: list[str] = []
    stats = StreamStats()
    tried: set[int] = set()
    messages = side.messages
    failure = "busy"
    served_by = None
    restarted = False
    scanner = plan.detector.scanner()
    leaks: list[str] = []  # reasons, for text the visitor saw (even text later discarded by a restart)

    async def note(leak: Leak | None) -> None:
        """The first leak in text the visitor saw is kept (for the stored timings), noted on the turn at once
        (these answers may be replaced before they are stored: a takeover whose stop is lost lets this stream
        run on, unstored, while the new answers are voted on) and told."""
        if leak is not None and not leaks:
            leaks.append(leak.reason)
            watch.saw(leak.reason)  # the turn's end notes it too, should this write be cut short
            try:
                await off_loop(services.turn_leak_seen)(turn_id=plan.turn_id, reason=leak.reason)
            except Exception:  # noqa: BLE001 - the turn's end notes it
                logger.exception("could not note the leak seen in battle %s", plan.battle_id)
            await watch.tell(leak.reason)

    async def on_text(text: str) -> None:
        pieces.append(text)
        await coalescer.push(side.side, text)
        await note(scanner.feed(text))

    in_flight = metrics.IN_FLIGHT.labels(model=side.model_name)
    in_flight.inc()
    hold = limits.answer + limits.connect + 30
    next_lease = None  # taken before a restart, so text is withdrawn only once another replica will answer
    try:
        while True:
            lease = next_lease or await _reserve(side, tried, hold=hold, seen=seen)
            next_lease, seen = None, None  # a replica failed or the side restarts: look at the fleet afresh
            if lease is None:
                break  # failure stays what the last replica did, or "busy" if none could be had
            endpoint_id = lease.replica.endpoint_id
            stats = StreamStats()
            answered = None
            try:
                await stream_chat(_target(lease.replica), messages, on_text=on_text, stats=stats, limits=limits,
                                  read_every=coalescer.interval, **side.params)  # fmt: skip
            except InferenceError as exc:
                logger.warning(
                    "battle %s side %s at endpoint %s failed: %s", plan.battle_id, side.side, endpoint_id, exc
                )
                failure = exc.kind
                if exc.endpoint_at_fault:
                    await health.record_failure(endpoint_id, error=str(exc)[:300])
                if pieces:
                    # Text was shown, and another replica's answer would not continue it: if the server went
                    # away mid-answer, the side starts over on another replica of the same model, once, and
                    # the visitor sees it start over (a regenerate of that side, not a splice).
                    if restarted or not exc.worth_another_replica:
                        break
                    tried.add(endpoint_id)
                    next_lease = await _reserve(side, tried, hold=hold)
                    if next_lease is None:
                        break  # no other replica can answer: the text shown stays, with the reason it stopped
                    restarted = True
                    metrics.SIDE_RESTARTS.labels(model=side.model_name).inc()
                    await coalescer.flush()  # the text shown so far goes out before it is withdrawn
                    await note(scanner.finish())
                    scanner = plan.detector.scanner()
                    pieces.clear()
                    await send(events.side_restart(side.side))
                    continue
                if exc.kind == "context" and messages is not side.shortest_messages:
                    messages = side.shortest_messages  # our estimate was short: drop the history and ask again
                    continue
                if exc.worth_another_replica:
                    tried.add(endpoint_id)
                    metrics.FAILOVERS.labels(model=side.model_name).inc()
                    continue
                break
            else:
                answered = routing.Answered(ttft=stats.ttft, duration=stats.as_dict()["total"])
                _observe_speed(side.model_name, endpoint_id, stats)
                failure, served_by = None, endpoint_id
                break
            finally:
                await routing.release(lease, answered=answered)  # with the endpoint's success, if so
        await coalescer.flush()
        await note(scanner.finish())
        answer = "".join(pieces)
        timings = {**stats.as_dict(), "attempts": len(tried) + 1, "restarted": restarted}
        if leaks:
            timings["not_blind"] = leaks[0]
        elif failure is None:
            timings["blind_scanned"] = True  # the whole stored answer was scanned as it streamed
        if side.dropped_turns or messages is side.shortest_messages:
            timings["dropped_turns"] = side.dropped_turns if messages is side.messages else -1
        if failure is None:
            metrics.SIDES_FINISHED.labels(model=side.model_name, outcome="done").inc()
            await send(events.side_done(side.side, markdown_to_safe_html(answer)))
            return services.SideAnswer(answer, timings, endpoint_id=served_by)
    except asyncio.CancelledError:
        # Stopped (socket gone, battle taken over): the text sent may end in a name the scanner holds back
        # until its word ends ("I am SmolLM"). Judged as it stands, for the turn's end to note.
        leak = scanner.finish()
        if leak is not None:
            watch.saw(leak.reason)
        raise
    except Exception:  # noqa: BLE001 - whatever it was, this side fails and the turn still ends
        logger.exception("battle %s side %s failed unexpectedly", plan.battle_id, side.side)
        failure = "unexpected"
    finally:
        in_flight.dec()
        if next_lease is not None:  # taken for a restart that never ran (cancelled, or a fault in between)
            await routing.release(next_lease)
    metrics.SIDES_FINISHED.labels(model=side.model_name, outcome=failure).inc()
    with contextlib.suppress(Exception):
        await coalescer.flush()
    await send(events.side_error(side.side, failure_message(side.side, failure)))
    return services.SideAnswer("".join(pieces), stats.as_dict(), error=failure)


def _observe_speed(model: str, endpoint_id: int, stats: StreamStats) -> None:
    """Time to first token and streaming speed of one finished answer, per model and endpoint."""
    if stats.ttft is None:
        return
    labels = {"model": model, "endpoint": str(endpoint_id)}
    metrics.TTFT.labels(**labels).observe(stats.ttft)
    streaming = (stats.finished_at or stats.first_token_at) - stats.first_token_at
    if stats.tokens > 1 and streaming > 0:
        metrics.TOKENS_PER_SECOND.labels(**labels).observe((stats.tokens - 1) / streaming)


async def _keep_stream(battle_id: str, stream_id: str) -> None:
    """Renew the stream's hold on its battle while it runs (a third of the lease at a time); stop the stream
    once the hold is found gone (another stream took the battle over and its stop never came: see
    battles/stream_stops.py)."""
    while True:
        await asyncio.sleep(services.STREAM_LEASE_SECONDS / 3)
        try:
            held = await off_loop(services.stream_renew)(battle_id=battle_id, stream_id=stream_id)
        except Exception:  # noqa: BLE001 - the database is away: the hold lasts its lease, the stream goes on
            continue
        if not held:
            stream_stops.stop_here(stream_id)
            return


async def turn_answer_both(
    *,
    turn_id: int,
    stream_id: str,
    send: Send,
    ticket: object | None = None,
    planned: TurnPlan | None = None,
    seen: dict[int, routing.ReplicaState] | None = None,
) -> bool:
    """Stream both answers to `send`, then store them and free the battle in one trip to the database
    (services.turn_finish); always ends with `turn_done`. Returns voteable.
    `ticket` (arena/overload.py's, taken when the visitor's message arrived) is ended once the models
    can be asked, noting this process's own delay (the caller ends it when the task ends, however).
    `planned`: the turn's plan, when the caller made it already (else it is read). `seen`: the fleet's
    replica states from the look that drew a new battle (routing.Availability.states): each side picks
    its first replica by them rather than looking again (a Redis round trip less before the models are
    asked)."""
    plan = None
    keeper = None
    coalescer = None
    watch = None
    voteable = False
    answers: dict[str, services.SideAnswer] = {}
    this_stream = asyncio.current_task()
    replaced = False

    def stop() -> None:  # the battle was taken over by another stream: this one ends at once
        nonlocal replaced
        replaced = True
        this_stream.cancel()

    stream_stops.stream_running(stream_id, stop)
    try:
        try:
            plan = planned if planned is not None else await off_loop(turn_plan)(turn_id)
            if ticket is not None:
                turn_delays().end(ticket)
            keeper = asyncio.ensure_future(_keep_stream(plan.battle_id, stream_id))
            watch = BlindnessWatch(send)
            if plan.not_blind_before:
                await watch.tell(plan.not_blind_before)
            coalescer = DeltaCoalescer(
                send, frame_pacer(settings.STREAM_FRAME_INTERVAL, settings.STREAM_FRAME_INTERVAL_BUSY)
            )

            async def answer(side: SidePlan) -> None:
                # Kept as each side ends: a turn cut short still stores the side that finished.
                answers[side.side] = await answer_side(plan, side, send, watch, coalescer, seen)

            await asyncio.gather(*(answer(side) for side in plan.sides))
            await coalescer.close()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a fault before the sides started: both fail, the turn still ends
            logger.exception("turn %s could not be answered", turn_id)
            for side in services.SIDES:
                with contextlib.suppress(Exception):
                    await send(events.side_error(side, failure_message(side, "unexpected")))
    except asyncio.CancelledError:  # wherever our own stop landed, the sends above included
        if not replaced:
            raise
        this_stream.uncancel()  # our own stop, not the socket's: the turn still ends, and says why
        for side in services.SIDES:
            if side not in answers:
                with contextlib.suppress(Exception):
                    await send(events.side_error(side, REPLACED_SIDE))
    finally:
        stream_stops.stream_ended(stream_id)  # first, before any wait: a stop from now on would cut the end short
        if keeper is not None:
            keeper.cancel()
        if coalescer is not None:
            coalescer.abandon()
        try:
            battle_id = plan.battle_id if plan else await off_loop(_battle_of)(turn_id)
            finish = off_loop(services.turn_finish)(
                turn_id=turn_id, version=plan.version if plan else 0, battle_id=battle_id, stream_id=stream_id,
                answers=answers, leak=watch.answer_leak if watch else "",
            )  # fmt: skip
            voteable = await asyncio.shield(finish)  # a closed socket still stores what it got and frees its battle
        except Exception:  # noqa: BLE001 - the hold lapses on its own; the visitor must still hear the end
            logger.exception("could not store the answers of turn %s or release its stream", turn_id)
            battle_id = plan.battle_id if plan else ""
    metrics.TURNS_FINISHED.labels(voteable=str(voteable).lower()).inc()
    await send(events.turn_done(battle_id, voteable))
    if replaced:
        await send(events.replaced(battle_id, REPLACED_MESSAGE))
    return voteable


def _battle_of(turn_id: int) -> str:
    return str(Turn.objects.values_list("battle_id", flat=True).get(pk=turn_id))
