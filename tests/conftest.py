"""Shared fixtures: the real llama.cpp servers, a real Celery worker, a real ASGI server, and personas."""

import os
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from arena.embedded_redis import free_port
from arena.http_wait import wait_for_http
from inference.launch import (
    bundled_smollm2_gguf,
    llamacpp_command,
    model_server_env,
    start_process,
    stop_process,
    wait_until_ready,
)
from inference.services import SMOLLM2_SERVED_ID

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "test-logs"


@pytest.fixture(scope="session")
def llama_servers():
    """Two real llama.cpp servers on the bundled SmolLM2-135M, one per arena side (as `make run` has)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    servers = []
    try:
        for _ in range(2):
            port = free_port()
            argv = llamacpp_command(
                model_path=bundled_smollm2_gguf(), port=port, host="127.0.0.1",
                served_model_id=SMOLLM2_SERVED_ID, n_ctx=2048,
            )  # fmt: skip
            process = start_process(argv, log_path=LOG_DIR / f"llama-{port}.log", env=model_server_env())
            servers.append((f"http://127.0.0.1:{port}/v1", process))
        for base_url, process in servers:
            wait_until_ready(base_url, timeout=120, process=process)
        yield [base_url for base_url, _ in servers]
    finally:
        for _, process in servers:
            stop_process(process)


@pytest.fixture(scope="session")
def llama_server(llama_servers):
    return llama_servers[0]


@pytest.fixture
def arena_models(llama_servers):
    """The two default arena models, pointed at the test llama.cpp servers."""
    from inference.services import model_register

    return [
        model_register(
            name=name,
            organization="HuggingFaceTB",
            license="Apache-2.0",
            base_url=base_url,
            served_model_id=SMOLLM2_SERVED_ID,
            temperature=temperature,
            max_new_tokens=24,
            system_prompt="You are a helpful assistant.",
        )  # fmt: skip
        for name, temperature, base_url in [
            ("smol-precise", 0.2, llama_servers[0]),
            ("smol-creative", 0.9, llama_servers[1]),
        ]
    ]


def shared_database_url() -> str:
    """A DATABASE_URL naming the test database, for child processes (worker, web server) to share it."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture
def child_env():
    """Environment for child processes: the test database, the test Redis, this queue."""
    return {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def celery_worker(transactional_db, child_env):
    """A real Celery worker process consuming a queue of its own over the real Redis broker."""
    from arena.celery import app

    queue = f"arena-test-{uuid.uuid4().hex[:8]}"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "celery", "-A", "arena", "worker", "-P", "solo", "-Q", queue, "-l", "info",
            "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    process = start_process(argv, log_path=LOG_DIR / f"worker-{queue}.log", env={**child_env, "CELERY_QUEUE": queue})
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        app.conf.task_default_queue = previous
        stop_process(process)


@pytest.fixture
def live_arena(transactional_db, child_env, celery_worker):
    """The real ASGI server (Daphne) on a free port, sharing the test database, with a real worker."""
    port = free_port()
    env = {**child_env, "CELERY_QUEUE": celery_worker}
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "arena.asgi:application"]
    process = start_process(argv, log_path=LOG_DIR / f"daphne-{port}.log", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/", timeout=30, process=process)
        yield url
    finally:
        stop_process(process)


@pytest.fixture
def scripted_api():
    from tests.scripted_api import ScriptedAPI

    with ScriptedAPI() as api:
        yield api


@pytest.fixture(scope="session", autouse=True)
def isolated_task_queue():
    """Tasks queued by tests go to a queue of their own, never to a running arena's worker."""
    from arena.celery import app

    app.conf.task_default_queue = f"arena-test-{uuid.uuid4().hex[:8]}"
    yield
