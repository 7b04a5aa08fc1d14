"""Shared fixtures: the real llama.cpp servers, a real Celery worker, a real ASGI server, and personas."""

import contextlib
import http.client
import os
import statistics
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from arena import processes
from arena.processes import free_port, wait_for_http
from inference.launch import (
    bundled_gemma3_gguf,
    bundled_smollm2_gguf,
    llamacpp_program,
    model_server_env,
    wait_until_ready,
)
from inference.services import GEMMA3_SERVED_ID, NEUTRAL_SYSTEM_PROMPT, SMOLLM2_SERVED_ID

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "test-logs"


@pytest.fixture(scope="session")
def llama_servers():
    """Two real llama.cpp servers, as `make run` has them: SmolLM2-135M-Instruct, and Gemma 3 270M (base)
    prompted through the Vicuna v1.1 template file."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    specs = [
        (bundled_smollm2_gguf(), SMOLLM2_SERVED_ID, ""),
        (bundled_gemma3_gguf(ROOT / "var" / "models"), GEMMA3_SERVED_ID, "vicuna_v1.1"),
    ]
    servers = []
    try:
        for model_path, served_model_id, chat_template in specs:
            port = free_port()
            program = llamacpp_program(
                name=served_model_id, model_path=model_path, port=port, host="127.0.0.1",
                served_model_id=served_model_id, n_ctx=2048, chat_template=chat_template,
            )  # fmt: skip
            process = processes.start(program, log_path=LOG_DIR / f"llama-{port}.log", env=model_server_env())
            servers.append((f"http://127.0.0.1:{port}/v1", process))
        for base_url, process in servers:
            wait_until_ready(base_url, timeout=120, process=process)
        yield [base_url for base_url, _ in servers]
    finally:
        for _, process in servers:
            processes.stop(process)


@pytest.fixture(scope="session")
def llama_server(llama_servers):
    return llama_servers[0]


@pytest.fixture
def arena_models(llama_servers):
    """The two default arena models, pointed at the test llama.cpp servers, with short answers."""
    from inference.models import ArenaModel
    from inference.services import model_register

    smollm, gemma = llama_servers
    return [
        model_register(
            name="SmolLM2-135M-Instruct", organization="HuggingFaceTB", license="Apache-2.0", base_url=smollm,
            served_model_id=SMOLLM2_SERVED_ID, system_prompt=NEUTRAL_SYSTEM_PROMPT, max_new_tokens=24,
            hosting=ArenaModel.Hosting.LLAMACPP, port=urlsplit(smollm).port,
        ),
        model_register(
            name="Gemma-3-270M (base model)", organization="Google", license="Gemma Terms of Use", base_url=gemma,
            served_model_id=GEMMA3_SERVED_ID, chat_template="vicuna_v1.1", max_new_tokens=24,
            hosting=ArenaModel.Hosting.LLAMACPP, port=urlsplit(gemma).port,
        ),
    ]  # fmt: skip


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
    """Environment for child processes: the test database, the test Redis and this test's keys in it (so a
    web process's visitor budgets are this test's alone, not spent by every run on this machine this hour)."""
    return {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SHARED_STATE_PREFIX": settings.SHARED_STATE_PREFIX,
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def celery_worker(transactional_db, child_env):
    """A real Celery worker process consuming a queue of its own over the real Redis broker."""
    from arena.celery import app

    queue = new_task_queue()
    # child_env carries the test's shared-state prefix: the worker clears the flag the test's votes set
    # (ratings/tasks.py).
    with worker_consuming(queue, env=child_env):
        previous = app.conf.task_default_queue
        app.conf.task_default_queue = queue
        try:
            yield queue
        finally:
            app.conf.task_default_queue = previous


def new_task_queue() -> str:
    return f"arena-test-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def worker_consuming(queue: str, *, env: dict):
    """A real Celery worker process (the solo pool: one process to stop) consuming `queue`, until the end of
    the block."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    program = processes.worker_program(name=queue, queue=queue, solo=True)
    process = processes.start(program, log_path=LOG_DIR / f"worker-{queue}.log", env={**env, "CELERY_QUEUE": queue})
    try:
        yield process
    finally:
        processes.stop(process)


