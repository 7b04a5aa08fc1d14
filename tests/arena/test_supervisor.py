"""`make run`'s supervision, for real: every part comes up, a killed model server or Redis is restarted on
its own while its siblings keep running, and Ctrl-C stops every process."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from arena.processes import free_port, port_is_free
from tests.conftest import keep_alive_request_ms

ROOT = Path(__file__).resolve().parents[2]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def pid_listening_on(port: int) -> int | None:
    """The pid of the llama.cpp server started for this port (its command line names the port), if any."""
    found = subprocess.run(["pgrep", "-f", f"llama.*--port {port}( |$)"], capture_output=True, text=True)
    pids = [int(pid) for pid in found.stdout.split()]
    assert len(pids) <= 1, found.stdout
    return pids[0] if pids else None


def wait_until(condition, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(log.read_text()[-4000:])


def test_a_database_not_migrated_yet_is_said_plainly(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["ARENA_VAR_DIR"] = str(tmp_path)  # an empty SQLite database there
    run = subprocess.run([sys.executable, "-m", "arena.supervisor", "--print-config"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 1
    assert "could not read the registered models from the database (no such table" in run.stderr
    assert "python manage.py migrate" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.django_db
def test_a_printed_configuration_gives_every_program_the_redis_and_metrics_directory_it_chose(tmp_path, child_env):
    """A printed configuration is started by another supervisord: the embedded Redis's port, chosen when it was
    printed, never reached the web processes, the worker or beat (they looked for 6390; nothing was rated)."""
    from configparser import RawConfigParser

    redis_port = free_port()
    env = {key: value for key, value in child_env.items() if key not in {"REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"}}
    env.update(ARENA_VAR_DIR=str(tmp_path), EMBEDDED_REDIS_PORT=str(redis_port), WEB_HOST="0.0.0.0")
    run = subprocess.run([sys.executable, "-m", "arena.supervisor", "--print-config"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    config = RawConfigParser()
    config.read_string(run.stdout)
    shared = config.get("supervisord", "environment")
    assert f'REDIS_URL="redis://127.0.0.1:{redis_port}/0"' in shared
    assert f'PROMETHEUS_MULTIPROC_DIR="{tmp_path / "metrics"}"' in shared
    assert f"--port {redis_port}" in config.get("program:redis", "command")
    assert config.get("fcgi-program:web", "socket").startswith("tcp://0.0.0.0:")  # WEB_HOST: a proxy elsewhere
    assert "(FATAL) stays down here" in run.stdout
    assert "Start it with `supervisord -c THIS_FILE` in the environment it was printed in" in run.stdout


def test_a_configuration_printed_without_database_url_says_its_programs_will_use_sqlite(tmp_path):
    """Started by an init system without DATABASE_URL, the programs quietly fell back to SQLite in var/."""
    from arena.supervisor import production_environment

    _, notes = production_environment({"REDIS_URL": "redis://db:6379/0"}, var_dir=tmp_path)
    assert f"DATABASE_URL was not set: the programs will use SQLite in {tmp_path}; set it for PostgreSQL." in notes
    _, notes = production_environment({"DATABASE_URL": "postgresql://db/arena"}, var_dir=tmp_path)
    assert not any("SQLite" in note for note in notes)


@pytest.mark.django_db(transaction=True)
def test_a_configuration_printed_while_the_arena_runs_keeps_its_model_servers_and_stays_readable(tmp_path, child_env):
    """Printed on a host where the arena runs (its model servers hold their ports) or where a model is skipped,
    the notes went to stdout ahead of the configuration (supervisord cannot read it), and every model server
    whose port was in use was left out."""
    import socket
    from configparser import RawConfigParser

    from inference.services import default_models_register, model_register

    with socket.socket() as running_server:
        running_server.bind(("127.0.0.1", 0))
        running_server.listen()
        port = running_server.getsockname()[1]
        default_models_register(base_port=port)  # SmolLM2's server "running" on its port
        model_register(
            name="vicuna-7b",
            base_url="http://127.0.0.1:8100/v1",
            served_model_id="vicuna-7b",
            hosting="vllm",
            weights="lmsys/vicuna-7b-v1.5",
            port=8100,
        )  # skipped: no vLLM/GPU here
        env = {key: value for key, value in child_env.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
        env.update(ARENA_VAR_DIR=str(tmp_path))
        run = subprocess.run([sys.executable, "-m", "arena.supervisor", "--print-config"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    config = RawConfigParser()
    config.read_string(run.stdout)  # no note ahead of the first section
    commands = [config.get(section, "command") for section in config.sections() if section.startswith("program:model")]
    assert any(f"--port {port}" in command for command in commands), commands
    assert "not starting vicuna-7b" in run.stderr


def test_a_run_empties_only_its_own_metrics_directory_never_one_named_in_the_environment(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR set host-wide (/tmp, say) was deleted whole by `make run`."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "someone-elses.txt").write_text("kept")
    stale = tmp_path / "var" / "metrics" / "counter_123.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from the last run")
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(ARENA_VAR_DIR=str(tmp_path / "var"), PROMETHEUS_MULTIPROC_DIR=str(shared))
    # An empty SQLite database: the run stops at reading the models, after preparing the metrics directory.
    run = subprocess.run([sys.executable, "-m", "arena.supervisor", "--models-only"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "could not read the registered models" in run.stderr, run.stdout + run.stderr
    assert (shared / "someone-elses.txt").read_text() == "kept"
    assert stale.parent.is_dir() and not stale.exists()
    assert f"PROMETHEUS_MULTIPROC_DIR={shared} is not used" in run.stdout


@pytest.mark.llama
def test_each_part_is_supervised_on_its_own_and_ctrl_c_stops_every_process(tmp_path):
    web_port, llama_port, redis_port = free_port(), free_port(), free_port()
    # Both model ports must be free: free_port vouches only for the first (the second may be a client's
    # ephemeral port right now).
    while {llama_port, llama_port + 1} & {web_port, redis_port} or not port_is_free(llama_port + 1):
        llama_port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        ARENA_VAR_DIR=str(tmp_path), PORT=str(web_port), LLAMACPP_BASE_PORT=str(llama_port),
        EMBEDDED_REDIS_PORT=str(redis_port), PYTHONUNBUFFERED="1", WEB_PROCESSES="2",
    )  # fmt: skip
    for command in (["migrate", "--noinput"], ["models", "defaults"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    log_path = tmp_path / "supervisor.log"
    log = open(log_path, "wb")  # noqa: SIM115
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "arena.supervisor"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    ports = [web_port, llama_port, llama_port + 1, redis_port]
    try:
        wait_until(lambda: all(listening(port) for port in ports), 90, log_path)
        assert httpx.get(f"http://127.0.0.1:{web_port}/", timeout=10).status_code == 200
        for port in (llama_port, llama_port + 1):
            assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).status_code == 200
        wait_until(lambda: b"success: worker entered RUNNING" in log_path.read_bytes(), 60, log_path)
        assert log_path.read_bytes().count(b"spawned: 'web-") == 2  # two web processes on one port
        # On supervisord's socket too, no response waits for the visitor's acknowledgement (Nagle's algorithm).
        assert keep_alive_request_ms(web_port, "/static/arena/site.css") < 20

        # kill -9 one model server: only it comes back; its sibling never stops.
        killed, sibling = pid_listening_on(llama_port), pid_listening_on(llama_port + 1)
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: pid_listening_on(llama_port) not in (None, killed) and listening(llama_port), 60, log_path)
        assert pid_listening_on(llama_port + 1) == sibling
        assert httpx.get(f"http://127.0.0.1:{llama_port}/v1/models", timeout=10).status_code == 200

        # The embedded Redis is supervised too.
        redis_pid = int(subprocess.run(["pgrep", "-f", f"redis-server.*{redis_port}"], capture_output=True,
                                       text=True).stdout.split()[0])  # fmt: skip
        os.kill(redis_pid, signal.SIGKILL)
        wait_until(lambda: b"exited: redis (terminated by SIGKILL" in log_path.read_bytes(), 10, log_path)
        wait_until(lambda: listening(redis_port), 30, log_path)

        supervisor.send_signal(signal.SIGINT)  # what Ctrl-C delivers
        assert supervisor.wait(timeout=90) == 0
        output = log_path.read_text()
        assert "supervisor | stopped" in output
        assert not any(listening(port) for port in ports), output[-3000:]
        leftovers = subprocess.run(
            ["pgrep", "-f", f"--port {llama_port}|--port {llama_port + 1}|{tmp_path}"], capture_output=True, text=True
        )
        assert leftovers.stdout.strip() == ""
    finally:
        if supervisor.poll() is None:  # the test failed midway: stop it as Ctrl-C would, so nothing is orphaned
            supervisor.send_signal(signal.SIGINT)
            try:
                supervisor.wait(timeout=60)
            except subprocess.TimeoutExpired:
                supervisor.kill()
        log.close()


@pytest.mark.parametrize("ending", ["terminal closed (SIGHUP)", "supervisor killed (SIGKILL)"])
def test_the_arena_stops_whole_when_its_terminal_closes_or_its_supervisor_is_killed(tmp_path, ending):
    """supervisord runs in a session of its own: the terminal's SIGHUP, or a kill -9 of the supervisor, left it
    running every program, each port taken, and the next `make run` refused ("port already in use")."""
    web_port, redis_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(ARENA_VAR_DIR=str(tmp_path), PORT=str(web_port), EMBEDDED_REDIS_PORT=str(redis_port),
               PYTHONUNBUFFERED="1", WEB_PROCESSES="1")  # fmt: skip
    # No models registered: the web tier, the worker, beat and Redis start in seconds.
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    log_path = tmp_path / "supervisor.log"
    with open(log_path, "wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "arena.supervisor"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_until(lambda: listening(web_port) and listening(redis_port), 90, log_path)
            wait_until(lambda: b"success: worker entered RUNNING" in log_path.read_bytes(), 60, log_path)
            supervisor.send_signal(signal.SIGHUP if "SIGHUP" in ending else signal.SIGKILL)
            supervisor.wait(timeout=60)
            wait_until(lambda: not listening(web_port) and not listening(redis_port), 60, log_path)
            # ... and no process of this arena is left (each names its var directory on its command line).
            wait_until(lambda: not subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True).stdout, 30,
                       log_path)  # fmt: skip
        finally:
            if supervisor.poll() is None:
                supervisor.send_signal(signal.SIGINT)
                supervisor.wait(timeout=60)
            subprocess.run(["pkill", "-f", str(tmp_path)], capture_output=True)  # whatever the test left


def test_a_line_break_in_a_programs_arguments_never_reaches_supervisords_configuration(tmp_path):
    """shlex quotes a line break but keeps it: in supervisord's ini file it would start a section of its own."""
    from arena.processes import Program
    from arena.supervisor import _program_section

    evil = Program(name="model-1", argv=["python", "-m", "llama_cpp.server", "--model_alias", "x\n[program:evil]"])
    with pytest.raises(ValueError, match="control character"):
        _program_section(evil, log_dir=tmp_path, port=None)


