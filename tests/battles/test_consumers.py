"""The battle socket, driven through the real ASGI application with WebsocketCommunicator: streaming, and
every fault of the model tier the visitor may meet (a scripted HTTP server stands in for misbehaving
remote APIs; real llama.cpp servers are killed for real)."""

import asyncio
import contextlib
import logging
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore
from prometheus_client import REGISTRY

from arena.asgi import application
from battles.models import Battle, Turn, Vote
from battles.streaming import REPLACED_MESSAGE, REPLACED_SIDE
from battles.visitors import ISSUED
from inference import health
from inference.models import Endpoint
from tests.factories import cast_vote, make_model

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("pooled_http_closed")]


@database_sync_to_async
def issued_session_key() -> str:
    """A session as the arena issues it (POST /api/session)."""
    session = SessionStore()
    session[ISSUED] = True
    session.create()
    return session.session_key


async def connect(session_key: str | None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if session_key:
        headers.append((b"cookie", f"sessionid={session_key}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/battle/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def collect_turn(communicator: WebsocketCommunicator, timeout: float = 60) -> list[dict]:
    """Every event up to and including turn_done (or an error or busy answer)."""
    received = []
    deadline = time.monotonic() + timeout
    while True:
        event = await communicator.receive_json_from(timeout=max(0.1, deadline - time.monotonic()))
        received.append(event)
        if event["type"] in {"turn_done", "error", "busy"}:
            return received


def answer_text(received: list[dict], side: str) -> str:
    return "".join(e["text"].get(side, "") for e in received if e["type"] == "delta")


def side_events(received: list[dict], kind: str) -> list[dict]:
    return [e for e in received if e["type"] == kind]


@database_sync_to_async
def register(name: str, base_url: str, **fields):
    return make_model(name, base_url=base_url, **fields)


@database_sync_to_async
def add_replica(model, base_url: str, **fields) -> Endpoint:
    return Endpoint.objects.create(model=model, base_url=base_url, served_model_id="served-" + model.name, **fields)


@database_sync_to_async
def load_turn(battle_id, index: int = 0) -> Turn:
    return Turn.objects.get(battle_id=battle_id, index=index)


async def session_of(communicator: WebsocketCommunicator) -> str:
    return communicator.session_key


async def start(prompt: str = "Hello?", session_key: str | None = None) -> tuple[WebsocketCommunicator, list[dict]]:
    session_key = session_key or await issued_session_key()
    communicator = await connect(session_key)
    communicator.session_key = session_key
    await communicator.send_json_to({"type": "start", "prompt": prompt})
    return communicator, await collect_turn(communicator)


async def test_a_socket_without_an_issued_session_is_refused():
    for cookie in (None, "made-up-session-key-1234", await database_sync_to_async(lambda: SessionStore().create())()):
        headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
        if cookie:
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        communicator = WebsocketCommunicator(application, "/ws/battle/", headers=headers)
        connected, code = await communicator.connect()
        assert not connected and code == 4401
        await communicator.disconnect()


async def test_both_answers_stream_and_are_stored_without_naming_a_model(scripted_api):
    await register("model-left-secret", scripted_api.url("ok"))
    await register("model-right-secret", scripted_api.url("ok"))
    communicator, received = await start()
    assert received[0]["type"] == "turn_started" and received[0]["version"] == 1
    assert answer_text(received, "a") == answer_text(received, "b") == "Hello from the scripted API."
    assert received[-1] == {"type": "turn_done", "battle_id": received[0]["battle_id"], "voteable": True}
    assert "secret" not in str(received) and "127.0.0.1" not in str(received)
    # No timings before the vote: a server's exact token count beside the text hints at its tokenizer.
    assert all(set(event) == {"type", "side", "html"} for event in side_events(received, "side_done"))
    turn = await load_turn(received[0]["battle_id"])
    assert turn.answer_a == "Hello from the scripted API." and turn.status_b == Turn.Status.DONE
    assert turn.timings_a["tokens"] == 6 and turn.timings_a["ttft"] is not None
    # Scanned for leaks in full as it streamed, so the vote need not scan it again.
    assert turn.timings_a["blind_scanned"] is True and "not_blind" not in turn.timings_a
    # The first token goes out at once; the rest are coalesced into fewer frames than tokens.
    assert 1 <= len([e for e in received if e["type"] == "delta" and "a" in e["text"]]) <= 6
    # Which endpoint answered each side is on record (for operators; never shown to the visitor).
    battle = await database_sync_to_async(Battle.objects.select_related("endpoint_a", "endpoint_b").get)(
        pk=received[0]["battle_id"]
    )
    assert (battle.endpoint_a.model_id, battle.endpoint_b.model_id) == (battle.model_a_id, battle.model_b_id)
    await communicator.disconnect()


async def test_a_first_turn_that_could_not_be_planned_with_its_start_is_planned_by_its_stream(
    scripted_api, monkeypatch
):
    """Planning with the start is a shortcut: if it fails, the battle is still answered (planned again)."""
    from battles import consumers

    def broken(*args, **kwargs):
        raise RuntimeError("planning failed")

    monkeypatch.setattr(consumers, "turn_plan_of", broken)
    await register("m1", scripted_api.url("ok"))
    await register("m2", scripted_api.url("ok"))
    communicator, received = await start()
    assert received[-1] == {"type": "turn_done", "battle_id": received[0]["battle_id"], "voteable": True}
    assert answer_text(received, "a") == "Hello from the scripted API."
    await communicator.disconnect()


async def test_a_vote_on_the_battles_socket_is_recorded_once_and_reveals_the_models(scripted_api):
    await register("model-left", scripted_api.url("ok"))
    await register("model-right", scripted_api.url("ok"))
    communicator, received = await start()
    battle_id = received[0]["battle_id"]
    vote = {"type": "vote", "battle_id": battle_id, "outcome": "b", "turn": 0, "version": 1}
    await communicator.send_json_to(vote)
    voted = await communicator.receive_json_from(timeout=10)
    assert voted["type"] == "voted" and voted["battle"]["counted"] is True and voted["battle"]["outcome"] == "b"
    assert {voted["battle"]["model_a"], voted["battle"]["model_b"]} == {"model-left", "model-right"}
    await communicator.send_json_to(vote)
    assert await communicator.receive_json_from(timeout=10) == {
        "type": "error",
        "message": "This battle has been voted on; start a new round.",
    }
    # Another visitor's socket cannot vote on it.
    other, _ = await start()
    await other.send_json_to({**vote, "outcome": "a"})
    refused = await other.receive_json_from(timeout=10)
    assert refused["type"] == "error" and "belongs to another visitor" in refused["message"]
    assert await database_sync_to_async(Vote.objects.filter(battle_id=battle_id).count)() == 1
    await communicator.disconnect()
    await other.disconnect()


async def test_one_endpoint_down_fails_only_its_own_side(scripted_api):
    await register("up-model", scripted_api.url("ok"))
    await register("down-model", "http://127.0.0.1:9/v1")
    communicator, received = await start()
    errors, done = side_events(received, "side_error"), side_events(received, "side_done")
    assert len(errors) == 1 and len(done) == 1
    assert errors[0]["side"] != done[0]["side"]
    assert "could not be reached" in errors[0]["message"]
    assert "down-model" not in str(received) and ":9/" not in str(received)
    assert received[-1]["voteable"] is False
    await communicator.disconnect()


async def test_a_hanging_endpoint_does_not_hold_back_the_other_side(scripted_api, settings):
    settings.INFERENCE_IDLE_TIMEOUT = 2.0
    await register("quick-model", scripted_api.url("ok"))
    await register("hung-model", scripted_api.url("hang"))
    started = time.monotonic()
    communicator, received = await start()
    first_done = next(i for i, e in enumerate(received) if e["type"] == "side_done")
    first_error = next(i for i, e in enumerate(received) if e["type"] == "side_error")
    assert first_done < first_error, "the quick side finished before the hung one timed out"
    assert "did not answer in time" in received[first_error]["message"]
    assert time.monotonic() - started < 10
    await communicator.disconnect()


async def test_keep_alives_without_tokens_are_stopped_by_the_answer_deadline_and_regenerate_works_after(
    scripted_api, settings
):
    settings.INFERENCE_IDLE_TIMEOUT = 60.0  # keep-alives would satisfy a socket timeout; the deadlines don't
    settings.INFERENCE_ANSWER_DEADLINE = 2.0
    model = await register("chatty-model", scripted_api.url("keepalive"))
    await register("quick-model", scripted_api.url("ok"))
    started = time.monotonic()
    communicator, received = await start()
    assert time.monotonic() - started < 8
    [error] = side_events(received, "side_error")
    assert "did not answer in time" in error["message"] and received[-1]["type"] == "turn_done"
    await database_sync_to_async(Endpoint.objects.filter(model=model).update)(base_url=scripted_api.url("ok"))
    await communicator.send_json_to({"type": "regenerate", "battle_id": received[0]["battle_id"]})
    again = await collect_turn(communicator)
    assert again[0]["type"] == "turn_started" and again[0]["version"] == 2
    await communicator.disconnect()


async def test_a_chunk_that_is_json_but_not_an_object_fails_that_side_and_the_turn_still_ends(scripted_api):
    await register("odd-model", scripted_api.url("notobject"))
    await register("fine-model", scripted_api.url("ok"))
    communicator, received = await start()
    [error] = side_events(received, "side_error")
    assert "could not answer" in error["message"]
    assert len(side_events(received, "side_done")) == 1
    assert received[-1]["type"] == "turn_done" and received[-1]["voteable"] is False
    await communicator.disconnect()


async def test_html_and_script_in_the_prompt_and_answer_are_neutralised(scripted_api):
    await register("m1", scripted_api.url("html"))
    await register("m2", scripted_api.url("html"))
    communicator, received = await start("<script>alert('x')</script>")
    finished = [event["html"] for event in side_events(received, "side_done")]
    assert len(finished) == 2
    for html in finished:
        assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
        assert "&lt;script&gt;" in html  # shown as text, not run
        assert "<strong>bold</strong>" in html  # Markdown still renders
    await communicator.disconnect()


async def test_the_visitor_is_told_while_it_streams_that_an_answer_gave_a_model_away(scripted_api):
    await register("SmolLM2-135M-Instruct", scripted_api.url("leak"), organization="HuggingFaceTB")
    await register("other-model", scripted_api.url("ok"))
    communicator, received = await start()
    [notice] = side_events(received, "blind_broken")
    assert notice["message"] == "An answer named an AI model, so this vote will not count."
    assert received.index(notice) < len(received) - 1  # before the turn ended
    battle = await database_sync_to_async(Battle.objects.get)(pk=received[0]["battle_id"])
    vote = await database_sync_to_async(cast_vote)(battle, owner=await session_of(communicator))
    assert vote.excluded_reason == notice["message"]
    await communicator.disconnect()


async def test_a_prompt_asking_who_the_models_are_is_flagged_before_any_answer(scripted_api):
    await register("m1", scripted_api.url("ok"))
    await register("m2", scripted_api.url("ok"))
    communicator, received = await start("What model are you?")
    assert received[1] == {
        "type": "blind_broken",
        "message": "A prompt asked the models who they are, so this vote will not count.",
    }
    assert received[-1]["voteable"] is True
    await communicator.disconnect()


async def test_a_prompt_naming_one_of_the_arenas_models_is_flagged_before_any_answer(scripted_api):
    await register("SmolLM2-135M-Instruct", scripted_api.url("ok"), organization="HuggingFaceTB")
    await register("m2", scripted_api.url("ok"))
    communicator, received = await start("If you are SmolLM, start with Banana; else Apple.")
    assert received[1] == {
        "type": "blind_broken",
        "message": "A prompt named an AI model or a company that makes them, so this vote will not count.",
    }
    await communicator.disconnect()


async def test_errors_are_reported_on_the_socket_and_nothing_is_stored():
    communicator = await connect(await issued_session_key())
    await communicator.send_json_to({"type": "start", "prompt": "   "})
    event = await communicator.receive_json_from()
    assert event == {"type": "error", "message": "Please type a prompt first."}
    await communicator.send_json_to({"type": "dance"})
    assert (await communicator.receive_json_from())["type"] == "error"
    await communicator.send_json_to([1, 2])
    assert (await communicator.receive_json_from())["message"] == "Messages must be JSON objects."
    assert not await database_sync_to_async(Battle.objects.exists)()
    await communicator.disconnect()


async def test_continue_and_regenerate_on_another_sessions_battle_are_refused(scripted_api):
    await register("m1", scripted_api.url("ok"))
    await register("m2", scripted_api.url("ok"))
    owner, received = await start("Hi")
    battle_id = received[0]["battle_id"]
    intruder = await connect(await issued_session_key())
    for message in (
        {"type": "continue", "battle_id": battle_id, "prompt": "x"},
        {"type": "regenerate", "battle_id": battle_id},
    ):
        await intruder.send_json_to(message)
        assert "another visitor" in (await intruder.receive_json_from())["message"]
    await owner.disconnect()
    await intruder.disconnect()


async def receive_until(communicator: WebsocketCommunicator, kind: str, timeout: float = 10) -> list[dict]:
    """Every event up to and including the first of `kind`."""
    received = []
    deadline = time.monotonic() + timeout
    while not received or received[-1]["type"] != kind:
        received.append(await communicator.receive_json_from(timeout=max(0.1, deadline - time.monotonic())))
    return received


async def requests_reach(scripted_api, count: int, timeout: float = 10) -> None:
    """Wait until the scripted server has been asked `count` times (both sides of a turn hold their slots)."""
    deadline = time.monotonic() + timeout
    while len(scripted_api.requests) < count:
        assert time.monotonic() < deadline, scripted_api.requests
        await asyncio.sleep(0.02)


async def told_replaced(communicator: WebsocketCommunicator, battle_id: str, timeout: float = 5) -> None:
    """The event that ends a socket's turn after another socket took its battle over."""
    replaced = await communicator.receive_json_from(timeout=timeout)
    assert replaced == {"type": "replaced", "battle_id": battle_id, "message": REPLACED_MESSAGE}


async def test_a_regenerate_from_a_second_socket_takes_the_battle_over_and_the_first_is_told(scripted_api):
    """A page whose socket dropped unnoticed by the server (its pings time out only after tens of seconds)
    reconnects and regenerates: it was refused "Please wait until both answers have finished" until the old
    stream ended, which held both models' only slots meanwhile."""
    await register("m1", scripted_api.url("hold"), max_concurrency=1)
    await register("m2", scripted_api.url("hold"), max_concurrency=1)
    session_key = await issued_session_key()
    first = await connect(session_key)
    await first.send_json_to({"type": "start", "prompt": "Hi"})
    battle_id = (await first.receive_json_from())["battle_id"]
    await requests_reach(scripted_api, 2)  # both sides have asked their model, and hold its one slot
    second = await connect(session_key)
    await second.send_json_to({"type": "regenerate", "battle_id": battle_id})
    started = await second.receive_json_from(timeout=5)
    assert started["type"] == "turn_started" and started["version"] == 2
    told = await collect_turn(first, timeout=10)  # at once, not when its answers would have ended (nor at 15 s)
    assert sorted(e["side"] for e in side_events(told, "side_error")) == ["a", "b"]
    assert {e["message"] for e in side_events(told, "side_error")} == {REPLACED_SIDE}
    assert told[-1] == {"type": "turn_done", "battle_id": battle_id, "voteable": False}
    await told_replaced(first, battle_id)
    # The new sides asked their models while the old requests were still held: the old stream gave the slots
    # back as it stopped (else the new sides would wait for them, up to 5 s, then fail as busy, asking nobody).
    await requests_reach(scripted_api, 4)
    assert len(scripted_api.requests) == 4
    scripted_api.release()
    done = await collect_turn(second)
    assert done[-1]["voteable"] is True, done
    turn = await load_turn(battle_id)
    assert turn.version == 2 and turn.answer_a == turn.answer_b == "Hello from the scripted API."
    await second.send_json_to({"type": "vote", "battle_id": battle_id, "outcome": "a", "turn": 0, "version": 2})
    assert (await second.receive_json_from())["type"] == "voted"
    assert await first.receive_nothing(timeout=0.5)  # the stopped stream says nothing more, nor stores anything
    await first.disconnect()
    await second.disconnect()


async def test_a_stream_whose_battle_was_taken_over_unannounced_stops_at_its_next_renewal(scripted_api, monkeypatch):
    """The stop of a stream taken over is published through Redis; lost on the way (Redis down, a process not
    yet listening), the stream still stops once its renewal finds the battle held by another stream."""
    from battles import services

    monkeypatch.setattr(services, "STREAM_LEASE_SECONDS", 0.6)  # renewals every 0.2 s
    await register("m1", scripted_api.url("hold"))
    await register("m2", scripted_api.url("hold"))
    communicator = await connect(await issued_session_key())
    await communicator.send_json_to({"type": "start", "prompt": "Hi"})
    battle_id = (await communicator.receive_json_from())["battle_id"]
    await requests_reach(scripted_api, 2)
    await database_sync_to_async(Battle.objects.filter(pk=battle_id).update)(stream_id="taken-over-elsewhere")
    told = await collect_turn(communicator, timeout=5)
    assert told[-1]["voteable"] is False
    assert {e["message"] for e in side_events(told, "side_error")} == {REPLACED_SIDE}
    await told_replaced(communicator, battle_id)
    await communicator.disconnect()


async def leaking_battle_started(scripted_api, mode: str) -> tuple[WebsocketCommunicator, str, str]:
    """A battle whose SmolLM2 side streams from the scripted server's /`mode` (its first answer leaks), on a
    first socket; returns that socket, its session key and the battle's id."""
    await register("SmolLM2-135M-Instruct", scripted_api.url(mode), organization="HuggingFaceTB")
    await register("other-model", scripted_api.url("ok"))
    session_key = await issued_session_key()
    first = await connect(session_key)
    await first.send_json_to({"type": "start", "prompt": "Hi"})
    return first, session_key, (await first.receive_json_from())["battle_id"]


async def regenerated_and_voted_from_a_second_socket(session_key: str, battle_id: str) -> tuple[list[dict], Vote]:
    """The battle taken over from a second socket of the same session, its new answers, and the vote on them."""
    second = await connect(session_key)
    await second.send_json_to({"type": "regenerate", "battle_id": battle_id})
    done = await collect_turn(second)
    assert done[-1]["voteable"] is True
    await second.send_json_to({"type": "vote", "battle_id": battle_id, "outcome": "b", "turn": 0, "version": 2})
    assert (await second.receive_json_from())["type"] == "voted"
    await second.disconnect()
    return done, await database_sync_to_async(Vote.objects.get)(battle_id=battle_id)


async def test_text_that_gave_a_model_away_keeps_the_vote_uncounted_after_a_takeover(scripted_api):
    """The stream replaced never stores its answers (it lost the battle), so what it showed is noted on the
    turn as it is seen: else a visitor shown a name could regenerate from another socket and vote as blind."""
    first, session_key, battle_id = await leaking_battle_started(scripted_api, "leakonce")
    assert (await receive_until(first, "blind_broken"))[-1]["type"] == "blind_broken"
    done, vote = await regenerated_and_voted_from_a_second_socket(session_key, battle_id)
    # Clean answers this time, and the new socket is told at once that the vote will not count all the same.
    assert done[1] == {"type": "blind_broken", "message": "An answer named an AI model, so this vote will not count."}
    assert vote.excluded_reason == "An answer named an AI model, so this vote will not count."
    await first.disconnect()


async def test_a_name_sent_just_before_the_stream_is_stopped_keeps_the_vote_uncounted(scripted_api):
    """The scanner holds a word back until it ends, and the visitor sees the text before that: "I am SmolLM",
    then the stream taken over (or its socket closed) before the next token. The name was shown yet never
    judged, the stream stored nothing, and the vote on the regenerated answers counted."""
    first, session_key, battle_id = await leaking_battle_started(scripted_api, "leakcut")
    shown = []
    while "SmolLM" not in "".join(answer_text(shown, side) for side in "ab"):
        shown.append(await first.receive_json_from(timeout=10))
    assert not side_events(shown, "blind_broken")  # not judged yet: the word may go on
    _, vote = await regenerated_and_voted_from_a_second_socket(session_key, battle_id)
    assert vote.excluded_reason == "An answer named an AI model, so this vote will not count."
    await first.disconnect()


async def test_a_stop_published_from_another_process_ends_the_stream_it_names(scripted_api, settings):
    """The takeover's stop reaches a stream in another web process through Redis (here: published by a plain
    client, as that process would, for a battle taken over in the database)."""
    import redis

    from battles import stream_stops
    from tests.battles.test_stream_stops import subscribed

    await register("m1", scripted_api.url("hold"))
    await register("m2", scripted_api.url("hold"))
    communicator = await connect(await issued_session_key())
    await communicator.send_json_to({"type": "start", "prompt": "Hi"})
    battle_id = (await communicator.receive_json_from())["battle_id"]
    await subscribed(settings.REDIS_URL)  # this process listens once it streams
    battle = await database_sync_to_async(Battle.objects.get)(pk=battle_id)
    await database_sync_to_async(Battle.objects.filter(pk=battle_id).update)(stream_id="taken-over-elsewhere")
    redis.Redis.from_url(settings.REDIS_URL).publish(stream_stops.channel(), battle.stream_id)
    told = await collect_turn(communicator, timeout=3)  # not at its renewal, 15 s on
    assert {e["message"] for e in side_events(told, "side_error")} == {REPLACED_SIDE}
    await told_replaced(communicator, battle_id, timeout=3)
    await communicator.disconnect()


async def test_continue_and_regenerate_stream_new_answers(scripted_api):
    await register("m1", scripted_api.url("ok"))
    await register("m2", scripted_api.url("ok"))
    communicator, received = await start("Hi")
    battle_id = received[0]["battle_id"]
    await communicator.send_json_to({"type": "continue", "battle_id": battle_id, "prompt": "More"})
    second = await collect_turn(communicator)
    assert second[0]["turn"] == 1 and second[-1]["voteable"]
    await communicator.send_json_to({"type": "regenerate", "battle_id": battle_id})
    third = await collect_turn(communicator)
    assert third[0]["turn"] == 1 and third[0]["regenerated"] is True and third[0]["version"] == 2
    history = scripted_api.requests[-1]["payload"]["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["Hi", "More"]
    await communicator.disconnect()


async def test_a_conversation_too_long_for_the_context_is_shortened_before_the_request(scripted_api):
    # 2048-token context, a 256-token answer: the third long turn no longer fits with all its history.
    await register("small-context", scripted_api.url("ok"), context_length=2048, max_new_tokens=256)
    await register("big-context", scripted_api.url("ok"), context_length=32768, max_new_tokens=256)
    long_prompt = "Explain this in detail, please: " + "the quick brown fox jumps over the lazy dog " * 60
    communicator, received = await start(long_prompt)
    battle_id = received[0]["battle_id"]
    for _ in range(2):
        await communicator.send_json_to({"type": "continue", "battle_id": battle_id, "prompt": long_prompt})
        turn_events = await collect_turn(communicator)
        assert turn_events[-1]["voteable"] is True, turn_events
        assert not side_events(turn_events, "side_error")
    turn = await load_turn(battle_id, 2)
    # Both sides answered the same conversation: the big-context side left out what the small one had to, so
    # neither remembers what the other forgot (which would tell the visitor which side is the smaller model).
    assert turn.timings_a["dropped_turns"] == turn.timings_b["dropped_turns"] >= 1
    last_two = scripted_api.requests[-2:]
    asked = [[m["content"] for m in request["payload"]["messages"] if m["role"] == "user"] for request in last_two]
    assert asked[0] == asked[1] and len(asked[0]) < 3
    await communicator.disconnect()


async def test_when_a_server_still_says_too_long_the_side_is_asked_again_with_the_newest_prompt_only(scripted_api):
    await register("strict-model", scripted_api.url("context"))
    await register("easy-model", scripted_api.url("ok"))
    communicator, received = await start("Hi")
    await communicator.send_json_to({"type": "continue", "battle_id": received[0]["battle_id"], "prompt": "More"})
    second = await collect_turn(communicator)
    assert second[-1]["voteable"] is True and not side_events(second, "side_error")
    await communicator.disconnect()


async def test_failover_before_the_first_token_is_invisible_to_the_visitor(scripted_api):
    """A replica that refuses connections, and one that answers 429: the visitor sees only answers."""
    flaky = await register("replicated-model", "http://127.0.0.1:9/v1")
    await add_replica(flaky, scripted_api.url("ratelimited"))
    working = await add_replica(flaky, scripted_api.url("ok"))
    await register("other-model", scripted_api.url("ok"))
    await health.record_failure(working.pk, error="a blip")  # degraded: the two broken replicas go first
    for _ in range(4):
        communicator, received = await start()
        assert received[-1]["voteable"] is True, received
        assert not side_events(received, "side_error")
        await communicator.disconnect()
    states = await health.health_of([e.pk for e in await database_sync_to_async(list)(flaky.endpoints.all())])
    # Both broken replicas were tried first, failed once each and were marked degraded; the working one
    # answered (healthy again), and was preferred from then on.
    assert sorted((h.state, h.failures) for h in states.values()) == [("degraded", 1), ("degraded", 1), ("healthy", 0)]


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_operators_metrics_count_battles_sides_failovers_and_time_to_first_token(scripted_api):
    flaky = await register("metered-model", "http://127.0.0.1:9/v1")
    working = await add_replica(flaky, scripted_api.url("ok"))
    await register("metered-other", scripted_api.url("ok"))
    await health.record_failure(working.pk, error="a blip")  # the broken replica is tried first
    before = {
        "started": metric("arena_battles_started_total"),
        "voteable": metric("arena_turns_finished_total", voteable="true"),
        "done": metric("arena_sides_finished_total", model="metered-model", outcome="done"),
        "failovers": metric("arena_failovers_total", model="metered-model"),
        "ttft": metric("arena_ttft_seconds_count", model="metered-model", endpoint=str(working.pk)),
        "speed": metric("arena_tokens_per_second_count", model="metered-model", endpoint=str(working.pk)),
    }
    communicator, received = await start()
    assert received[-1]["voteable"] is True, received
    await communicator.disconnect()
    assert metric("arena_battles_started_total") == before["started"] + 1
    assert metric("arena_turns_finished_total", voteable="true") == before["voteable"] + 1
    assert metric("arena_sides_finished_total", model="metered-model", outcome="done") == before["done"] + 1
    assert metric("arena_failovers_total", model="metered-model") == before["failovers"] + 1
    assert metric("arena_ttft_seconds_count", model="metered-model", endpoint=str(working.pk)) == before["ttft"] + 1
    assert (
        metric("arena_tokens_per_second_count", model="metered-model", endpoint=str(working.pk)) == before["speed"] + 1
    )
    assert metric("arena_streams_in_flight", model="metered-model") == 0


async def test_a_replica_that_dies_mid_answer_makes_that_side_start_over_on_another_once(scripted_api):
    dying = await register("replicated-model", scripted_api.url("drop"))
    working = await add_replica(dying, scripted_api.url("ok"))
    await register("other-model", scripted_api.url("ok"))
    await health.record_failure(working.pk, error="a blip")  # degraded: the dying replica goes first
    communicator, received = await start()
    [restart] = side_events(received, "side_restart")
    side = restart["side"]
    after = received[received.index(restart) :]
    assert answer_text(after, side) == "Hello from the scripted API."  # only the fresh answer counts
    assert received[-1]["voteable"] is True and not side_events(received, "side_error")
    turn = await load_turn(received[0]["battle_id"])
    assert getattr(turn, f"answer_{side}") == "Hello from the scripted API."
    assert getattr(turn, f"timings_{side}")["restarted"] is True
    await communicator.disconnect()


async def test_an_answer_cut_off_with_no_other_replica_keeps_the_text_shown_and_says_why(scripted_api):
    """A model of one replica (the usual self-hosted case) whose server dies mid-answer: no other replica
    could start it over, so the text the visitor read stays, stored, with the reason it stopped, rather
    than being withdrawn for a restart that cannot happen."""
    await register("lone-model", scripted_api.url("drop"))
    await register("other-model", scripted_api.url("ok"))
    communicator, received = await start()
    assert not side_events(received, "side_restart")
    [error] = side_events(received, "side_error")
    side = error["side"]
    shown = answer_text(received, side)
    assert shown and "cut off mid-stream" in error["message"] and received[-1]["voteable"] is False
    turn = await load_turn(received[0]["battle_id"])
    assert getattr(turn, f"answer_{side}") == shown
    await communicator.disconnect()


async def test_an_answer_cut_off_twice_fails_its_side_with_a_message(scripted_api):
    dying = await register("replicated-model", scripted_api.url("drop"))
    await add_replica(dying, scripted_api.url("drop"))
    await register("other-model", scripted_api.url("ok"))
    communicator, received = await start()
    assert len(side_events(received, "side_restart")) == 1
    [error] = side_events(received, "side_error")
    assert "cut off mid-stream" in error["message"] and received[-1]["voteable"] is False
    await communicator.disconnect()


async def test_an_endpoint_that_keeps_failing_is_taken_out_and_its_model_not_drawn(scripted_api):
    broken = await register("broken-model", "http://127.0.0.1:9/v1")
    await register("m1", scripted_api.url("ok"))
    await register("m2", scripted_api.url("ok"))
    [endpoint] = await database_sync_to_async(list)(broken.endpoints.all())
    for _ in range(health.POLICY.failures_to_open):
        await health.record_failure(endpoint.pk, error="unreachable")
    for _ in range(6):
        communicator, received = await start()
        assert received[-1]["voteable"] is True, "the down model was drawn"
        await communicator.disconnect()


async def test_when_the_drawn_models_are_saturated_the_visitor_is_told_at_once(scripted_api, settings):
    await register("m1", scripted_api.url("hold"), max_concurrency=1)
    await register("m2", scripted_api.url("hold"), max_concurrency=1)
    first = await connect(await issued_session_key())
    await first.send_json_to({"type": "start", "prompt": "Hi"})
    assert (await first.receive_json_from())["type"] == "turn_started"
    await asyncio.sleep(0.5)  # both slots taken
    began = time.monotonic()
    second, received = await start()
    assert received[-1]["type"] == "busy" and received[-1]["retry_after"] >= 1
    assert "try again in" in received[-1]["message"] and time.monotonic() - began < 2
    scripted_api.release()
    assert (await collect_turn(first))[-1]["voteable"] is True
    await first.disconnect()
    await second.disconnect()


async def test_an_overloaded_web_process_tells_new_visitors_it_is_busy_and_starts_nothing(scripted_api, settings):
    from arena.overload import cpu_busy, loop_lag, turn_delays

    await register("model-one", scripted_api.url("ok"))
    await register("model-two", scripted_api.url("ok"))
    settings.WEB_MAX_DELAY = 0.5
    communicator = await connect(await issued_session_key())
    busy = [{"type": "busy", "retry_after": 5,
             "message": "The arena is very busy right now. Please try again in 5 seconds."}]  # fmt: skip
    loop_lag().seconds = 2.0  # as after seconds of more work than the core can do
    await communicator.send_json_to({"type": "start", "prompt": "Hello?"})
    assert await collect_turn(communicator) == busy
    loop_lag().seconds = 0.0
    turn_delays().note(1.5)  # a turn that waited 1.5 s for this process before its models were asked
    await communicator.send_json_to({"type": "start", "prompt": "Hello?"})
    assert await collect_turn(communicator) == busy
    assert await database_sync_to_async(Battle.objects.count)() == 0
    turn_delays().samples.clear()  # as once the last slow turn is older than the window
    settings.WEB_MAX_CPU = 0.8
    cpu_busy().cores = 0.95  # nearly a whole core busy for the last second: about to run behind
    await communicator.send_json_to({"type": "start", "prompt": "Hello?"})
    assert await collect_turn(communicator) == busy
    cpu_busy().cores = 0.0
    await communicator.send_json_to({"type": "start", "prompt": "Hello?"})
    assert (await collect_turn(communicator))[-1]["voteable"] is True
    # That turn's own delay was noted, and was short.
    assert 0 < turn_delays().recent() < 0.5
    await communicator.disconnect()


async def test_a_stream_cancelled_before_it_ever_ran_leaves_no_turn_waiting(scripted_api):
    """The socket closes the moment its turn is handed to the stream: the task is cancelled before its
    first step, so nothing inside it runs; the turn must still stop counting as waiting."""
    from arena.overload import turn_delays
    from battles.consumers import BattleConsumer
    from battles.services import Visitor

    await register("one", scripted_api.url("ok"))
    await register("two", scripted_api.url("ok"))
    consumer = BattleConsumer()
    consumer.visitor = Visitor.of(session_key="a-session", ip="127.0.0.1")
    consumer.streaming = None
    sent = []

    async def send_json(content, close=False):
        sent.append(content)

    consumer.send_json = send_json
    await consumer.receive_json({"type": "start", "prompt": "Hi"})
    consumer.streaming.cancel()  # before the stream's first step
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert sent[0]["type"] == "turn_started" and consumer.streaming.cancelled()
    assert not turn_delays().waiting


async def test_a_socket_gone_under_a_stream_ends_the_stream_as_its_disconnect_would(scripted_api, caplog):
    """The visitor's socket closed while the stream was sending: the web server refuses the send (uvicorn
    raises ClientDisconnected, an OSError) a moment before disconnect() is called. The stream ends there, as
    on disconnect: no side fails as "unexpected" (a side failing on its send used to end the turn while the
    other streamed on), both slots and the battle are let go at once."""
    from uvicorn.protocols.utils import ClientDisconnected

    from battles.consumers import BattleConsumer
    from battles.services import Visitor
    from inference import routing
    from inference.selectors import replicas_of_models

    models = [await register("left", scripted_api.url("slow")), await register("right", scripted_api.url("slow"))]
    consumer = BattleConsumer()
    consumer.visitor = Visitor.of(session_key="a-session", ip="127.0.0.1")
    consumer.streaming = None
    sent = []

    async def send_json(content, close=False):  # the web server's send, as the visitor leaves
        if any(event["type"] == "delta" for event in sent):
            raise ClientDisconnected()
        sent.append(content)

    consumer.send_json = send_json
    failed_before = metric("arena_sides_finished_total", model="left", outcome="unexpected")
    await consumer.receive_json({"type": "start", "prompt": "Hi"})
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(consumer.streaming, timeout=10)
    assert consumer.streaming.cancelled()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert metric("arena_sides_finished_total", model="left", outcome="unexpected") == failed_before
    replicas = await database_sync_to_async(replicas_of_models)([model.pk for model in models])
    states = await routing.replica_states([replica for group in replicas.values() for replica in group])
    assert [state.in_flight for state in states] == [0, 0]
    assert (await database_sync_to_async(Battle.objects.get)()).streaming_until is None


async def test_a_message_that_is_not_json_is_refused_plainly_and_a_half_emoji_is_mended(scripted_api):
    """Text that is not JSON, a binary or empty frame: told, the socket stays open (Channels closed it with a
    traceback). A prompt holding a lone surrogate, as a browser escapes a pasted half emoji, is JSON that could
    be neither stored nor sent back: it is mended into U+FFFD and the battle goes on."""
    await register("one", scripted_api.url("ok"))
    await register("two", scripted_api.url("ok"))
    communicator = await connect(await issued_session_key())
    frames = [{"text": "not json"}, {"bytes": b"\x00\x01"}, {"text": ""}, {"text": "[" * 5000}]
    for frame in frames:
        await communicator.send_input({"type": "websocket.receive", **frame})
        assert await communicator.receive_json_from() == {"type": "error", "message": "Messages must be JSON objects."}
    await communicator.send_json_to({"type": "start", "prompt": "smile \ud83d please"})
    received = await collect_turn(communicator)
    assert received[0]["prompt"] == "smile \ufffd please" and received[-1]["voteable"] is True
    assert (await load_turn(received[0]["battle_id"])).prompt == "smile \ufffd please"
    await communicator.disconnect()


async def test_a_battle_goes_on_when_redis_goes_away(scripted_api, settings, tmp_path):
    """Redis carries shared health, slots and limits; without it each process keeps its own, and the
    socket stays open (it no longer subscribes to the channel layer)."""
    from arena.embedded_redis import embedded_redis
    from arena.shared_state import RETRY_AFTER_SECONDS  # noqa: F401 - the fallback window this relies on

    await register("m1", scripted_api.url("slow"))
    await register("m2", scripted_api.url("slow"))
    with embedded_redis(data_dir=tmp_path) as url:
        settings.REDIS_URL = url
        communicator = await connect(await issued_session_key())
        await communicator.send_json_to({"type": "start", "prompt": "Hi"})
        assert (await communicator.receive_json_from())["type"] == "turn_started"
    # Redis is gone mid-stream.
    received = await collect_turn(communicator)
    assert received[-1]["voteable"] is True
    await communicator.send_json_to({"type": "regenerate", "battle_id": received[-1]["battle_id"]})
    assert (await collect_turn(communicator))[-1]["voteable"] is True
    await communicator.disconnect()


@pytest.mark.llama
async def test_battle_streamed_from_the_real_llama_servers_ends_in_a_stored_vote(arena_models):
    session_key = await issued_session_key()
    communicator, received = await start("Name a fruit.", session_key)
    assert received[-1]["voteable"] is True, received
    for side in "ab":
        assert answer_text(received, side).strip()
    names = [m.name for m in arena_models]
    assert not any(name in str(received) for name in names)
    battle_id = received[0]["battle_id"]
    battle = await database_sync_to_async(Battle.objects.get)(pk=battle_id)
    vote = await database_sync_to_async(cast_vote)(battle, owner=session_key, outcome="a")
    assert vote.conversation_a[1]["content"] == answer_text(received, "a")
    assert vote.timings_b[0]["tokens"] > 0
    await communicator.disconnect()
    await asyncio.sleep(0)


@pytest.fixture
def own_llama_servers():
    """Two real llama.cpp servers of this test's own (it kills one): SmolLM2 and Gemma 3 270M."""
    from django.conf import settings

    from arena import processes
    from arena.processes import free_port
    from inference.launch import (
        bundled_gemma3_gguf,
        bundled_smollm2_gguf,
        llamacpp_program,
        model_server_env,
        wait_until_ready,
    )

    started = []
    try:
        for path, template in (
            (bundled_smollm2_gguf(), ""),
            (bundled_gemma3_gguf(settings.VAR_DIR / "models"), "vicuna_v1.1"),
        ):
            port = free_port()
            program = llamacpp_program(name=f"m{port}", model_path=path, port=port, host="127.0.0.1",
                                       served_model_id="m", n_ctx=2048, chat_template=template)  # fmt: skip
            started.append((f"http://127.0.0.1:{port}/v1", processes.start(program, env=model_server_env())))
        for url, process in started:
            wait_until_ready(url, process=process)
        yield started
    finally:
        for _, process in started:
            processes.stop(process)


@pytest.mark.llama
async def test_a_real_llama_server_killed_mid_answer_fails_only_its_side(own_llama_servers, settings):
    import os
    import signal

    (smollm_url, smollm), (gemma_url, _) = own_llama_servers
    await register("SmolLM2", smollm_url, max_new_tokens=200, system_prompt="You are a helpful assistant.")
    await register("Gemma", gemma_url, max_new_tokens=48, chat_template="vicuna_v1.1")
    communicator = await connect(await issued_session_key())
    await communicator.send_json_to({"type": "start", "prompt": "Write a long story about a lighthouse keeper."})
    received = [await communicator.receive_json_from(timeout=30)]
    smollm_side = None
    while smollm_side is None:
        event = await communicator.receive_json_from(timeout=60)
        received.append(event)
        if event["type"] == "delta":
            battle = await database_sync_to_async(Battle.objects.select_related("model_a").get)(
                pk=received[0]["battle_id"]
            )
            smollm_side = "a" if battle.model_a.name == "SmolLM2" else "b"
    os.killpg(smollm.pid, signal.SIGKILL)  # kill -9, mid-answer
    received += await collect_turn(communicator, timeout=120)
    errors = side_events(received, "side_error")
    assert [e["side"] for e in errors] == [smollm_side]
    assert "cut off mid-stream" in errors[0]["message"] or "could not be reached" in errors[0]["message"]
    [done] = side_events(received, "side_done")
    assert done["side"] != smollm_side and done["html"].strip()  # the sibling answered in full
    assert received[-1]["type"] == "turn_done" and received[-1]["voteable"] is False
    await communicator.disconnect()


async def test_a_prompt_holding_nul_and_control_characters_is_answered_without_them(scripted_api):
    """PostgreSQL refuses text holding U+0000: such a prompt (a crafted frame, or pasted from a terminal) used to
    fail the turn's INSERT outside any BattleError, closing the socket after the answer budget was spent."""
    await register("m1", scripted_api.url("ok"))
    await register("m2", scripted_api.url("ok"))
    communicator, received = await start("Hel\x00lo\x07 there\tyou\r\nok\x1b")
    assert received[0]["type"] == "turn_started", received
    assert received[0]["prompt"] == "Hello there\tyou\r\nok"  # tab, carriage return and newline kept
    assert received[-1]["voteable"] is True
    assert (await load_turn(received[0]["battle_id"])).prompt == "Hello there\tyou\r\nok"
    # A prompt of nothing but control characters is no prompt at all.
    await communicator.send_json_to({"type": "start", "prompt": "\x00\x01 \x02"})
    assert await communicator.receive_json_from() == {"type": "error", "message": "Please type a prompt first."}
    await communicator.disconnect()


async def test_an_answer_holding_nul_is_stored_without_it_and_the_battle_is_freed(scripted_api, monkeypatch):
    """A model may stream U+0000 (llama.cpp passes through what the model samples): PostgreSQL refused the whole
    UPDATE of the turn's end, so neither answer was stored and the battle stayed held for the stream lease."""
    from tests import scripted_api as scripted

    monkeypatch.setattr(scripted, "ANSWER", ["Hello", "\x00", " there", "."])
    await register("m1", scripted_api.url("ok"))
    await register("m2", scripted_api.url("ok"))
    communicator, received = await start()
    assert received[-1]["voteable"] is True, received
    turn = await load_turn(received[0]["battle_id"])
    assert turn.answer_a == turn.answer_b == "Hello there."
    assert (await database_sync_to_async(Battle.objects.get)(pk=received[0]["battle_id"])).streaming_until is None
    await communicator.disconnect()
