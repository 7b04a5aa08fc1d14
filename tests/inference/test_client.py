import asyncio

import pytest

from inference.client import ChatTarget, InferenceError, StreamStats, complete_chat, stream_chat

HELLO = [{"role": "user", "content": "Hi"}]


async def test_stream_yields_pieces_in_order_and_records_timings(scripted_api):
    stats = StreamStats()
    pieces = [p async for p in stream_chat(ChatTarget(scripted_api.url("ok"), "m"), HELLO, stats=stats)]
    assert "".join(pieces) == "Hello from the scripted API."
    timings = stats.as_dict()
    assert timings["tokens"] == 6
    assert timings["finish_reason"] == "stop"
    assert 0 <= timings["ttft"] <= timings["total"]


async def test_request_carries_model_sampling_and_bearer_key(scripted_api):
    await complete_chat(
        ChatTarget(scripted_api.url("ok"), "served-id", api_key="sk-secret"), HELLO, temperature=0.3, max_tokens=7
    )
    sent = scripted_api.requests[-1]
    assert sent["auth"] == "Bearer sk-secret"
    assert sent["payload"]["model"] == "served-id"
    assert sent["payload"]["temperature"] == 0.3
    assert sent["payload"]["max_tokens"] == 7
    assert sent["payload"]["stream"] is True


async def test_http_error_is_reported_with_status_kind(scripted_api):
    with pytest.raises(InferenceError) as caught:
        await complete_chat(ChatTarget(scripted_api.url("error"), "m"), HELLO)
    assert caught.value.kind == "http 500"


async def test_hanging_server_hits_the_idle_timeout(scripted_api):
    with pytest.raises(InferenceError) as caught:
        await asyncio.wait_for(complete_chat(ChatTarget(scripted_api.url("hang"), "m"), HELLO, idle_timeout=0.5), 10)
    assert caught.value.kind == "timeout"


async def test_stream_dropped_mid_answer_is_an_error(scripted_api):
    stats = StreamStats()
    received = []
    with pytest.raises(InferenceError) as caught:
        async for piece in stream_chat(ChatTarget(scripted_api.url("drop"), "m"), HELLO, stats=stats):
            received.append(piece)
    assert caught.value.kind == "dropped"
    assert received == ["Hello", " from", " the"]


async def test_stream_closed_without_finish_is_an_error(scripted_api):
    with pytest.raises(InferenceError) as caught:
        await complete_chat(ChatTarget(scripted_api.url("nofinish"), "m"), HELLO)
    assert caught.value.kind == "dropped"


async def test_unreachable_endpoint_is_reported():
    with pytest.raises(InferenceError) as caught:
        await complete_chat(ChatTarget("http://127.0.0.1:9/v1", "m"), HELLO, connect_timeout=1)
    assert caught.value.kind == "unreachable"


@pytest.mark.llama
async def test_real_llama_cpp_server_streams_an_answer(llama_server):
    stats = StreamStats()
    pieces = [
        p async for p in stream_chat(
            ChatTarget(llama_server, "smollm2-135m-instruct"),
            [{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=16, temperature=0.0, stats=stats,
        )
    ]  # fmt: skip
    assert len(pieces) > 1, "the answer should arrive in several streamed pieces"
    assert "".join(pieces).strip()
    assert stats.as_dict()["finish_reason"] in {"stop", "length"}
    assert stats.as_dict()["tokens"] >= len(pieces) - 1
