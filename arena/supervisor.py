"""Run the whole arena under supervisord, in one terminal: Redis (embedded unless REDIS_URL is set), one
llama.cpp or vLLM server per locally hosted endpoint, the ASGI web processes sharing one port, a Celery
worker and Celery beat. Ctrl-C stops them all.

Each program is supervised on its own (supervisord, from PyPI): a crash restarts only that program, quick
repeated deaths back off, a program supervisord gave up on is tried again every few minutes, and one that
keeps dying soon after it started is stopped and tried again likewise.

    python -m arena.supervisor                 # what `make run` does (PORT picks the web port)
    python -m arena.supervisor --print-config  # the supervisord configuration, for a production host
    python -m arena.supervisor --models-only   # just the model servers (`manage.py serve_models`)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import xmlrpc.client
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from arena.environment import envint, envport
from arena.processes import (
    BASE_DIR,
    PORT_PLACEHOLDER,
    Program,
    beat_program,
    free_port,
    port_is_free,
    redis_program,
    wait_for_http,
    web_program,
    worker_program,
)

# A program supervisord gave up on (FATAL) is started again after this long, doubling up to the cap.
RETRY_FATAL_AFTER = 30.0
RETRY_FATAL_CAP = 300.0
# A program that died this many times in a row within RETRY_FATAL_CAP of supervisord counting it started is
# held down, with the same back-off (CrashLoops).
CRASHES_BEFORE_HOLD = 3
# How often the supervisor looks at supervisord's programs (for FatalRetries and CrashLoops).
POLL_SECONDS = 5.0


def default_web_processes() -> int:
    """One web process per core, up to four (the model servers and the worker want cores too)."""
    return max(1, min(4, os.cpu_count() or 1))


def _setting(value: str) -> str:
    """A value for supervisord's ini file: its own `%(...)s` expansion needs literal percents doubled."""
    return value.replace("%", "%%")


def _has_control_character(value: str) -> bool:
    """Whether a value would break out of its line in supervisord's ini file (a line break ends a setting and
    starts lines of its own)."""
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def _program_section(program: Program, *, log_dir: Path, port: int | None) -> str:
    for arg in program.argv:
        # shlex quotes a line break but keeps it: in supervisord's ini file it would end the command and start
        # lines of its own (model servers' arguments come from the admin; inference/launch.py refuses such
        # endpoints, this is the last line of defence).
        if _has_control_character(arg):
            raise ValueError(f"program {program.name}: an argument holds a control character: {arg!r}")
    command = " ".join(shlex.quote(arg) for arg in program.argv)
    if program.socket is not None:
        header = f"[fcgi-program:{program.name}]"
        lines = [
            f"socket={program.socket.replace(PORT_PLACEHOLDER, str(port))}",
            "socket_backlog=2048",
            f"numprocs={program.processes}",
            "process_name=%(program_name)s-%(process_num)d",
        ]
        log = f"{log_dir}/{program.name}-%(process_num)d.log"
    else:
        header = f"[program:{program.name}]"
        lines = []
        log = f"{log_dir}/{program.name}.log"
    lines += [
        f"command={_setting(command)}",
        f"directory={BASE_DIR}",
        f"priority={program.priority}",
        "autostart=true",
        "autorestart=true",
        f"startsecs={program.start_seconds}",
        "startretries=8",
        f"stopsignal={program.stop_signal}",
        f"stopwaitsecs={program.stop_wait_seconds}",
        "stopasgroup=true",
        "killasgroup=true",
        "redirect_stderr=true",
        f"stdout_logfile={log}",
        "stdout_logfile_maxbytes=20MB",
        "stdout_logfile_backups=3",
    ]
    if program.env:
        pairs = ",".join(f'{key}="{_setting(value)}"' for key, value in program.env.items())
        lines.append(f"environment={pairs}")
    return "\n".join([header, *lines])


