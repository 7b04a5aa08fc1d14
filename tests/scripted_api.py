"""A scripted OpenAI-compatible HTTP server: a test double standing in for a remote API (edge only).

Behaviour is chosen by the first path segment of the base URL:
  /ok        six tokens and a clean finish          /slow      the same, 0.4 s a token
  /hang      accepts, then says nothing             /drop      the connection dies after three tokens
  /error     HTTP 500                               /ratelimited HTTP 429
  /nofinish  tokens, then the stream just ends      /html      an answer carrying HTML and script
  /keepalive SSE keep-alive comments, never a token /notobject a chunk that is JSON but not an object
  /context   HTTP 400 "exceed context window" (llama.cpp's words) when sent more than one user message
  /leak      an answer that names the model it comes from (SmolLM, by Hugging Face)
  /longline  a token, then an SSE line that grows to 300 kB, 10 kB at a time, and never ends
  /hold      like /ok, but holds the stream open until `release()` (a slot stays busy meanwhile)
  /leakonce  the first request: the /leak answer's first tokens, then held open until `release()`; later: /ok
  /leakcut   as /leakonce, holding open right after "I am SmolLM" (the name's word not yet known to be over)
  /redirect  307 (POST) or 302 (GET) to the same path under /ok
  /holdlater the first two requests (a first turn's two sides) like /ok, later ones like /hold
  /failafter its first request like /ok, later ones HTTP 500
"""

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = ["Hello", " from", " the", " scripted", " API", "."]
LEAKING_ANSWER = ["I am", " Smol", "LM", ", trained", " by Hugging", " Face", "."]
HOSTILE_ANSWER = [
    "<script>alert('a')</script>",
    " <img src=x onerror=alert('b')>",
    " [link](javascript:alert('c'))",
    " **bold**",
]


def _chunk(text=None, finish=None) -> bytes:
    delta = {"content": text} if text is not None else {}
    body = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[dict] = []
    holding = threading.Event()
    leaked = False  # /leakonce: whether its first request came

    def _json(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass

    def _redirect(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Location", self.path.replace("/redirect/", "/ok/", 1))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        if self.path.strip("/").split("/")[0] == "redirect":
            ScriptedHandler.requests.append(
                {"mode": "redirect", "payload": None, "auth": self.headers.get("Authorization")}
            )
            self._redirect(302)
            return
        if self.path.strip("/").split("/")[0] == "busy":
            time.sleep(1.0)  # a server that lists its models only once the answer it is streaming ends
        # A probe that gave up waiting (as the "busy" one is meant to) has closed the connection: no traceback.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._json(200, json.dumps({"data": [{"id": "scripted"}]}).encode())

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        payload = json.loads(self.rfile.read(length) or b"{}")
        mode = self.path.strip("/").split("/")[0]
        ScriptedHandler.requests.append({"mode": mode, "payload": payload, "auth": self.headers.get("Authorization")})
        if mode == "redirect":
            self._redirect(307)
            return
        asked = sum(request["mode"] == mode for request in ScriptedHandler.requests)  # this one included
        if mode == "failafter" and asked > 1:
            mode = "error"
        if mode == "holdlater" and asked > 2:
            mode = "hold"
        if mode == "error":
            self._json(500, b'{"error": {"message": "model overloaded at secret-host.internal"}}')
            return
        if mode == "ratelimited":
            self._json(429, b'{"error": {"message": "rate limit reached for requests"}}')
            return
        if mode == "context" and sum(m["role"] == "user" for m in payload.get("messages", [])) > 1:
            self._json(400, b'{"error": {"message": "Requested tokens (2769) exceed context window of 2048"}}')
            return
        if mode == "hang":
            time.sleep(30)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        if mode == "keepalive":
            for _ in range(150):  # 30 s of keep-alives, no data
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
                time.sleep(0.2)
            return
        if mode == "notobject":
            self.wfile.write(_chunk(ANSWER[0]) + b"data: [1]\n\n")
            self.wfile.flush()
            return
        if mode == "longline":
            self.wfile.write(_chunk(ANSWER[0]) + b"data: ")
            with contextlib.suppress(ConnectionError):  # the client hangs up once the line is too long
                for _ in range(30):
                    self.wfile.write(b"x" * 10_000)
                    self.wfile.flush()
                    time.sleep(0.02)
            return
        if mode == "hold":
            ScriptedHandler.holding.wait(30)
        if mode in ("leakonce", "leakcut") and not ScriptedHandler.leaked:
            ScriptedHandler.leaked = True
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the arena stopped reading
                # /leakonce: enough for the name to be read as one; /leakcut: up to the name, no further
                for piece in LEAKING_ANSWER[: 5 if mode == "leakonce" else 3]:
                    self.wfile.write(_chunk(piece))
                    self.wfile.flush()
                ScriptedHandler.holding.wait(30)
            return
        script = {"html": HOSTILE_ANSWER, "leak": LEAKING_ANSWER}.get(mode, ANSWER)
        for index, piece in enumerate(script):
            if mode == "drop" and index == 3:
                self.wfile.flush()
                self.connection.shutdown(2)  # the server dies mid-answer
                return
            if mode == "slow":
                time.sleep(0.4)
            self.wfile.write(_chunk(piece))
            self.wfile.flush()
        if mode == "nofinish":
            return
        self.wfile.write(_chunk(finish="stop"))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class ScriptedAPI:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedHandler)
        self.server.daemon_threads = True
        # shutdown() waits for the serving loop's next poll: a short poll keeps each test's teardown short.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{mode}/v1"

    @property
    def requests(self) -> list[dict]:
        return ScriptedHandler.requests

    def release(self) -> None:
        """Let every /hold stream go on."""
        ScriptedHandler.holding.set()

    def __enter__(self):
        ScriptedHandler.requests = []
        ScriptedHandler.holding = threading.Event()
        ScriptedHandler.leaked = False
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release()
        self.server.shutdown()
        self.server.server_close()
