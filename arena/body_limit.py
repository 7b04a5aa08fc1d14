"""Request bodies larger than Django would ever accept are refused before they are read.

Django's ASGI handler reads a whole request body, to a temporary file on disk past FILE_UPLOAD_MAX_MEMORY_SIZE,
before anything looks at its size; DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) is only checked afterwards. Measured
on one web process: a 100 MB POST to the vote API took 0.6 s and 120 ms of the process's CPU to be turned
away, written to disk meanwhile. Here a declared Content-Length over the limit is answered 413 at once, and a
body sent without one (chunked) is cut off as soon as it passes the limit. (A few lines of ASGI rather than a
library: none of the arena's dependencies does this for Django under ASGI.)
"""

from __future__ import annotations

import json

from django.conf import settings


class BodyTooLarge(Exception):
    pass


def _declared_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # a malformed length: the server's HTTP parser has refused it already
    return None


class BodyLimit:
    """ASGI middleware for HTTP: bodies over DATA_UPLOAD_MAX_MEMORY_SIZE get 413 without being read."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if scope["type"] != "http" or limit is None:
            return await self.app(scope, receive, send)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            return await _refuse(send, limit)
        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def noting_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, noting_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, limit)


async def _refuse(send, limit: int) -> None:
    body = json.dumps({"error": f"The request is too large (the limit is {limit:,} bytes)."}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
