"""Metrics for operators, in Prometheus format (prometheus-client), at /metrics.

Counters and histograms are kept by each process; with several web processes and a worker, each writes
them to PROMETHEUS_MULTIPROC_DIR (the supervisor sets it to var/metrics/ and empties it at start) and a
scrape adds them up. Figures that the database knows exactly (votes, the rating backlog) are read from it
at scrape time. Labels name models and endpoints: /metrics is for staff, a bearer token, or loopback only.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

BATTLES_STARTED = Counter("arena_battles_started_total", "Battles started (first turn accepted).")
TURNS_FINISHED = Counter(
    "arena_turns_finished_total", "Turns that ended, by whether they can be voted on.", ["voteable"]
)
SIDES_FINISHED = Counter(
    "arena_sides_finished_total", "Answers that ended, by outcome (done, or the kind of failure).", ["model", "outcome"]
)
BUSY_REFUSALS = Counter(
    "arena_busy_refusals_total",
    "Starts refused at once: the models were at capacity, or the web process was.",
    ["reason"],
)
SOCKETS_REFUSED = Counter(
    "arena_sockets_refused_total", "WebSocket handshakes refused: the address held SOCKETS_PER_ADDRESS open."
)
FAILOVERS = Counter("arena_failovers_total", "Streams moved to another replica before their first token.", ["model"])
SIDE_RESTARTS = Counter("arena_side_restarts_total", "Answers restarted on another replica after a cut.", ["model"])
TTFT = Histogram(
    "arena_ttft_seconds", "Time to first token per stream.", ["model", "endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)  # fmt: skip
TOKENS_PER_SECOND = Histogram(
    "arena_tokens_per_second", "Streaming speed after the first token.", ["model", "endpoint"],
    buckets=(1, 2, 5, 10, 20, 40, 80, 160, 320),
)  # fmt: skip
LOOP_LAG = Gauge(
    "arena_event_loop_lag_seconds", "How late each web process's event loop runs (smoothed; the largest).",
    multiprocess_mode="livemax",
)  # fmt: skip
CPU_BUSY = Gauge(
    "arena_web_cpu_busy", "CPU each web process uses, in cores (smoothed over about a second; the largest).",
    multiprocess_mode="livemax",
)  # fmt: skip
TURN_DELAY = Gauge(
    "arena_turn_delay_seconds",
    "Each web process's own delay before a turn can ask the models (mean of the last 2 s; the largest).",
    multiprocess_mode="livemax",
)
IN_FLIGHT = Gauge(
    "arena_streams_in_flight", "Answers streaming now, per process (summed over live processes).", ["model"],
    multiprocess_mode="livesum",
)  # fmt: skip


# Collectors of figures read from the database at scrape time, by name, each registered by the app that owns
# its figures (ratings/apps.py: the votes by state and the rating lag): this base module imports no app.
DATABASE_COLLECTORS: dict[str, object] = {}


def register_database_collector(name: str, collector) -> None:
    """Add a prometheus_client collector (an object with `collect()`) to every scrape, once per name."""
    DATABASE_COLLECTORS[name] = collector


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def forget_dead_processes(directory: str) -> list[int]:
    """Drop the live gauges (lag, CPU, in-flight streams, turn delay) of processes that are gone: kept, a
    web process that crashed or was killed under load reported its last values in every scrape until the
    next `make run` (an alert stuck on). prometheus-client leaves this to the caller (mark_process_dead);
    supervisord restarts processes without telling anyone, so each scrape looks. Returns the pids dropped."""
    gone = set()
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            gone.add(int(pid))
    for pid in gone:
        mark_process_dead(pid, directory)
    return sorted(gone)


def exposition() -> bytes:
    """The text a Prometheus scrape reads: every process's metrics plus the database's figures."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        forget_dead_processes(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        MultiProcessCollector(registry)
        output = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        output = generate_latest(REGISTRY)
    database = CollectorRegistry()
    for collector in DATABASE_COLLECTORS.values():
        database.register(collector)
    return output + generate_latest(database)