def supervisord_config(
    programs: list[Program],
    *,
    run_dir: Path,
    log_dir: Path,
    port: int | None,
    rpc_password: str,
    environment: dict[str, str] | None = None,
    notes: list[str] | None = None,
) -> str:
    """A complete supervisord configuration for these programs, logging each to log_dir. `environment`: set
    for every program (supervisord's own section); `notes`: comment lines at the top, for whoever runs it."""
    user = "user=root\n" if os.geteuid() == 0 else ""  # says so explicitly, rather than warn about it
    shared = ""
    if environment:
        for value in environment.values():
            if _has_control_character(value):
                raise ValueError(f"an environment value holds a control character: {value!r}")
        shared = "environment=" + ",".join(f'{key}="{_setting(value)}"' for key, value in environment.items()) + "\n"
    comments = "".join(f"; {note}\n" for note in notes or [])
    head = f"""{comments}[supervisord]
nodaemon=true
{shared}{user}logfile={log_dir}/supervisord.log
logfile_maxbytes=20MB
loglevel=info
pidfile={run_dir}/supervisord.pid
directory={BASE_DIR}
strip_ansi=true

[unix_http_server]
file={run_dir}/supervisor.sock
chmod=0700
username=arena
password={rpc_password}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{run_dir}/supervisor.sock
username=arena
password={rpc_password}
"""
    return head + "\n" + "\n\n".join(_program_section(p, log_dir=log_dir, port=port) for p in programs) + "\n"


def model_programs(*, for_here: bool = True) -> list[Program]:
    """One program per local model endpoint that can run here; the others are reported with the reason (on
    stderr: a printed configuration is stdout). `for_here=False` (a configuration printed for a supervisord
    to start later) leaves out the check that each port is free now: the running arena holds them."""
    import django

    django.setup()
    from inference.launch import model_servers

    programs = []
    for server in model_servers():
        reason = server.skip_reason
        if not reason and for_here and not port_is_free(server.port):
            reason = f"port {server.port} is already in use"
        if reason:
            print(f"supervisor | not starting {server.label}: {reason}", file=sys.stderr, flush=True)
        else:
            programs.append(server.program)
    return programs


def rpc(run_dir: Path, password: str):
    """supervisord's XML-RPC interface over its unix socket (`supervisorctl -c var/supervisor/supervisord.conf`
    is the same from a shell)."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport("arena", password, f"unix://{run_dir}/supervisor.sock")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


class FatalRetries:
    """When to start again a program supervisord gave up on (FATAL, after repeated quick deaths): after
    RETRY_FATAL_AFTER, then twice as long each time it gives up again, up to RETRY_FATAL_CAP. Its back-off is
    forgotten only once it has stayed up for RETRY_FATAL_CAP: a retry passes through STARTING on its way back
    to FATAL, and forgetting it there retried a crashing model server (reloading its weights each time) as
    soon as supervisord gave up on it, forever, where the back-off meant to slow it to every 5 minutes."""

    def __init__(self) -> None:
        self.waits: dict[str, float] = {}
        self.next_try: dict[str, float] = {}
        self.running_since: dict[str, float] = {}

    def due(self, states: dict[str, str], now: float) -> list[tuple[str, float]]:
        """The programs to start now, each with the wait before its next retry, given each one's state."""
        starting = []
        for name, state in states.items():
            if state == "RUNNING":
                since = self.running_since.setdefault(name, now)
                if now - since >= RETRY_FATAL_CAP:
                    self.waits.pop(name, None)
                    self.next_try.pop(name, None)
                continue
            self.running_since.pop(name, None)
            if state != "FATAL":
                continue
            wait = self.waits.setdefault(name, RETRY_FATAL_AFTER)
            if now < self.next_try.setdefault(name, now + wait):
                continue
            self.waits[name] = min(wait * 2, RETRY_FATAL_CAP)
            self.next_try[name] = now + self.waits[name]
            starting.append((name, self.waits[name]))
        return starting


