import asyncio
import time

import orjson
import pytest

from inference.client import (
    ChatTarget,
    InferenceError,
    Limits,
    StreamStats,
    _event_texts,
    complete_chat,
    list_models,
    pooled_client,
    stream_chat,
)

pytestmark = pytest.mark.usefixtures("pooled_http_closed")

HELLO = [{"role": "user", "content": "Hi"}]


async def collect(target: ChatTarget, messages=HELLO, **kwargs) -> tuple[list[str], StreamStats]:
    pieces: list[str] = []

    async def on_text(text: str) -> None:
        pieces.append(text)

    stats = StreamStats()
    try:
        await stream_chat(target, messages, on_text=on_text, stats=stats, **kwargs)
    except InferenceError as exc:
        exc.pieces = pieces
        raise
    return pieces, stats


async def test_a_redirect_is_not_followed_by_a_chat_or_a_probe(scripted_api):
    """A registered provider's domain that redirects (a 307 keeps the POST and its body) had the arena ask
    whatever address it named, internal ones too, and show an admin a part of the answer."""
    target = ChatTarget(scripted_api.url("redirect"), "m", api_key="k")
    with pytest.raises(InferenceError) as chat:
        await collect(target)
    with pytest.raises(InferenceError) as probe:
        await list_models(target)
    assert chat.value.kind == "http 307" and probe.value.kind == "http 302"
    assert "redirects are not followed" in str(chat.value)
    assert [request["mode"] for request in scripted_api.requests] == ["redirect", "redirect"]  # nothing after


async def test_stream_hands_over_pieces_in_order_and_records_timings(scripted_api):
    pieces, stats = await collect(ChatTarget(scripted_api.url("ok"), "m"))
    assert "".join(pieces) == "Hello from the scripted API."
    timings = stats.as_dict()
    assert timings["tokens"] == 6
    assert timings["finish_reason"] == "stop"
    assert 0 <= timings["ttft"] <= timings["total"]


async def test_request_carries_model_sampling_stops_and_bearer_key(scripted_api):
    await complete_chat(
        ChatTarget(scripted_api.url("ok"), "served-id", api_key="sk-secret"), HELLO, temperature=0.3, max_tokens=7,
        stop=["</s>", "USER:"],
    )  # fmt: skip
    sent = scripted_api.requests[-1]
    assert sent["auth"] == "Bearer sk-secret"
    assert sent["payload"]["model"] == "served-id"
    assert sent["payload"]["temperature"] == 0.3
    assert sent["payload"]["max_tokens"] == 7
    assert sent["payload"]["stop"] == ["</s>", "USER:"]
    assert sent["payload"]["stream"] is True


async def test_one_pooled_client_per_event_loop_serves_every_stream(scripted_api):
    first = pooled_client()
    await complete_chat(ChatTarget(scripted_api.url("ok"), "m"), HELLO)
    await complete_chat(ChatTarget(scripted_api.url("ok"), "m"), HELLO)
    assert pooled_client() is first


@pytest.mark.parametrize("mode, kind", [("error", "http 500"), ("ratelimited", "http 429")])
async def test_http_errors_are_reported_with_their_status_and_are_worth_another_replica(scripted_api, mode, kind):
    with pytest.raises(InferenceError) as caught:
        await complete_chat(ChatTarget(scripted_api.url(mode), "m"), HELLO)
    assert caught.value.kind == kind and caught.value.worth_another_replica


async def test_a_too_long_conversation_is_its_own_kind_and_says_nothing_about_the_endpoints_health(scripted_api):
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    with pytest.raises(InferenceError) as caught:
        await complete_chat(ChatTarget(scripted_api.url("context"), "m"), messages)
    assert caught.value.kind == "context" and not caught.value.endpoint_at_fault


async def test_hanging_server_hits_the_idle_timeout(scripted_api):
    with pytest.raises(InferenceError) as caught:
        await asyncio.wait_for(
            complete_chat(ChatTarget(scripted_api.url("hang"), "m"), HELLO, limits=Limits(idle=0.5)), 10
        )
    assert caught.value.kind == "timeout"


async def test_keep_alive_comments_do_not_keep_an_answer_alive_past_its_deadlines(scripted_api):
    for limits in (Limits(idle=0.8, answer=60), Limits(idle=60, answer=0.8)):
        began = time.monotonic()
        with pytest.raises(InferenceError) as caught:
            await complete_chat(ChatTarget(scripted_api.url("keepalive"), "m"), HELLO, limits=limits)
        assert caught.value.kind == "timeout" and time.monotonic() - began < 3


async def test_the_answer_deadline_bounds_a_steadily_streaming_answer(scripted_api):
    with pytest.raises(InferenceError, match="whole answer") as caught:
        await collect(ChatTarget(scripted_api.url("slow"), "m"), limits=Limits(idle=5, answer=1.0))
    text = "".join(caught.value.pieces)
    assert caught.value.kind == "timeout" and text and text != "Hello from the scripted API."