def test_a_program_that_keeps_giving_up_is_retried_ever_more_slowly_and_forgiven_only_after_staying_up():
    """A retry passes through STARTING on its way back to FATAL: its back-off used to be forgotten there, so a
    crashing model server was started again as soon as supervisord gave up on it, forever."""
    from arena.supervisor import RETRY_FATAL_AFTER, RETRY_FATAL_CAP, FatalRetries

    retries, name, now, started = FatalRetries(), "models:model-1", 0.0, []
    while now < 1800:
        state = "FATAL" if not started or now - started[-1] > 40 else "STARTING"  # it dies again within 40 s
        if retries.due({name: state}, now):
            started.append(now)
        now += 5
    gaps = [b - a for a, b in zip(started, started[1:], strict=False)]
    assert started[0] == RETRY_FATAL_AFTER
    assert gaps[:4] == [60, 120, 240, 300] and set(gaps[4:]) == {RETRY_FATAL_CAP}
    # Once it has stayed up long enough, a later fall starts from the shortest wait again.
    retries.due({name: "RUNNING"}, now)
    retries.due({name: "RUNNING"}, now + RETRY_FATAL_CAP)
    assert retries.due({name: "FATAL"}, now + RETRY_FATAL_CAP + 1) == []
    assert retries.due({name: "FATAL"}, now + RETRY_FATAL_CAP + 1 + RETRY_FATAL_AFTER) == [
        (name, 2 * RETRY_FATAL_AFTER)
    ]