class CrashLoops:
    """When to hold down, and start again, a program that keeps dying soon after supervisord counted it started
    (it outlived startsecs: a vLLM server that loads, then dies of CUDA OOM at its first request).
    supervisord's back-off covers only deaths before startsecs; later ones autorestart restarts at once,
    forever, the server reloading its weights each time and taking the CPU and GPU its siblings share. After
    CRASHES_BEFORE_HOLD such deaths it is stopped for RETRY_FATAL_AFTER, then twice as long each time it is
    held again, up to RETRY_FATAL_CAP, as FatalRetries does; the count and the back-off are forgotten only once
    a run has stayed up for RETRY_FATAL_CAP."""

    def __init__(self) -> None:
        self.starts: dict[str, int] = {}  # each program's `start` seen last (supervisord's clock): its run
        self.counted: dict[str, int] = {}  # the `start` of its last run seen RUNNING (past startsecs)
        self.crashes: dict[str, int] = {}
        self.waits: dict[str, float] = {}
        self.held_until: dict[str, float] = {}

    def review(self, infos: dict[str, dict], now: float) -> tuple[list[tuple[str, float]], list[str]]:
        """The programs to stop now, each with how long it is held down, and the held ones to start again now,
        given each one's getAllProcessInfo() entry (statename; start and now on supervisord's clock)."""
        stopping, starting = [], []
        for name, info in infos.items():
            state, start = info["statename"], info["start"]
            previous = self.starts.get(name)
            self.starts[name] = start
            # autorestart takes a program that died while RUNNING back to STARTING within a second, so a poll
            # rarely sees it EXITED: a new `start` says the run before ended. Only a run seen RUNNING counts;
            # deaths before startsecs are supervisord's own back-off (then FATAL, for FatalRetries).
            ended = previous is not None and start != previous
            crashed = ended and self.counted.get(name) == previous and start - previous < RETRY_FATAL_CAP
            if crashed:
                self.crashes[name] = self.crashes.get(name, 0) + 1
            if state == "RUNNING":
                self.counted[name] = start
                if info["now"] - start >= RETRY_FATAL_CAP:
                    self.crashes.pop(name, None)
                    self.waits.pop(name, None)
            if crashed and self.crashes[name] >= CRASHES_BEFORE_HOLD and state in ("STARTING", "RUNNING", "BACKOFF"):
                wait = self.waits.get(name, RETRY_FATAL_AFTER)
                self.waits[name] = min(wait * 2, RETRY_FATAL_CAP)
                self.held_until[name] = now + wait
                self.counted.pop(name, None)  # this run ends by our hand: its end is no crash
                stopping.append((name, wait))
            elif name in self.held_until:
                if state not in ("STOPPING", "STOPPED"):  # started by hand meanwhile: no longer ours to start
                    del self.held_until[name]
                elif state == "STOPPED" and now >= self.held_until[name]:
                    del self.held_until[name]
                    starting.append(name)
        return stopping, starting


def _retry_fatal(run_dir: Path, password: str, stopping: threading.Event) -> None:
    """Start again, with doubling back-off (FatalRetries), any program supervisord gave up on after repeated
    quick deaths (a model server whose GPU was busy, say), so one bad minute does not leave it down for good;
    and hold down, with the same back-off (CrashLoops), one that keeps dying soon after it started."""
    retries, loops = FatalRetries(), CrashLoops()
    while not stopping.wait(POLL_SECONDS):
        try:
            infos = rpc(run_dir, password).supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Fault):
            continue
        programs = {f"{info['group']}:{info['name']}": info for info in infos}
        now = time.monotonic()
        holding, releasing = loops.review(programs, now)
        for name, wait in holding:
            print(f"supervisor | {name} kept crashing soon after starting; holding it down, trying it again in "
                  f"{wait:.0f}s", flush=True)  # fmt: skip
            with contextlib.suppress(OSError, xmlrpc.client.Fault):
                rpc(run_dir, password).supervisor.stopProcess(name, False)
        for name in releasing:
            print(f"supervisor | {name} was held down; starting it again", flush=True)
            with contextlib.suppress(OSError, xmlrpc.client.Fault):
                rpc(run_dir, password).supervisor.startProcess(name, False)
        for name, wait in retries.due({name: info["statename"] for name, info in programs.items()}, now):
            print(f"supervisor | {name} had given up; starting it again (next retry in {wait:.0f}s)", flush=True)
            with contextlib.suppress(OSError, xmlrpc.client.Fault):
                rpc(run_dir, password).supervisor.startProcess(name, False)


