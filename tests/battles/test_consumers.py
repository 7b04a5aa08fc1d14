"""The battle socket, driven through the real ASGI application with WebsocketCommunicator."""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore

from arena.asgi import application
from battles.models import Battle, Turn
from battles.services import vote_record
from tests.factories import make_model

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def new_session_key() -> str:
    session = SessionStore()
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
    """Every event up to and including turn_done (or an error)."""
    received = []
    deadline = time.monotonic() + timeout
    while True:
        event = await communicator.receive_json_from(timeout=max(0.1, deadline - time.monotonic()))
        received.append(event)
        if event["type"] in {"turn_done", "error"}:
            return received


def answer_text(received: list[dict], side: str) -> str:
    return "".join(e["text"] for e in received if e["type"] == "delta" and e["side"] == side)


@database_sync_to_async
def register(name: str, base_url: str):
    return make_model(name, base_url=base_url)


@database_sync_to_async
def load_turn(battle_id) -> Turn:
    return Turn.objects.get(battle_id=battle_id, index=0)


async def test_socket_without_a_session_is_refused():
    communicator = WebsocketCommunicator(
        application, "/ws/battle/", headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_both_answers_stream_and_are_stored_without_naming_a_model(scripted_api):
    await register("model-left-secret", scripted_api.url("ok"))
    await register("model-right-secret", scripted_api.url("ok"))
    communicator = await connect(await new_session_key())
    await communicator.send_json_to({"type": "start", "prompt": "Hello?"})
    received = await collect_turn(communicator)
    assert received[0]["type"] == "turn_started"
    assert answer_text(received, "a") == answer_text(received, "b") == "Hello from the scripted API."
    assert received[-1] == {"type": "turn_done", "battle_id": received[0]["battle_id"], "voteable": True}
    assert "secret" not in str(received) and "127.0.0.1" not in str(received)
    turn = await load_turn(received[0]["battle_id"])
    assert turn.answer_a == "Hello from the scripted API." and turn.status_b == Turn.Status.DONE
    assert turn.timings_a["tokens"] == 6 and turn.timings_a["ttft"] is not None
    await communicator.disconnect()


async def test_one_endpoint_down_fails_only_its_own_side(scripted_api):
    await register("up-model", scripted_api.url("ok"))
    await register("down-model", "http://127.0.0.1:9/v1")
    communicator = await connect(await new_session_key())
    await communicator.send_json_to({"type": "start", "prompt": "Hello?"})
    received = await collect_turn(communicator)
    errors = [e for e in received if e["type"] == "side_error"]
    done = [e for e in received if e["type"] == "side_done"]
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
    communicator = await connect(await new_session_key())
    started = time.monotonic()
    await communicator.send_json_to({"type": "start", "prompt": "Hello?"})
    received = await collect_turn(communicator)
    first_done = next(i for i, e in enumerate(received) if e["type"] == "side_done")
    first_error = next(i for i, e in enumerate(received) if e["type"] == "side_error")
    assert first_done < first_error, "the quick side finished before the hung one timed out"
    assert "did not answer in time" in received[first_error]["message"]
    assert time.monotonic() - started < 10
    await communicator.disconnect()


async def test_html_and_script_in_the_prompt_and_answer_are_neutralised(scripted_api):
    await register("m1", scripted_api.url("ok"))
    await register("m2", scripted_api.url("ok"))
    communicator = await connect(await new_session_key())
    await communicator.send_json_to({"type": "start", "prompt": "<script>alert('x')</script>"})
    received = await collect_turn(communicator)
    for event in received:
        if event["type"] == "side_done":
            assert "<script" not in event["html"]
    await communicator.disconnect()


async def test_errors_are_reported_on_the_socket_and_nothing_is_stored():
    communicator = await connect(await new_session_key())
    await communicator.send_json_to({"type": "start", "prompt": "   "})
    event = await communicator.receive_json_from()
    assert event == {"type": "error", "message": "Please type a prompt first."}
    await communicator.send_json_to({"type": "dance"})
    assert (await communicator.receive_json_from())["type"] == "error"
    assert not await database_sync_to_async(Battle.objects.exists)()
    await communicator.disconnect()


async def test_continue_and_regenerate_on_another_sessions_battle_are_refused(scripted_api):
    await register("m1", scripted_api.url("ok"))
    await register("m2", scripted_api.url("ok"))
    owner = await connect(await new_session_key())
    await owner.send_json_to({"type": "start", "prompt": "Hi"})
    battle_id = (await collect_turn(owner))[0]["battle_id"]
    intruder = await connect(await new_session_key())
    for message in (
        {"type": "continue", "battle_id": battle_id, "prompt": "x"},
        {"type": "regenerate", "battle_id": battle_id},
    ):
        await intruder.send_json_to(message)
        assert "another visitor" in (await intruder.receive_json_from())["message"]
    await owner.disconnect()
    await intruder.disconnect()


async def test_continue_and_regenerate_stream_new_answers(scripted_api):
    await register("m1", scripted_api.url("ok"))
    await register("m2", scripted_api.url("ok"))
    communicator = await connect(await new_session_key())
    await communicator.send_json_to({"type": "start", "prompt": "Hi"})
    battle_id = (await collect_turn(communicator))[0]["battle_id"]
    await communicator.send_json_to({"type": "continue", "battle_id": battle_id, "prompt": "More"})
    second = await collect_turn(communicator)
    assert second[0]["turn"] == 1 and second[-1]["voteable"]
    await communicator.send_json_to({"type": "regenerate", "battle_id": battle_id})
    third = await collect_turn(communicator)
    assert third[0]["turn"] == 1 and third[0]["regenerated"] is True
    history = scripted_api.requests[-1]["payload"]["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["Hi", "More"]
    await communicator.disconnect()


@pytest.mark.llama
async def test_battle_streamed_from_the_real_llama_server_ends_in_a_stored_vote(arena_models):
    session_key = await new_session_key()
    communicator = await connect(session_key)
    await communicator.send_json_to({"type": "start", "prompt": "Name a fruit."})
    received = await collect_turn(communicator, timeout=120)
    assert received[-1]["voteable"] is True, received
    for side in "ab":
        assert answer_text(received, side).strip()
        assert sum(1 for e in received if e["type"] == "delta" and e["side"] == side) > 1
    names = [m.name for m in arena_models]
    assert not any(name in str(received) for name in names)
    battle_id = received[0]["battle_id"]
    vote = await database_sync_to_async(vote_record)(battle_id=battle_id, session_key=session_key, outcome="a")
    assert vote.conversation_a[1]["content"] == answer_text(received, "a")
    assert vote.timings_b[0]["tokens"] > 0
    await communicator.disconnect()
    await asyncio.sleep(0)
