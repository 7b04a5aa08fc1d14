"""Load for the web tier: a scripted OpenAI-compatible server that streams at a set pace, and visitors
that start battles over the real WebSocket and vote over the real HTTP API. Used by bench/load.py (the
figures) and tests/e2e/test_load.py (correctness under concurrency).

The scripted server is a test double at the edge (it stands in for a model server), written on bare
asyncio so that thousands of streams cost it little: one timer per server, not one per stream, writes the
next token to every open stream each tick, over keep-alive HTTP/1.1 with chunked encoding, as llama.cpp
and vLLM answer.

Run the server on its own: python -m tests.load_driver --port 8200 --tokens 200 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

import httpx


def _http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _sse(body: dict) -> bytes:
    return _http_chunk(b"data: " + json.dumps(body).encode() + b"\n\n")


TOKEN = _sse({"choices": [{"index": 0, "delta": {"content": " token"}, "finish_reason": None}]})
FINISH = _sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + _http_chunk(b"data: [DONE]\n\n")
END = b"0\r\n\r\n"
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
MODELS = json.dumps({"object": "list", "data": [{"id": "scripted"}]}).encode()
MODELS_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(MODELS),
    MODELS,
)


@dataclass
class _Stream:
    writer: asyncio.StreamWriter
    left: int
    done: asyncio.Event = field(default_factory=asyncio.Event)


class PacedServer:
    """Streams `tokens` tokens per answer at `rate` tokens per second per stream; the first at once."""

    def __init__(self, tokens: int, rate: float):
        self.tokens, self.interval = tokens, 1.0 / rate
        self.streams: list[_Stream] = []
        self.answers = 0

    async def serve(self, port: int) -> None:
        server = await asyncio.start_server(self._connection, "127.0.0.1", port, backlog=4096)
        ticker = asyncio.ensure_future(self._tick())
        async with server:
            try:
                await server.serve_forever()
            finally:
                ticker.cancel()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self.interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            still = []
            for stream in self.streams:
                if stream.writer.is_closing():
                    stream.done.set()
                    continue
                stream.left -= 1
                if stream.left > 0:
                    stream.writer.write(TOKEN)
                    still.append(stream)
                else:
                    stream.writer.write(TOKEN + FINISH + END)
                    stream.done.set()
            self.streams = still

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET"):
                    writer.write(MODELS_RESPONSE)
                    continue
                self.answers += 1
                writer.write(STREAM_HEAD + TOKEN)
                stream = _Stream(writer, left=self.tokens - 1)
                self.streams.append(stream)
                await stream.done.wait()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


# --- visitors -------------------------------------------------------------------------------------------


@dataclass
class Visitor:
    session: str
    csrf: str

    @property
    def cookie(self) -> str:
        return f"sessionid={self.session}; csrftoken={self.csrf}"


@dataclass
class BattleResult:
    ok: bool
    battle_id: str = ""
    turn: int = 0
    version: int = 0
    ttft: dict[str, float] = field(default_factory=dict)  # per side, seconds from "start" to first delta
    error: str = ""  # the first of `errors`
    errors: list[str] = field(default_factory=list)  # every side error, refusal or socket failure, in order
    restarts: int = 0  # sides that started over on another replica
    retry_after: int = 0  # set when the arena answered "busy": try again after this many seconds

    def failed(self, message: str) -> None:
        self.errors.append(message)
        self.error = self.error or message

    @classmethod
    def failure(cls, message: str) -> BattleResult:
        result = cls(ok=False)
        result.failed(message)
        return result


async def visitors_issue(client: httpx.AsyncClient, web_url: str, count: int) -> list[Visitor]:
    """`count` visitors, each with a session the arena issued (POST /api/session) and a CSRF token."""
    page = await client.get(web_url + "/")
    csrf = page.cookies["csrftoken"]

    async def one() -> Visitor:
        response = await client.post(
            web_url + "/api/session",
            headers={"X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}", "Origin": web_url},
        )
        response.raise_for_status()
        return Visitor(session=response.cookies["sessionid"], csrf=csrf)

    limit = asyncio.Semaphore(32)

    async def limited() -> Visitor:
        async with limit:
            return await one()

    return await asyncio.gather(*(limited() for _ in range(count)))


def battle_socket(web_url: str, visitor: Visitor):
    """The visitor's battle WebSocket, as the page opens it (`async with battle_socket(...) as socket`)."""
    import websockets

    ws_url = web_url.replace("http://", "ws://") + "/ws/battle/"
    return websockets.connect(
        ws_url, additional_headers={"Cookie": visitor.cookie, "Origin": web_url}, compression=None
    )