def _stopped_with_parent() -> None:
    """In supervisord's process, before it runs: the kernel sends it SIGTERM if this supervisor dies, however
    (kill -9 included), so that it stops every program rather than holding the ports on its own (Linux's
    PR_SET_PDEATHSIG; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def arena_programs(*, var_dir: Path, env: dict, web_processes: int, port: int, for_here: bool = True) -> list[Program]:
    programs = []
    if not env.get("REDIS_URL"):
        wanted = envport("EMBEDDED_REDIS_PORT", 6390, environ=env)
        redis_port = free_port(wanted) if for_here else wanted  # printed: the port it will have, not a free one now
        (var_dir / "redis").mkdir(parents=True, exist_ok=True)
        programs.append(redis_program(port=redis_port, data_dir=var_dir / "redis", persist=True))
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    programs += model_programs(for_here=for_here)  # sets Django up
    from django.conf import settings

    programs += [
        web_program(
            host=env.get("WEB_HOST") or "127.0.0.1",
            processes=web_processes,
            proxy_headers=settings.PROXY_HEADERS,
            trusted_proxies=tuple(settings.FORWARDED_ALLOW_IPS),
        ),
        worker_program(name=f"arena-worker-{port}", concurrency=1),
        beat_program(schedule_path=var_dir / "celerybeat-schedule"),
    ]
    return programs


def emptied_metrics_dir(var_dir: Path) -> Path:
    """The directory every process writes its metrics to (a scrape adds them up, arena/metrics.py), emptied
    for a new run: always var/metrics, one the arena owns. A PROMETHEUS_MULTIPROC_DIR from the environment is
    not used: the directory is deleted whole, and a host-wide value (/tmp, a directory other programs share)
    was wiped with everything in it; another program's metrics files there would also be added to ours."""
    metrics_dir = var_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(mode=0o700, parents=True)
    return metrics_dir


def production_environment(env: dict, *, var_dir: Path) -> tuple[dict[str, str], list[str]]:
    """What a printed configuration must give every program itself, and what its reader must know. Under
    `make run` the programs inherit this supervisor's environment; a printed configuration is started by
    another supervisord, so: the embedded Redis's address (chosen here when REDIS_URL is unset: the web
    processes, the worker and beat looked for the default port and nothing was rated), and one metrics
    directory for every process (without it each scrape read whichever web process answered)."""
    environment = {}
    if env.get("REDIS_URL") and not os.environ.get("REDIS_URL"):
        environment["REDIS_URL"] = env["REDIS_URL"]
    metrics_dir = env.get("PROMETHEUS_MULTIPROC_DIR") or str(var_dir / "metrics")
    environment["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    notes = [
        "The arena under supervisord (python -m arena.supervisor --print-config); see README.md.",
        "Start it with `supervisord -c THIS_FILE` in the environment it was printed in: every program reads its "
        "settings (DATABASE_URL, REDIS_URL, ALLOWED_HOSTS, PROXY_HEADERS, the keys...) from supervisord's "
        "environment; this file sets only the variables in [supervisord] below.",
        f"Before starting it: empty {metrics_dir} and create it (every process writes its metrics there; files "
        "of an earlier run would be added in).",
        "A program supervisord gives up on (FATAL) stays down here: `supervisorctl start` it, or run "
        "`python -m arena.supervisor` instead, which starts it again after 30 s, doubling to 5 minutes.",
        "One that keeps dying after startsecs is restarted at once here, every time; `python -m arena.supervisor` "
        "holds it down after 3 such deaths within 5 minutes of starting, for 30 s doubling to 5 minutes.",
    ]
    if not env.get("DATABASE_URL"):
        notes.append(f"DATABASE_URL was not set: the programs will use SQLite in {var_dir}; set it for PostgreSQL.")
    if "REDIS_URL" in environment:
        notes.append("REDIS_URL was not set: Redis is the embedded one below; set REDIS_URL for a Redis of your own.")
    return environment, notes


