"""Parts of the streaming of a turn that the socket tests do not pin down on their own: the frame timer
of the delta coalescer, a new battle's plan made without reading it back, and the stream's hold on its
battle while a long answer runs."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from battles import services
from battles.models import Battle
from battles.streaming import DeltaCoalescer, turn_plan, turn_plan_of
from tests import factories
from tests.battles.test_consumers import collect_turn, connect, issued_session_key, register


async def test_text_that_arrives_between_frames_goes_out_when_the_interval_is_up_without_a_next_token():
    sent = []

    async def send(event):
        sent.append((asyncio.get_running_loop().time(), event))

    coalescer = DeltaCoalescer(send, interval=lambda: 0.1)
    await coalescer.push("a", "Hello")  # the first piece goes out at once
    await coalescer.push("a", " there")  # within the interval: held back...
    assert [event["text"] for _, event in sent] == [{"a": "Hello"}]
    await asyncio.sleep(0.25)  # ...and sent when the interval is up, though no token came after it
    assert [event["text"] for _, event in sent] == [{"a": "Hello"}, {"a": " there"}]
    assert sent[1][0] - sent[0][0] == pytest.approx(0.1, abs=0.05)
    await coalescer.close()


async def test_both_sides_share_a_frame_but_neither_side_waits_for_its_first_piece():
    sent = []

    async def send(event):
        sent.append(event["text"])

    coalescer = DeltaCoalescer(send, interval=lambda: 10)
    await coalescer.push("a", "A1")
    await coalescer.push("a", "A2")  # held back
    await coalescer.push("b", "B1")  # b's first piece goes at once, with what a had waiting
    await coalescer.push("a", "A3")
    await coalescer.push("b", "B2")
    assert sent == [{"a": "A1"}, {"a": "A2", "b": "B1"}]
    await coalescer.flush()  # a side's end: everything held goes out, one frame for both sides
    assert sent[-1] == {"a": "A3", "b": "B2"}
    await coalescer.close()
    assert len(sent) == 3


async def test_a_busy_process_stretches_the_interval_between_frames():
    sent = []

    async def send(event):
        sent.append((asyncio.get_running_loop().time(), event["text"]))

    interval = [0.05]
    coalescer = DeltaCoalescer(send, interval=lambda: interval[0])
    await coalescer.push("a", "A1")
    interval[0] = 0.3  # the process got busy
    await asyncio.sleep(0.1)
    await coalescer.push("a", "A2")  # 0.1 s after the last frame: held back now...
    assert [text for _, text in sent] == [{"a": "A1"}]
    await asyncio.sleep(0.35)  # ...until the longer interval is up
    assert [text for _, text in sent] == [{"a": "A1"}, {"a": "A2"}]
    assert sent[1][0] - sent[0][0] == pytest.approx(0.3, abs=0.08)
    await coalescer.close()


@pytest.mark.django_db
def test_a_new_battles_plan_made_from_what_the_start_wrote_is_the_plan_read_back(django_assert_num_queries):
    factories.make_model("planned-a", system_prompt="You are terse.", temperature=0.2, max_new_tokens=64)
    factories.make_model("planned-b", chat_template="vicuna_v1.1", top_p=0.9)
    stream = services.battle_start(visitor=factories.visitor(), prompt="What is a haiku?")
    planned = turn_plan_of(stream.turn, [stream.turn])
    assert planned == turn_plan(stream.turn_id)
    messages = {side.model_name: side.messages for side in planned.sides}
    assert messages["planned-a"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is a haiku?"},
    ]
    assert messages["planned-b"] == [{"role": "user", "content": "What is a haiku?"}]
    with django_assert_num_queries(0):  # the fleet's views are warm: no query of its own
        turn_plan_of(stream.turn, [stream.turn])


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("pooled_http_closed")
async def test_a_long_answer_keeps_renewing_its_hold_on_the_battle(scripted_api, monkeypatch):
    """The hold lapses on its own after STREAM_LEASE_SECONDS (a crashed process frees its battles); a stream
    that runs longer renews it, so nobody can take over or vote on the battle meanwhile."""
    monkeypatch.setattr(services, "STREAM_LEASE_SECONDS", 0.6)
    await register("m1", scripted_api.url("hold"))
    await register("m2", scripted_api.url("hold"))
    communicator = await connect(await issued_session_key())
    await communicator.send_json_to({"type": "start", "prompt": "Hi"})
    battle_id = (await communicator.receive_json_from())["battle_id"]
    first = (await database_sync_to_async(Battle.objects.get)(pk=battle_id)).streaming_until
    await asyncio.sleep(1.0)  # longer than the lease: only renewals keep it ahead
    later = (await database_sync_to_async(Battle.objects.get)(pk=battle_id)).streaming_until
    assert later > first
    scripted_api.release()
    assert (await collect_turn(communicator))[-1]["voteable"] is True
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_stop_that_lands_while_a_failed_turn_says_so_still_ends_the_turn(monkeypatch):
    """A turn that could not be planned tells the visitor both sides failed; a takeover's stop landing during
    those sends escaped as a cancellation, and the page was never told the turn was over (busy for good)."""
    from battles import stream_stops, streaming

    battle = await database_sync_to_async(factories.make_battle)(owner="owner")
    started = await database_sync_to_async(services.turn_regenerate)(
        battle_id=battle.pk, visitor=factories.visitor("owner")
    )

    def unplannable(turn_id):
        raise RuntimeError("the fleet could not be read")

    monkeypatch.setattr(streaming, "turn_plan", unplannable)
    sent = []

    async def send(event):
        sent.append(event)
        if len(sent) == 1:  # the takeover's stop arrives as the first failure goes out
            stream_stops.stop_here(started.stream_id)
            await asyncio.sleep(0)

    voteable = await streaming.turn_answer_both(turn_id=started.turn_id, stream_id=started.stream_id, send=send)
    assert voteable is False
    assert sent[-2] == {"type": "turn_done", "battle_id": str(battle.pk), "voteable": False}
    assert sent[-1] == {"type": "replaced", "battle_id": str(battle.pk), "message": streaming.REPLACED_MESSAGE}