async def battle_run(web_url: str, visitor: Visitor, prompt: str, *, timeout: float = 120.0) -> BattleResult:
    """One battle over a real WebSocket of its own: open it, start, read both answers to the end."""
    import websockets

    try:
        async with asyncio.timeout(timeout):
            async with battle_socket(web_url, visitor) as socket:
                return await battle_on_socket(socket, prompt, timeout=timeout)
    except (TimeoutError, OSError, websockets.WebSocketException) as exc:
        return BattleResult.failure(f"socket: {type(exc).__name__}: {exc}")


async def battle_on_socket(socket, prompt: str, *, timeout: float = 120.0) -> BattleResult:
    """One battle over an open battle socket, as the page runs every battle after its first: start, read
    both answers to the end. After a failure the socket may still carry that battle's frames: close it."""
    import websockets

    result = BattleResult(ok=False)
    try:
        async with asyncio.timeout(timeout):
            started = time.perf_counter()
            await socket.send(json.dumps({"type": "start", "prompt": prompt}))
            async for message in socket:
                event = json.loads(message)
                kind = event["type"]
                if kind == "turn_started":
                    result.battle_id, result.turn, result.version = (
                        event["battle_id"], event["turn"], event["version"],
                    )  # fmt: skip
                elif kind == "delta":
                    for side in event["text"]:
                        result.ttft.setdefault(side, time.perf_counter() - started)
                elif kind == "side_restart":
                    result.restarts += 1
                elif kind == "busy":
                    result.failed(f"busy: {event['message']}")
                    result.retry_after = event["retry_after"]
                    return result
                elif kind in {"side_error", "error"}:
                    result.failed(event.get("message", kind))
                    if kind == "error":
                        return result
                elif kind == "turn_done":
                    result.ok = event["voteable"] and not result.error
                    return result
            result.failed("socket: closed before the battle ended")
    except (TimeoutError, OSError, websockets.WebSocketException) as exc:
        result.failed(f"socket: {type(exc).__name__}: {exc}")
    return result


async def vote_cast(
    client: httpx.AsyncClient, web_url: str, visitor: Visitor, battle: BattleResult, outcome: str = "a"
) -> httpx.Response:
    return await client.post(
        f"{web_url}/api/battles/{battle.battle_id}/vote",
        json={"outcome": outcome, "turn": battle.turn, "version": battle.version},
        headers={"X-CSRFToken": visitor.csrf, "Cookie": visitor.cookie, "Origin": web_url},
    )


async def vote_on_socket(socket, battle: BattleResult, outcome: str = "a") -> bool:
    """Vote on the battle over an open battle socket, as the page does; whether it was recorded."""
    vote = {"battle_id": battle.battle_id, "outcome": outcome, "turn": battle.turn, "version": battle.version}
    await socket.send(json.dumps({"type": "vote", **vote}))
    return json.loads(await socket.recv())["type"] == "voted"


async def direct_first_tokens(base_url: str, count: int) -> list[float]:
    """Time to first token straight from the scripted server, `count` streams at once, each read to the
    end: the server's own share of the arena's time to first token under the same load."""
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    payload = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one() -> float:
            started = time.perf_counter()
            first = None
            async with client.stream("POST", base_url + "/chat/completions", json=payload) as response:
                async for _ in response.aiter_raw():
                    if first is None:
                        first = time.perf_counter() - started
            return first

        return await asyncio.gather(*(one() for _ in range(count)))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description="A paced, scripted OpenAI-compatible streaming server.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(PacedServer(args.tokens, args.rate).serve(args.port))


if __name__ == "__main__":
    main()