def crash_loop(loops, *, lives, start_seconds=10, until=3600):
    """Polls CrashLoops every 5 s, as the supervisor does, over a program that supervisord restarts at once
    whenever it dies: the nth run (0-based) lives `lives(n)` seconds, counted started after start_seconds.
    Returns when it was held down (with the wait announced) and when it was started again."""
    name, start, runs, stopped, held, restarted = "models:model-1", 0, 0, False, [], []
    for now in range(0, until, 5):
        while not stopped and now - start >= lives(runs):
            start, runs = start + lives(runs), runs + 1
        state = "STOPPED" if stopped else "RUNNING" if now - start >= start_seconds else "STARTING"
        stopping, starting = loops.review({name: {"statename": state, "start": start, "now": now}}, float(now))
        if stopping:
            stopped = True
            held.append((now, stopping[0][1]))
        if starting:
            stopped, start, runs = False, now, runs + 1
            restarted.append(now)
    return held, restarted


def test_a_program_that_keeps_crashing_soon_after_starting_is_held_down_ever_longer_and_forgiven_after_staying_up():
    """supervisord's back-off covers only deaths before startsecs: a model server that loaded, was counted
    started, then died (CUDA OOM at its first request) was restarted at once, forever, reloading its weights."""
    from arena.supervisor import CRASHES_BEFORE_HOLD, RETRY_FATAL_AFTER, RETRY_FATAL_CAP, CrashLoops

    loops = CrashLoops()
    held, restarted = crash_loop(loops, lives=lambda run: 20, until=1800)  # up at 10 s, dead at 20 s
    assert held[0] == (CRASHES_BEFORE_HOLD * 20, RETRY_FATAL_AFTER)  # its third death
    gaps = [again - at for (at, _), again in zip(held, restarted, strict=False)]
    assert gaps[:4] == [30, 60, 120, 240] and set(gaps[4:]) == {RETRY_FATAL_CAP}
    assert [wait for _, wait in held][: len(gaps)] == gaps  # the line says when it is tried again
    # Held again at the first death after each retry, not only after three more.
    assert all(at == again + 20 for (at, _), again in zip(held[1:], restarted, strict=False))
    # Counted started before a poll sees its new run (startsecs 1, as Redis): the run stopped to hold it down
    # ended by the supervisor's hand, so starting it again is no crash.
    held, restarted = crash_loop(CrashLoops(), lives=lambda run: 12, start_seconds=1, until=200)
    assert held[:2] == [(40, RETRY_FATAL_AFTER), (restarted[0] + 15, 2 * RETRY_FATAL_AFTER)]

    # Once a run stays up for RETRY_FATAL_CAP it is forgiven: held again only at its third quick death after,
    # for the shortest wait. Runs 0-2 die, run 3 is stopped at 60 s, run 4 (started at 90 s) stays up.
    held, restarted = crash_loop(CrashLoops(), lives=lambda run: RETRY_FATAL_CAP + 10 if run == 4 else 20)
    assert held[:2] == [(60, RETRY_FATAL_AFTER), (90 + RETRY_FATAL_CAP + 10 + 3 * 20, RETRY_FATAL_AFTER)]


