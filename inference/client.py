"""One async streaming client for the OpenAI-compatible chat protocol, used for every endpoint."""

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx


class InferenceError(Exception):
    """An endpoint failed. `kind` is safe to show a visitor; `detail` is for logs only (it may name the host)."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class ChatTarget:
    base_url: str
    model: str
    api_key: str = ""


@dataclass
class StreamStats:
    """Per-side timings, filled in while a stream runs."""

    started: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    finished_at: float | None = None
    chunks: int = 0
    completion_tokens: int | None = None
    finish_reason: str | None = None

    @property
    def tokens(self) -> int:
        # Servers that report usage are exact; otherwise each content chunk is one token (true for
        # llama.cpp and vLLM streams).
        return self.completion_tokens if self.completion_tokens is not None else self.chunks

    def as_dict(self) -> dict:
        return {
            "ttft": None if self.first_token_at is None else round(self.first_token_at - self.started, 4),
            "tokens": self.tokens,
            "total": None if self.finished_at is None else round(self.finished_at - self.started, 4),
            "finish_reason": self.finish_reason,
        }


def _headers(target: ChatTarget) -> dict:
    headers = {"Accept": "text/event-stream"}
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    return headers


async def stream_chat(
    target: ChatTarget,
    messages: list[dict],
    *,
    temperature: float = 0.7,
    top_p: float = 1.0,
    max_tokens: int = 512,
    stats: StreamStats | None = None,
    connect_timeout: float = 5.0,
    idle_timeout: float = 60.0,
) -> AsyncIterator[str]:
    """Yield the answer's text pieces as they arrive; raise InferenceError on any failure.

    The idle timeout bounds the wait for each chunk (and for the first), so a hung server is caught
    without limiting how long a steadily streaming answer may run.
    """
    stats = stats if stats is not None else StreamStats()
    payload = {
        "model": target.model,
        "messages": messages,
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    timeout = httpx.Timeout(connect=connect_timeout, read=idle_timeout, write=idle_timeout, pool=connect_timeout)
    url = target.base_url.rstrip("/") + "/chat/completions"
    try:
        async with (
            httpx.AsyncClient(timeout=timeout) as client,
            client.stream("POST", url, json=payload, headers=_headers(target)) as response,
        ):
            if response.status_code != 200:
                body = (await response.aread())[:500].decode(errors="replace")
                raise InferenceError(f"http {response.status_code}", body)
            async for text in _parse_sse(response, stats):
                yield text
    except httpx.TimeoutException as exc:
        raise InferenceError("timeout", repr(exc)) from exc
    except httpx.RemoteProtocolError as exc:
        raise InferenceError("dropped", repr(exc)) from exc
    except httpx.TransportError as exc:
        raise InferenceError("unreachable", repr(exc)) from exc
    finally:
        stats.finished_at = time.monotonic()
    if stats.finish_reason is None:
        # The stream closed without [DONE] or a finish reason: the server went away mid-answer.
        raise InferenceError("dropped", "stream ended without a finish reason")


async def _parse_sse(response: httpx.Response, stats: StreamStats) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            stats.finish_reason = stats.finish_reason or "stop"
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise InferenceError("bad response", data[:200]) from exc
        if chunk.get("error"):
            raise InferenceError("endpoint error", json.dumps(chunk["error"])[:500])
        if chunk.get("usage"):
            stats.completion_tokens = chunk["usage"].get("completion_tokens")
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content")
            if text:
                if stats.first_token_at is None:
                    stats.first_token_at = time.monotonic()
                stats.chunks += 1
                yield text
            if choice.get("finish_reason"):
                stats.finish_reason = choice["finish_reason"]


async def complete_chat(target: ChatTarget, messages: list[dict], **kwargs) -> tuple[str, StreamStats]:
    """Collect a whole streamed answer (for checks and tools)."""
    stats = StreamStats()
    pieces = [piece async for piece in stream_chat(target, messages, stats=stats, **kwargs)]
    return "".join(pieces), stats
