"""Run the whole arena in one terminal: Redis (embedded unless REDIS_URL is set), the model servers,
the ASGI server, a Celery worker and Celery beat. Ctrl-C stops them all cleanly.

`make run` calls this after installing and migrating; PORT picks the web port (default 8000).
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from arena.http_wait import wait_for_http

BASE_DIR = Path(__file__).resolve().parent.parent
RESTART_LIMIT = 5


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)


def _pump(name: str, stream) -> None:
    """Copy a child's output to ours, each line prefixed with the child's name."""
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:>7} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def _start(child: Child, env: dict) -> None:
    child.process = subprocess.Popen(
        child.argv, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    child.started_at = time.monotonic()
    threading.Thread(target=_pump, args=(child.name, child.process.stdout), daemon=True).start()


def _stop(child: Child, grace: float = 10.0) -> None:
    process = child.process
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_for_web(port: int, timeout: float = 60.0) -> bool:
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", timeout=timeout)
    except TimeoutError:
        return False
    return True


def run() -> int:
    from arena.embedded_redis import embedded_redis, free_port

    port = int(os.environ.get("PORT", "8000"))
    if free_port(port) != port:
        print(f"supervisor | port {port} is already in use (another arena?); choose another with PORT=...", flush=True)
        return 1
    var_dir = Path(os.environ.get("ARENA_VAR_DIR", BASE_DIR / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())

    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        if not env.get("REDIS_URL"):
            embedded_port = free_port(int(env.get("EMBEDDED_REDIS_PORT", "6390")))
            env["REDIS_URL"] = stack.enter_context(
                embedded_redis(port=embedded_port, data_dir=var_dir / "redis", persist=True)
            )
            print(f"supervisor | embedded Redis at {env['REDIS_URL']}", flush=True)
        children = [
            Child("models", [python, "manage.py", "serve_models"]),
            Child("web", [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "arena.asgi:application"]),
            Child("worker", [python, "-m", "celery", "-A", "arena", "worker", "-l", "info", "--concurrency", "1", "-n", f"arena-worker-{port}@%h"]),
            Child("beat", [python, "-m", "celery", "-A", "arena", "beat", "-l", "info", "-s", str(var_dir / "celerybeat-schedule")]),
        ]  # fmt: skip
        try:
            for child in children:
                _start(child, env)
            if _wait_for_web(port):
                print(f"supervisor | the arena is up at http://127.0.0.1:{port}  (Ctrl-C stops everything)", flush=True)
            while not stopping.wait(1.0):
                for child in children:
                    code = child.process.poll()
                    if code is None or code == 0 and child.restarts == 0 and child.name == "models":
                        # A models child that exits cleanly had nothing to serve (only remote endpoints).
                        continue
                    # One part failing degrades only that part: restart it a few times, then leave it down.
                    if child.restarts >= RESTART_LIMIT:
                        continue
                    child.restarts += 1
                    print(
                        f"supervisor | {child.name} exited with {code}; restart {child.restarts}/{RESTART_LIMIT}",
                        flush=True,
                    )
                    if stopping.wait(min(2**child.restarts, 30)):
                        break
                    _start(child, env)
        finally:
            print("supervisor | stopping ...", flush=True)
            for child in reversed(children):
                _stop(child)
            print("supervisor | stopped", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    sys.exit(run())