def test_a_program_that_crashes_after_a_long_run_or_before_counting_as_started_is_never_held_down():
    from arena.supervisor import RETRY_FATAL_CAP, CrashLoops

    # Each run up longer than RETRY_FATAL_CAP: restarted at once by supervisord, as ever.
    assert crash_loop(CrashLoops(), lives=lambda run: RETRY_FATAL_CAP + 20) == ([], [])
    # Two quick deaths in a row, then a long run: still not held.
    assert crash_loop(CrashLoops(), lives=lambda run: 20 if run % 3 < 2 else RETRY_FATAL_CAP + 20) == ([], [])
    # Dying before startsecs is supervisord's own back-off (BACKOFF, then FATAL for FatalRetries).
    assert crash_loop(CrashLoops(), lives=lambda run: 5, start_seconds=10) == ([], [])


def test_a_program_started_by_hand_while_held_down_is_then_left_to_whoever_started_it():
    from arena.supervisor import RETRY_FATAL_AFTER, CrashLoops

    loops, name = CrashLoops(), "models:model-1"

    def review(state, start, now):
        return loops.review({name: {"statename": state, "start": start, "now": now}}, float(now))

    for start in (0, 20, 40):
        review("RUNNING", start, start + 15)
    assert review("STARTING", 60, 60) == ([(name, RETRY_FATAL_AFTER)], [])
    review("RUNNING", 70, 70)  # `supervisorctl start`
    assert review("STOPPED", 70, 60 + RETRY_FATAL_AFTER) == ([], [])  # `supervisorctl stop`: it stays stopped