@contextlib.contextmanager
def serving(program: processes.Program, *, ready_url: str, log_name: str, env: dict | None = None, timeout=30):
    """A program started for a test, once `ready_url` answers; stopped afterwards, whatever happened."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    process = processes.start(program, log_path=LOG_DIR / log_name, env=env)
    try:
        wait_for_http(ready_url, timeout=timeout, process=process)
        yield process
    finally:
        processes.stop(process)


def keep_alive_request_ms(port: int, path: str, requests: int = 12) -> float:
    """The median time of a request on one keep-alive connection, past the first."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    try:
        for _ in range(requests):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            times.append(1000 * (time.perf_counter() - started))
    finally:
        connection.close()
    return statistics.median(times[1:])


@pytest.fixture
def live_arena(transactional_db, child_env, celery_worker):
    """The real ASGI server on a free port, as `make run` starts it, sharing the test database, with a real
    worker."""
    port = free_port()
    env = {**child_env, "CELERY_QUEUE": celery_worker}
    url = f"http://127.0.0.1:{port}"
    with serving(processes.web_program(port=port), ready_url=url + "/", log_name=f"web-{port}.log", env=env):
        yield url


@pytest.fixture
def scripted_api():
    from tests.scripted_api import ScriptedAPI

    with ScriptedAPI() as api:
        yield api


@pytest.fixture
async def pooled_http_closed():
    """Close the test loop's pooled HTTP session after the test (in the arena it lives as long as its
    process), so no "unclosed session" warning fires when the loop is gone."""
    yield
    from inference.client import close_pooled_client

    await close_pooled_client()


@pytest.fixture(autouse=True)
def isolated_shared_state(settings):
    """Each test's Redis keys (health, leases, rate limits) and per-process fallbacks are its own."""
    from arena import rate_limits, shared_state
    from inference import health, routing
    from inference.selectors import forget_cached_fleet

    settings.SHARED_STATE_PREFIX = f"arena-test:{uuid.uuid4().hex[:12]}"
    for module in (shared_state, rate_limits, health, routing):
        module.reset_local()
    forget_cached_fleet()
    from battles.selectors import forget_leak_detector

    forget_leak_detector()
    from ratings.services import forget_failed_votes

    forget_failed_votes()
    from django.core.cache import cache

    cache.clear()  # cached boards are keyed by ids that a fresh test database hands out again
    yield


@pytest.fixture(scope="session", autouse=True)
def isolated_task_queue():
    """Tasks queued by tests go to a queue of their own, never to a running arena's worker."""
    from arena.celery import app

    app.conf.task_default_queue = f"arena-test-{uuid.uuid4().hex[:8]}"
    yield


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's test database, dropped only once the database threads of arena/db.py and psycopg's
    pool have closed their connections: PostgreSQL refuses to drop a database in use."""
    yield
    from django.db import connections

    from arena.db import connections_close

    connections_close()
    connections.close_all()  # this thread's (pytest-django would close it just before the drop)
    for connection in connections.all():
        if hasattr(connection, "close_pool"):
            connection.close_pool()
    if connections["default"].vendor == "postgresql":
        _test_database_left_in_use(connections["default"].settings_dict["NAME"])


def _test_database_left_in_use(name: str) -> None:
    """Connections still open on the test database as it is about to be dropped: named in a warning (by
    their process, arena/settings.py's process_role), then closed, so the drop does not fail on them."""
    import warnings

    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid), application_name, state, left(query, 100) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    if rows:
        held = "; ".join(f"{app or '?'} ({state}: {query})" for _, app, state, query in rows)
        warnings.warn(f"{len(rows)} connection(s) still open on {name} at its drop, closed: {held}", stacklevel=1)