async def test_a_chunk_that_is_json_but_not_an_object_is_a_bad_response_not_a_crash(scripted_api):
    with pytest.raises(InferenceError) as caught:
        await collect(ChatTarget(scripted_api.url("notobject"), "m"))
    assert caught.value.kind == "bad response" and caught.value.pieces == ["Hello"]


async def test_a_line_too_long_to_read_is_a_bad_response(scripted_api):
    with pytest.raises(InferenceError) as caught:
        await collect(ChatTarget(scripted_api.url("longline"), "m"))
    assert caught.value.kind == "bad response" and caught.value.pieces == ["Hello"]


async def test_stream_dropped_mid_answer_is_an_error(scripted_api):
    with pytest.raises(InferenceError) as caught:
        await collect(ChatTarget(scripted_api.url("drop"), "m"))
    assert caught.value.kind == "dropped"
    assert "".join(caught.value.pieces) == "Hello from the"


async def test_a_paced_reader_takes_the_tokens_that_arrived_meanwhile_in_one_read(scripted_api):
    arrivals = []

    async def on_text(text: str) -> None:
        arrivals.append((time.monotonic(), text))

    # Six tokens 0.4 s apart: read as they come, six reads; left unread 0.9 s after each read, fewer.
    await stream_chat(ChatTarget(scripted_api.url("slow"), "m"), HELLO, on_text=on_text, read_every=lambda: 0.9)
    assert "".join(text for _, text in arrivals) == "Hello from the scripted API."
    assert len(arrivals) <= 4  # one piece per read


async def test_a_paced_stream_dropped_mid_answer_is_still_an_error(scripted_api):
    with pytest.raises(InferenceError) as caught:
        await collect(ChatTarget(scripted_api.url("drop"), "m"), read_every=lambda: 0.3)
    assert caught.value.kind == "dropped"
    assert "".join(caught.value.pieces) == "Hello from the"


async def test_stream_closed_without_finish_is_an_error(scripted_api):
    with pytest.raises(InferenceError) as caught:
        await complete_chat(ChatTarget(scripted_api.url("nofinish"), "m"), HELLO)
    assert caught.value.kind == "dropped"


async def test_unreachable_endpoint_is_reported():
    with pytest.raises(InferenceError) as caught:
        await complete_chat(ChatTarget("http://127.0.0.1:9/v1", "m"), HELLO, limits=Limits(connect=1))
    assert caught.value.kind == "unreachable" and caught.value.worth_another_replica


async def test_the_models_list_is_the_cheap_probe(scripted_api):
    assert await list_models(ChatTarget(scripted_api.url("ok"), "m")) == ["scripted"]
    with pytest.raises(InferenceError):
        await list_models(ChatTarget("http://127.0.0.1:9/v1", "m"), timeout=1)


@pytest.mark.llama
async def test_real_llama_cpp_server_streams_an_answer(llama_server):
    pieces, stats = await collect(
        ChatTarget(llama_server, "smollm2-135m-instruct"),
        [{"role": "user", "content": "What is the capital of France?"}], max_tokens=16, temperature=0.0,
    )  # fmt: skip
    assert len(pieces) > 1, "the answer should arrive in several streamed pieces"
    assert "".join(pieces).strip()
    assert stats.as_dict()["finish_reason"] in {"stop", "length"}
    assert stats.as_dict()["tokens"] >= len(pieces) - 1


def test_a_chunk_that_only_lenient_json_reads_is_read_as_before():
    """Chunks are parsed with orjson (strict); what it refuses but json reads (bytes that are not UTF-8,
    NaN) is read leniently rather than failing the answer, and what neither reads is a bad response."""
    stats = StreamStats()
    assert _event_texts(b'{"choices":[{"delta":{"content":"caf\xe9"}}]}', stats) == ["caf\ufffd"]
    assert _event_texts(b'{"usage":{"completion_tokens":3,"x":NaN},"choices":[]}', stats) == []
    assert stats.completion_tokens == 3
    with pytest.raises(InferenceError) as caught:
        _event_texts(b'{"choices":[{"delta":', stats)
    assert caught.value.kind == "bad response"


def test_a_lone_surrogate_escaped_in_a_chunk_becomes_a_replacement_character():
    """ "\\ud83d" without its partner is JSON that orjson refuses and json reads into a string neither orjson
    (the frames) nor PostgreSQL (the stored answer) accepts: it becomes U+FFFD; a whole pair its character."""
    stats = StreamStats()
    [text] = _event_texts(b'{"choices":[{"delta":{"content":"smile \\ud83d"}}]}', stats)
    assert text == "smile \ufffd"
    assert orjson.dumps(text) and text.encode("utf-8")
    assert _event_texts(b'{"choices":[{"delta":{"content":"\\ud83d\\ude00"}}]}', stats) == ["\U0001f600"]
