"""One async streaming client for the OpenAI-compatible chat protocol, used for every endpoint.

Each process (each event loop) keeps one pooled aiohttp session, so streams reuse connections (and TLS
sessions to remote APIs) instead of opening a client per answer. aiohttp rather than httpx: measured with
200 concurrent streams of 200 tokens, httpx (with httpcore and anyio under it) cost 14.7 ms of CPU per
stream and aiohttp 5.3 ms (its HTTP parser is compiled), the largest single share of a battle's CPU.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import orjson

# Phrases with which servers refuse a prompt longer than the model's context (llama.cpp, vLLM, OpenAI).
_CONTEXT_OVERFLOW = ("exceed context window", "maximum context length", "context length", "too many tokens")


class InferenceError(Exception):
    """An endpoint failed. `kind` is safe to show a visitor; `detail` is for logs only (it may name the host)."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail

    @property
    def endpoint_at_fault(self) -> bool:
        """Whether this says something about the endpoint's health (a too-long prompt does not)."""
        return self.kind != "context"

    @property
    def worth_another_replica(self) -> bool:
        """Failures another replica of the same model may not have: down, overloaded, rate-limited, broken."""
        return self.kind in {"unreachable", "timeout", "dropped", "bad response", "endpoint error", "http 429"} or (
            self.kind.startswith("http 5")
        )


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

    @property
    def ttft(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started

    def as_dict(self) -> dict:
        return {
            "ttft": None if self.ttft is None else round(self.ttft, 4),
            "tokens": self.tokens,
            "total": None if self.finished_at is None else round(self.finished_at - self.started, 4),
            "finish_reason": self.finish_reason,
        }


@dataclass(frozen=True)
class Limits:
    """How long to wait: to connect, for the next streamed token (idle), and for the whole answer."""

    connect: float = 5.0
    idle: float = 60.0
    answer: float = 180.0


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = weakref.WeakKeyDictionary()
# Connections per process: enough for every stream the fleet's concurrency caps allow at once.
MAX_CONNECTIONS = 1024
# How often, at most, a stream moves its idle clock forward (seconds).
IDLE_CLOCK_STEP = 0.5


def pooled_client() -> aiohttp.ClientSession:
    """This event loop's shared session (created on first use)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.closed:
        client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=60),
            # HTTPS_PROXY / NO_PROXY apply, as they did with httpx. Only when a proxy is configured: with
            # trust_env aiohttp also reads ~/.netrc on a thread for every request (a fifth of a stream's CPU).
            trust_env=bool(urllib.request.getproxies()),
        )
        _clients[loop] = client
    return client


async def close_pooled_client() -> None:
    """Close this event loop's session (for code that runs its own short-lived loop)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.close()


def _headers(target: ChatTarget) -> dict:
    headers = {"Accept": "text/event-stream"}
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    return headers


def _http_error(status: int, body: str) -> InferenceError:
    if 300 <= status < 400:
        return InferenceError(f"http {status}", "the endpoint redirected, and redirects are not followed: register "
                                                "the address it redirects to")  # fmt: skip
    if status in (400, 413) and any(phrase in body.lower() for phrase in _CONTEXT_OVERFLOW):
        return InferenceError("context", body)
    return InferenceError(f"http {status}", body)


async def stream_chat(
    target: ChatTarget,
    messages: list[dict],
    *,
    on_text: Callable[[str], Awaitable[None]],
    temperature: float = 0.7,
    top_p: float = 1.0,
    max_tokens: int = 512,
    stop: list[str] | None = None,
    stats: StreamStats | None = None,
    limits: Limits = Limits(),
    read_every: Callable[[], float] | None = None,
) -> None:
    """Hand the answer's text to `on_text` as it arrives (the text of one network read in one piece); raise
    InferenceError on any failure.

    With `read_every`, the answer's socket is left unread for `read_every()` seconds after each read past
    the first token, so the tokens that arrive meanwhile come in one read: for a caller that sends text
    out at that pace anyway, the same answer for far less CPU (a read costs much more than the tokens in
    it: 200 tokens at 50 a second took 6.2 ms of CPU read as they came, 2.3 ms read every 0.2 s).

    Two clocks run: the idle limit restarts with every piece of text (SSE comments and empty chunks do not
    count, so a server that only sends keep-alives is caught), and the answer limit bounds the whole answer.
    (A callback rather than an async generator: a timeout must never be held across a `yield`, where it
    would cancel whatever the caller happens to await.)
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
    if stop:
        payload["stop"] = stop
    # connect: a free pooled connection and the TCP/TLS handshake. No sock_read: aiohttp would move a timer on
    # every network read, and our idle clock below already catches silence (and keep-alives that carry no text).
    timeout = aiohttp.ClientTimeout(total=None, connect=limits.connect)
    url = target.base_url.rstrip("/") + "/chat/completions"
    loop = asyncio.get_running_loop()
    answer_deadline = loop.time() + limits.answer
    connected = False
    try:
        async with asyncio.timeout_at(min(answer_deadline, loop.time() + limits.connect + limits.idle)) as clock:
            # Redirects are not followed: a registered provider's domain redirecting (a 307 keeps the POST and its
            # body) would have the arena ask, and show an admin, whatever address it named, internal ones too.
            async with pooled_client().post(
                url, json=payload, headers=_headers(target), timeout=timeout, allow_redirects=False
            ) as response:
                if response.status != 200:
                    body = (await response.content.read(500)).decode(errors="replace")
                    raise _http_error(response.status, body)
                connected = True
                clock.reschedule(min(answer_deadline, loop.time() + limits.idle))  # connected: now the first token
                moved_at = loop.time()
                lines = _SSELines()
                async for data in response.content.iter_any():
                    # The text of every event in this read goes to on_text at once, in one piece.
                    arrived, ended, bad = [], False, None
                    try:
                        for raw in lines.feed(data):
                            texts = _event_texts(raw, stats)
                            if texts is _DONE:
                                ended = True
                                break
                            arrived += texts
                        lines.check_length()
                    except InferenceError as exc:
                        bad = exc  # raised once the text before it is handed over
                    if arrived:
                        now = loop.time()
                        if now - moved_at >= IDLE_CLOCK_STEP:
                            # Moving the timer costs a heap operation; once a step is plenty (the idle limit
                            # is tens of seconds, so it may fire up to one step early).
                            clock.reschedule(min(answer_deadline, now + limits.idle))
                            moved_at = now
                        await on_text("".join(arrived))
                    if ended:
                        return
                    if bad is not None:
                        raise bad
                    if read_every is not None and stats.first_token_at is not None:
                        await _leave_unread(response, read_every())
    except TimeoutError as exc:  # our clocks, and aiohttp's connect timeout
        over = "the whole answer" if loop.time() >= answer_deadline - 0.01 else "the next token"
        raise InferenceError("timeout", f"waited too long for {over}: {exc!r}") from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise InferenceError("dropped", repr(exc)) from exc
    except aiohttp.ClientError as exc:
        # Refused, reset or unresolvable: before the answer began the server could not be reached; after,
        # the answer was cut off.
        raise InferenceError("dropped" if connected else "unreachable", repr(exc)) from exc
    finally:
        stats.finished_at = time.monotonic()
    if stats.finish_reason is None:
        # The stream closed without [DONE] or a finish reason: the server went away mid-answer.
        raise InferenceError("dropped", "stream ended without a finish reason")


async def _leave_unread(response: aiohttp.ClientResponse, seconds: float) -> None:
    """Stop reading the response's socket for `seconds` (what arrives meanwhile waits in the kernel)."""
    transport = response.connection.transport if response.connection is not None else None
    if transport is None or seconds <= 0:
        return
    transport.pause_reading()
    try:
        await asyncio.sleep(seconds)
    finally:
        transport.resume_reading()  # also when cancelled: a connection must never go back to the pool paused


# The longest SSE line a stream may send (a usage block is a few hundred bytes); longer is a bad response.
MAX_LINE_BYTES = 2**16
_DONE = object()


class _SSELines:
    """Splits a streamed body into the payloads of its `data:` lines (blank separators, comments and event
    names skipped). Whole network reads are split at once: a wake-up per read, not two per token."""

    def __init__(self) -> None:
        self.partial = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        lines = (self.partial + chunk).split(b"\n") if self.partial else chunk.split(b"\n")
        self.partial = lines.pop()
        return [line[5:].strip() for line in lines if line.startswith(b"data:")]

    def check_length(self) -> None:
        """Refuse a line that has grown too long without ending (after the complete lines before it)."""
        if len(self.partial) > MAX_LINE_BYTES:
            raise InferenceError("bad response", f"an SSE line longer than {MAX_LINE_BYTES} bytes")


def _shown(raw: bytes) -> str:
    """The start of a payload, for an error message."""
    return raw[:200].decode("utf-8", errors="replace")


def well_formed(text: str) -> str:
    """`text` with any UTF-16 surrogate halves made whole: a pair becomes its character, a lone half U+FFFD.
    Only a lenient JSON parse lets such halves in (an escaped "\\ud83d" without its partner, as a gateway
    that splits strings by UTF-16 unit may send), and text holding one can be neither sent as JSON by
    orjson nor stored by PostgreSQL."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _lenient_json(raw: bytes) -> object:
    data = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise InferenceError("bad response", data[:200]) from exc


def _event_texts(raw: bytes, stats: StreamStats) -> list[str] | object:
    """The text pieces of one `data:` payload, noting usage and finish reason in `stats`; _DONE at the end."""
    if raw == b"[DONE]":
        stats.finish_reason = stats.finish_reason or "stop"
        return _DONE
    lenient = False
    try:
        # orjson: a chunk per token per side is parsed, 4x faster than json.loads (0.85 against 3.2 us here).
        chunk = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Maybe not UTF-8 throughout, or a lone surrogate escaped: read it as json would, before refusing it.
        chunk, lenient = _lenient_json(raw), True
    if not isinstance(chunk, dict):
        raise InferenceError("bad response", f"a chunk that is not an object: {_shown(raw)}")
    if chunk.get("error"):
        error = json.dumps(chunk["error"])[:500]
        if any(phrase in error.lower() for phrase in _CONTEXT_OVERFLOW):
            raise InferenceError("context", error)
        raise InferenceError("endpoint error", error)
    usage = chunk.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        stats.completion_tokens = usage["completion_tokens"]
    texts = []
    choices = chunk.get("choices")
    for choice in choices if isinstance(choices, list) else []:
        if not isinstance(choice, dict):
            raise InferenceError("bad response", f"a choice that is not an object: {_shown(raw)}")
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(text, str) and text:
            texts.append(well_formed(text) if lenient else text)
        if choice.get("finish_reason"):
            stats.finish_reason = str(choice["finish_reason"])
    if texts:
        if stats.first_token_at is None:
            stats.first_token_at = time.monotonic()
        stats.chunks += len(texts)
    return texts


async def complete_chat(target: ChatTarget, messages: list[dict], **kwargs) -> tuple[str, StreamStats]:
    """Collect a whole streamed answer (for checks and tools)."""
    stats = StreamStats()
    pieces: list[str] = []

    async def collect(text: str) -> None:
        pieces.append(text)

    await stream_chat(target, messages, on_text=collect, stats=stats, **kwargs)
    return "".join(pieces), stats


async def list_models(target: ChatTarget, *, timeout: float = 5.0) -> list[str]:
    """GET {base_url}/models: the cheap liveness probe every OpenAI-compatible server answers."""
    url = target.base_url.rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    try:
        async with pooled_client().get(
            url,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,  # see stream_chat
        ) as response:
            text = await response.text(errors="replace")
            status = response.status
    except TimeoutError as exc:
        raise InferenceError("timeout", repr(exc)) from exc
    except aiohttp.ClientError as exc:
        raise InferenceError("unreachable", repr(exc)) from exc
    if status != 200:
        raise _http_error(status, text[:500])
    try:
        data = json.loads(text).get("data", [])
        return [str(entry.get("id")) for entry in data if isinstance(entry, dict)]
    except (ValueError, AttributeError) as exc:
        raise InferenceError("bad response", text[:200]) from exc
