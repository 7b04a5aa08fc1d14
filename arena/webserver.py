"""uvicorn's command line, with Nagle's algorithm off on every connection it accepts.

asyncio turns Nagle's algorithm off (TCP_NODELAY) on the connections it accepts only when the listening
socket says it is TCP. uvicorn's own `--host/--port` with one process builds such a socket; every path that
hands it a socket does not: `--fd` (supervisord's shared socket, how `make run` and production serve) reads
the descriptor as a Unix socket, and `--workers` binds one with no protocol number (uvicorn issue #3149).
Nagle's algorithm then holds each small write until the visitor's side acknowledges the one before, and
TCP delays that acknowledgement by up to 40 ms on Linux: measured here, a keep-alive request took 44 ms with
two uvicorn workers against 0.2 ms with one, and a battle's first token 49 ms against 9 ms (bench/load.py,
50 at once, two processes against one).

So the listening socket gets TCP_NODELAY before uvicorn starts, and Linux copies it to each connection
accepted from it: the descriptor given with `--fd` is set as it is; with `--host/--port` this module binds
the socket itself and hands uvicorn `--fd`, so both paths serve the same way. Everything else is uvicorn's
own command line. (A wrapper rather than a patched uvicorn: the fix is one socket option, and this keeps
the released package.)
"""

from __future__ import annotations

import os
import socket
import sys

import uvicorn.main

BACKLOG = 2048  # as supervisord's socket (arena/supervisor.py) and uvicorn's default
STARTUP_FAILURE = 3  # uvicorn's exit status when it cannot start


def nodelay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port with Nagle's algorithm off, inherited by each accepted socket."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]  # fmt: skip
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        nodelay(sock)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _option(argv: list[str], name: str) -> str | None:
    """The value of `name` (given as `name value` or `name=value`), or None."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1 :]
    return None


def _setting(argv: list[str], name: str) -> str | None:
    """An option from the command line, else from uvicorn's environment (`--port`: UVICORN_PORT), as uvicorn
    reads it."""
    return _option(argv, name) or os.environ.get("UVICORN_" + name.removeprefix("--").upper()) or None


def _without(argv: list[str], *names: str) -> list[str]:
    """argv without these options and their values (either form)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in names:
            skip = True
        elif not arg.startswith(tuple(name + "=" for name in names)):
            kept.append(arg)
    return kept


def uvicorn_argv(argv: list[str]) -> tuple[list[str], socket.socket | None]:
    """uvicorn's arguments serving from a socket with Nagle's algorithm off, and the socket this made (kept
    open while uvicorn runs), if it made one."""
    if _setting(argv, "--uds"):
        return argv, None  # a Unix socket: no Nagle's algorithm to turn off
    fd = _setting(argv, "--fd")
    if fd is not None:
        try:
            given = socket.socket(fileno=int(fd))  # the descriptor's own family, not uvicorn's guess
        except (OSError, ValueError):
            return argv, None  # not a socket: uvicorn says so
        try:
            if given.family in (socket.AF_INET, socket.AF_INET6):
                nodelay(given)
        finally:
            given.detach()  # uvicorn serves it: this object must never close the descriptor
        return argv, None
    sock = listening_socket(_setting(argv, "--host") or "127.0.0.1", int(_setting(argv, "--port") or 8000))
    return [*_without(argv, "--host", "--port"), "--fd", str(sock.fileno())], sock


def main(argv: list[str]) -> None:
    try:
        args, sock = uvicorn_argv(argv)
    except OSError as exc:  # the port is taken, the address is not this machine's: said plainly, as uvicorn would
        print(f"The web server could not listen: {exc}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    try:
        uvicorn.main.main(args=args, prog_name="uvicorn")
    finally:
        if sock is not None:
            sock.close()


if __name__ == "__main__":
    main(sys.argv[1:])
