"""A scripted OpenAI-compatible HTTP server: a test double standing in for a remote API (edge only).

Behaviour is chosen by the first path segment of the base URL: /ok, /slow, /hang, /drop, /error, /nofinish.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = ["Hello", " from", " the", " scripted", " API", "."]


def _chunk(text=None, finish=None) -> bytes:
    delta = {"content": text} if text is not None else {}
    body = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[dict] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        body = json.dumps({"data": [{"id": "scripted"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        payload = json.loads(self.rfile.read(length) or b"{}")
        mode = self.path.strip("/").split("/")[0]
        ScriptedHandler.requests.append({"mode": mode, "payload": payload, "auth": self.headers.get("Authorization")})
        if mode == "error":
            body = b'{"error": {"message": "model overloaded at secret-host.internal"}}'
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if mode == "hang":
            time.sleep(30)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for index, piece in enumerate(ANSWER):
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
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{mode}/v1"

    @property
    def requests(self) -> list[dict]:
        return ScriptedHandler.requests

    def __enter__(self):
        ScriptedHandler.requests = []
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