def run(*, models_only: bool = False, print_config: bool = False) -> int:
    port = envport("PORT", 8000)
    var_dir = Path(os.environ.get("ARENA_VAR_DIR") or BASE_DIR / "var")  # as arena/settings.py reads it
    run_dir, log_dir = var_dir / "supervisor", var_dir / "log"
    for directory in (var_dir, run_dir, log_dir):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
    # Children get our environment without PORT and HOST: llama-cpp-python's server would read them over
    # its own flags, and the web port is in the configuration.
    env = {key: value for key, value in os.environ.items() if key not in {"PORT", "HOST"}}
    env.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    if not print_config:
        given = env.get("PROMETHEUS_MULTIPROC_DIR")
        env["PROMETHEUS_MULTIPROC_DIR"] = str(emptied_metrics_dir(var_dir))
        if given and Path(given).resolve() != Path(env["PROMETHEUS_MULTIPROC_DIR"]).resolve():
            print(f"supervisor | PROMETHEUS_MULTIPROC_DIR={given} is not used (nor touched): the arena's metrics go "
                  f"to {env['PROMETHEUS_MULTIPROC_DIR']}", flush=True)  # fmt: skip
    web_processes = envint("WEB_PROCESSES", default_web_processes(), minimum=1)
    if not models_only and not print_config and not port_is_free(port):
        print(f"supervisor | port {port} is already in use (another arena?); choose another with PORT=...")
        return 1
    from django.db import DatabaseError

    try:
        if models_only:
            programs = model_programs()
        else:
            programs = arena_programs(var_dir=var_dir, env=env, web_processes=web_processes, port=port,
                                      for_here=not print_config)  # fmt: skip
    except DatabaseError as exc:  # the model servers to run are read from the database
        print(f"supervisor | could not read the registered models from the database ({exc}); is it reachable,"
              " and migrated (`python manage.py migrate`)?", file=sys.stderr)  # fmt: skip
        return 1
    password = secrets.token_urlsafe(24)
    if print_config:
        environment, notes = production_environment(env, var_dir=var_dir)
        print(supervisord_config(programs, run_dir=run_dir, log_dir=log_dir, port=port, rpc_password=password,
                                 environment=environment, notes=notes), end="")  # fmt: skip
        return 0
    config = supervisord_config(programs, run_dir=run_dir, log_dir=log_dir, port=port, rpc_password=password)
    if not programs:
        print("supervisor | no locally hosted model can run here; nothing to serve", flush=True)
        return 0
    config_path = run_dir / "supervisord.conf"
    config_path.touch(mode=0o600)
    config_path.chmod(0o600)  # it holds the socket's password
    config_path.write_text(config)
    print(f"supervisor | logs of each program are in {log_dir}/", flush=True)
    supervisord = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(config_path)],
        cwd=BASE_DIR,
        env=env,
        start_new_session=True,  # we forward Ctrl-C ourselves, once, so it can stop everything in order
        preexec_fn=_stopped_with_parent,
    )
    stopping = threading.Event()

    def stop(*_):
        if not stopping.is_set():
            stopping.set()
            print("supervisor | stopping ...", flush=True)
            supervisord.send_signal(signal.SIGTERM)

    # Ctrl-C, a kill, the terminal closed (SIGHUP: supervisord, in a session of its own, would have gone on
    # holding every port) and Ctrl-\ (SIGQUIT) all stop everything in order.
    for stopping_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(stopping_signal, stop)
    threading.Thread(target=_retry_fatal, args=(run_dir, password, stopping), daemon=True).start()
    if not models_only:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/", timeout=120, process=supervisord)
            print(f"supervisor | the arena is up at http://127.0.0.1:{port}  (Ctrl-C stops everything)", flush=True)
        except (TimeoutError, RuntimeError) as exc:
            print(f"supervisor | the web server is not answering yet: {exc}; see {log_dir}/web-0.log", flush=True)
    while supervisord.poll() is None:
        try:
            supervisord.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            continue
    stopping.set()
    print("supervisor | stopped", flush=True)
    return 0 if supervisord.returncode in (0, -signal.SIGTERM) else supervisord.returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-config", action="store_true", help="Print the supervisord configuration and exit.")
    parser.add_argument("--models-only", action="store_true", help="Supervise only the local model servers.")
    options = parser.parse_args(argv)
    try:
        return run(models_only=options.models_only, print_config=options.print_config)
    except ImproperlyConfigured as exc:  # a setting the environment got wrong: say which, without a traceback
        print(f"supervisor | {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
