"""A cap on the WebSockets one address holds open in a web process.

Each open socket holds a file descriptor, and each leaderboard socket is one more member of the Redis group
every update fans out to; without a cap, one host could hold sockets until the process had no descriptor
left for anyone. Counted per process, in memory (a process that dies takes its sockets with it, so nothing
is left counted; a count shared in Redis would outlive a crash): with N web processes an address holds at
most N × SOCKETS_PER_ADDRESS. A few lines of ASGI rather than a library: this counts open connections, not
requests over time, which is what rate-limiting libraries (`limits`) count. A proxy's per-address
connection limit (nginx's `limit_conn`) does the same in front of every process at once.
"""

from __future__ import annotations

from collections import Counter

from django.conf import settings

from arena import metrics
from arena.rate_limits import address_key

# The close code of a socket refused for this (before it is accepted, so the browser sees the handshake fail).
REFUSED_CODE = 4429


class SocketsPerAddress:
    """ASGI middleware for WebSockets: an address (an IPv6 /64) past SOCKETS_PER_ADDRESS open sockets in
    this process has its next handshake refused until one of them closes. 0 turns the cap off."""

    def __init__(self, app):
        self.app = app
        self.open: Counter[str] = Counter()

    async def __call__(self, scope, receive, send):
        limit = settings.SOCKETS_PER_ADDRESS
        if scope["type"] != "websocket" or not limit:
            return await self.app(scope, receive, send)
        # scope["client"] is the peer, or the forwarded client when the web server trusts proxy headers.
        address = address_key((scope.get("client") or ("",))[0] or "")
        if self.open[address] >= limit:
            # Counted, not logged: a host trying again and again would fill the log, with its address in it.
            metrics.SOCKETS_REFUSED.inc()
            await receive()  # the handshake's websocket.connect, answered with a refusal (HTTP 403)
            await send({"type": "websocket.close", "code": REFUSED_CODE})
            return
        self.open[address] += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            self.open[address] -= 1
            if not self.open[address]:
                del self.open[address]
