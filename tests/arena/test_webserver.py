"""The web server's sockets: Nagle's algorithm off on every connection, however the server was handed its
port (bound itself, uvicorn's workers, supervisord's descriptor); messages too large for any prompt refused
unread."""

import asyncio
import errno
import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from arena import processes, webserver
from arena.processes import free_port
from tests.conftest import keep_alive_request_ms, serving
from tests.load_driver import battle_socket, visitors_issue

ROOT = Path(__file__).resolve().parents[2]


def nagle_off(sock: socket.socket) -> bool:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def accepted_from(listener: socket.socket) -> socket.socket:
    """A connection accepted from `listener` (its client side closed at once: only the accepted side is looked at)."""
    client = socket.create_connection(listener.getsockname()[:2], timeout=5)
    accepted, _ = listener.accept()
    client.close()
    return accepted


def test_a_port_it_binds_hands_every_accepted_connection_nagle_off():
    args, sock = webserver.uvicorn_argv(["arena.asgi:application", "--host", "127.0.0.1", "--port",
                                         str(free_port()), "--workers", "2"])  # fmt: skip
    try:
        # uvicorn is given the socket (and keeps every other argument); the port is no longer its to bind.
        assert args == ["arena.asgi:application", "--workers", "2", "--fd", str(sock.fileno())]
        with accepted_from(sock) as accepted:
            assert nagle_off(accepted)
    finally:
        sock.close()


def test_options_written_with_an_equals_sign_are_read_too():
    port = free_port()
    args, sock = webserver.uvicorn_argv(["arena.asgi:application", "--host=127.0.0.1", f"--port={port}"])
    try:
        assert sock.getsockname() == ("127.0.0.1", port)
        assert args == ["arena.asgi:application", "--fd", str(sock.fileno())]
    finally:
        sock.close()


def test_uvicorns_own_environment_names_the_port_when_the_command_line_does_not(monkeypatch):
    port = free_port()
    monkeypatch.setenv("UVICORN_PORT", str(port))
    args, sock = webserver.uvicorn_argv(["arena.asgi:application"])
    try:
        assert sock.getsockname() == ("127.0.0.1", port)
    finally:
        sock.close()
    monkeypatch.setenv("UVICORN_UDS", "/tmp/arena-web.sock")  # a Unix socket named there: nothing to bind
    assert webserver.uvicorn_argv(["arena.asgi:application"]) == (["arena.asgi:application"], None)


def test_a_descriptor_it_is_handed_is_set_in_place_and_stays_open():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:  # as supervisord makes it
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        argv = ["arena.asgi:application", "--fd", str(listener.fileno())]
        assert webserver.uvicorn_argv(argv) == (argv, None)
        with accepted_from(listener) as accepted:  # still open: the check did not close the descriptor
            assert nagle_off(accepted)


def test_a_unix_socket_is_left_as_it_is():
    argv = ["arena.asgi:application", "--uds", "/tmp/arena-web.sock"]
    assert webserver.uvicorn_argv(argv) == (argv, None)


@pytest.mark.django_db(transaction=True)
def test_two_web_processes_answer_keep_alive_requests_without_waiting_on_the_visitors_acknowledgement(child_env):
    """With Nagle's algorithm on, each response's body waited for the client's delayed acknowledgement of its
    headers: 44 ms a request with two workers, against well under a millisecond with it off."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(processes.web_program(port=port, processes=2), ready_url=url + "/", log_name=f"web-nagle-{port}.log",
                 env=child_env, timeout=60):  # fmt: skip
        assert keep_alive_request_ms(port, "/static/arena/site.css") < 20


def test_a_port_already_taken_is_said_plainly_and_nothing_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "arena.webserver", "arena.asgi:application", "--port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert run.returncode == webserver.STARTUP_FAILURE
    assert f"The web server could not listen: [Errno {errno.EADDRINUSE}]" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.django_db(transaction=True)
def test_a_battle_message_too_large_for_any_prompt_closes_its_socket_unread_and_others_carry_on(child_env):
    async def run(url: str) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            (visitor,) = await visitors_issue(client, url, 1)
        async with battle_socket(url, visitor) as socket:
            # A long prompt, within the frame limit: refused by the arena in words.
            await socket.send(json.dumps({"type": "start", "prompt": "x" * 100_000}))
            assert "the limit is" in json.loads(await socket.recv())["message"]
        async with battle_socket(url, visitor) as socket:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.send(json.dumps({"type": "start", "prompt": "x" * (processes.WS_MAX_MESSAGE_BYTES + 1)}))
                await socket.recv()
            # Closed with 1009 (message too big), or cut off before that close reached us (the server closes
            # with the rest of the message unread, which the kernel may answer with a reset).
            assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
        async with battle_socket(url, visitor) as socket:  # the visitor (and the process) carry on
            await socket.send(json.dumps({"type": "nonsense"}))
            assert json.loads(await socket.recv())["type"] == "error"

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(processes.web_program(port=port), ready_url=url + "/", log_name=f"web-big-{port}.log", env=child_env):
        asyncio.run(run(url))


def raw_request(port: int, headers: bytes) -> bytes:
    """The whole answer to a GET / with these extra header lines, read until the server closes, and
    b"<reset>" at its end if the server cut the connection while the request was still being sent."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        try:
            connection.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers + b"\r\n")
            while chunk := connection.recv(65536):
                answer += chunk
        except (ConnectionResetError, BrokenPipeError):
            answer += b"<reset>"
    return answer


@pytest.mark.django_db(transaction=True)
def test_a_header_block_past_the_limit_is_refused_as_it_arrives_and_others_are_served(child_env):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(processes.web_program(port=port), ready_url=url + "/", log_name=f"web-headers-{port}.log",
                 env=child_env):  # fmt: skip
        assert raw_request(port, b"Cookie: " + b"a" * 8000 + b"\r\n").startswith(b"HTTP/1.1 200")
        # Past the limit while still incomplete (a block that arrives whole in one read is parsed as it is):
        # answered 400, or cut off while the rest is still being sent.
        refused = raw_request(port, b"X-Big: " + b"a" * 2**20 + b"\r\n")
        assert refused.startswith(b"HTTP/1.1 400") or refused == b"<reset>", refused[:200]
        assert raw_request(port, b"").startswith(b"HTTP/1.1 200")
