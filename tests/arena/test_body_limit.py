"""Request bodies past Django's own limit are refused before they are read, through the real web server."""

import httpx
import pytest

from arena import processes
from arena.processes import free_port
from tests.conftest import serving

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 2_621_440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, unchanged by the arena
VOTE = "/api/battles/00000000-0000-0000-0000-000000000000/vote"


@pytest.fixture
def web(child_env):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    program = processes.web_program(port=port)
    with (
        serving(program, ready_url=url + "/", log_name=f"web-body-{port}.log", env=child_env),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        csrf = client.get("/").cookies["csrftoken"]
        client.headers.update({"X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}", "Origin": url})
        yield client


def test_a_body_declared_too_large_is_refused_in_words(web):
    response = web.post(VOTE, content=b"x" * (LIMIT + 1), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"error": "The request is too large (the limit is 2,621,440 bytes)."}


def test_a_declared_length_over_the_limit_is_answered_before_any_of_the_body_is_sent(web):
    """A 100 MB Content-Length and no body yet: the 413 comes at once (reading first would wait for it all)."""
    import socket

    host, port = web.base_url.host, web.base_url.port
    head = "".join(f"{name}: {value}\r\n" for name, value in web.headers.items() if name.lower() != "content-length")
    request = (f"POST {VOTE} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}Content-Type: application/json\r\n"
               f"Content-Length: 100000000\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(request + b"{")
        reply = b""
        while b"too large" not in reply and (piece := connection.recv(65536)):  # a timeout fails the test
            reply += piece
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    assert b"The request is too large" in reply


def test_a_body_sent_in_chunks_is_cut_off_once_past_the_limit(web):
    def chunks():  # no Content-Length: the size shows only as it arrives
        for _ in range(40):
            yield b"x" * 2**17

    response = web.post(VOTE, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "too large" in response.json()["error"]


def test_a_body_within_the_limit_reaches_the_arena(web):
    response = web.post(VOTE, content=b"x" * LIMIT, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "The request body must be JSON."}
