"""`make run`'s process supervisor, for real: every part comes up, and Ctrl-C stops every one of them."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from arena.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.llama


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_supervisor_serves_the_arena_and_ctrl_c_stops_every_process(tmp_path):
    web_port, llama_port, redis_port = free_port(), free_port(), free_port()
    while llama_port + 1 in {web_port, redis_port}:
        llama_port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        ARENA_VAR_DIR=str(tmp_path), PORT=str(web_port), LLAMACPP_BASE_PORT=str(llama_port),
        EMBEDDED_REDIS_PORT=str(redis_port), PYTHONUNBUFFERED="1",
    )  # fmt: skip
    for command in (["migrate", "--noinput"], ["models", "defaults"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    log = open(tmp_path / "supervisor.log", "wb")  # noqa: SIM115
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "arena.supervisor"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    ports = [web_port, llama_port, llama_port + 1, redis_port]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not all(listening(port) for port in ports):
            assert supervisor.poll() is None, (tmp_path / "supervisor.log").read_text()[-3000:]
            time.sleep(0.5)
        assert all(listening(port) for port in ports), (tmp_path / "supervisor.log").read_text()[-3000:]
        assert httpx.get(f"http://127.0.0.1:{web_port}/", timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{llama_port}/v1/models", timeout=10).status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and b"ready." not in (tmp_path / "supervisor.log").read_bytes():
            time.sleep(0.5)  # the Celery worker announces "... ready."

        supervisor.send_signal(signal.SIGINT)  # what Ctrl-C delivers
        assert supervisor.wait(timeout=60) == 0
        output = (tmp_path / "supervisor.log").read_text()
        assert "supervisor | stopped" in output
        assert not any(listening(port) for port in ports), output[-3000:]
        leftovers = subprocess.run(
            ["pgrep", "-f", f"--port {llama_port}|-p {web_port} "], capture_output=True, text=True
        )
        assert leftovers.stdout.strip() == ""
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        log.close()