def test_supervisord_holds_down_a_program_that_keeps_crashing_after_it_started_instead_of_restarting_it_forever(
    monkeypatch, capsys
):
    """For real: a program that dies 3 s after each start (counted started after 1 s) is stopped after its third
    death, started again once its wait is over, and held again, twice as long, at its next death. Its wait is
    5 s here, not 30, and the supervisor looks every 0.25 s, not 5."""
    import tempfile
    import threading

    from arena import supervisor
    from arena.processes import Program

    monkeypatch.setattr(supervisor, "POLL_SECONDS", 0.25)
    monkeypatch.setattr(supervisor, "RETRY_FATAL_AFTER", 5.0)
    # Stopped within 1 s: a SIGTERM that reaches supervisord's fork before it has exec'd the program is lost,
    # and supervisord waits stopwaitsecs (10 s by default) before SIGKILL (seen on a busy machine).
    crasher = Program(name="crasher", argv=[sys.executable, "-c", "import time; time.sleep(3); exit(1)"],
                      start_seconds=1, stop_wait_seconds=1)  # fmt: skip
    output = []

    def printed(text: str) -> bool:
        output.append(capsys.readouterr().out)
        return text in "".join(output)

    # A short directory: a unix socket's path must fit in 108 bytes.
    with tempfile.TemporaryDirectory(prefix="arena-sup-") as directory:
        run_dir = Path(directory)
        config = run_dir / "supervisord.conf"
        config.write_text(supervisor.supervisord_config([crasher], run_dir=run_dir, log_dir=run_dir, port=None,
                                                        rpc_password="test"))  # fmt: skip
        supervisord = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-c", str(config)], cwd=ROOT)
        stopping = threading.Event()
        watcher = threading.Thread(target=supervisor._retry_fatal, args=(run_dir, "test", stopping))
        log = run_dir / "supervisord.log"
        try:
            watcher.start()

            def info():
                return supervisor.rpc(run_dir, "test").supervisor.getProcessInfo("crasher:crasher")

            held = "crasher:crasher kept crashing soon after starting; holding it down, trying it again in 5s"
            wait_until(lambda: printed(held), 25, log)
            wait_until(lambda: info()["statename"] == "STOPPED", 5, log)
            spawns = log.read_text().count("spawned: 'crasher'")
            assert spawns == 4  # three deaths after starting; the fourth run stopped by the supervisor
            time.sleep(1.5)  # held down: supervisord does not start it meanwhile
            assert info()["statename"] == "STOPPED" and log.read_text().count("spawned: 'crasher'") == spawns

            wait_until(lambda: printed("crasher:crasher was held down; starting it again"), 10, log)
            wait_until(lambda: printed("holding it down, trying it again in 10s"), 10, log)  # its next death
        finally:
            stopping.set()
            watcher.join(timeout=5)
            supervisord.terminate()
            supervisord.wait(timeout=30)
