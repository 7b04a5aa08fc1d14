"""The web tier under load: concurrent battles with one web process, then two, against instant-enough
scripted models, so the web tier (not the model tier) is what is measured.

A scripted OpenAI-compatible server streams 200 tokens per answer at 50 tokens/s per stream (4 s an
answer). For each level of concurrency (50, 100, 250, 500, 1000), that many visitors battle back to back
over the real WebSocket for a steady window (12 s), their first starts spread over one answer's time so
that `level` battles run at once (a closed loop: a visitor starts its next battle when one ends). Each
visitor keeps one socket for all its battles, as the page does.
Printed per level:
  battles/s       battles completed / time from the first start to the last end
  failures        battles that did not end voteable (an error, a timeout)
  told busy       starts refused at once as busy (the visitor waits the seconds it is told, then retries)
  TTFT p50/p95    "start" sent -> first delta of a side, through the arena
  added p95       arena TTFT p95 minus the scripted server's own p95, measured straight from it by a
                  stream every half second during the same window, under the same load (the baseline)
  web ms/battle   CPU seconds of the web processes during the level / battles completed
  CPU use         of the web processes, the scripted server, this driver (the load generator) and the
                  whole machine (PostgreSQL and Redis included), in cores, so it is plain which resource
                  sets the ceiling on this machine
After each level, its battles (up to 500) are voted on, half over HTTP (64 requests at a time) and half
on the visitors' sockets as the page votes, on a socket already open (64 visitors at a time): votes
recorded per second and web CPU per vote while they were cast, for each way. A level with more than 5%
failures ends that ramp (the ceiling).

Works in a PostgreSQL database of its own (created on the server DATABASE_URL names, dropped after) and the
Redis REDIS_URL names (an embedded one when unset), with the visitor budgets and the cap on sockets per address lifted.
Run: .venv/bin/python bench/load.py [--levels 50,100,250,500,1000] [--processes 1,2] [--seconds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recompute import database_recreate  # noqa: E402 (bench/ is on the path when run as a script)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(group: int) -> float:
    """User + system CPU of every live process in a process group (uvicorn's parent and its workers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy (all processes: PostgreSQL and Redis too)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def models_register(scripted_url: str) -> None:
    from inference.models import ArenaModel, Endpoint

    for name in ("load-model-a", "load-model-b"):
        model = ArenaModel.objects.create(name=name, max_new_tokens=200)
        Endpoint.objects.create(model=model, base_url=scripted_url, served_model_id="scripted", max_concurrency=100_000)


async def level_run(args, web_url: str, scripted_url: str, visitors, level: int, web_group: int, server_pid: int):
    """`level` visitors battle back to back for args.seconds (their first starts spread over one answer's
    time, so `level` battles run at once from then on): a closed-loop load at that concurrency."""
    import websockets

    from tests.load_driver import BattleResult, battle_on_socket, battle_socket, direct_first_tokens, percentile

    stagger = args.tokens / args.rate
    cpu = (group_cpu_seconds(web_group), group_cpu_seconds(server_pid), own_cpu_seconds(), machine_busy_seconds())
    loop = asyncio.get_running_loop()
    started = loop.time()
    window_end = started + stagger + args.seconds
    results: list[tuple[float, object, object]] = []  # (finished at, visitor, battle)
    refused: list[object] = []  # starts answered "busy" (the visitor then waited and tried again)

    async def visitor_loop(i: int, visitor) -> None:
        # Each visitor battles on one socket, as the page does, opening another only after a failure.
        await asyncio.sleep(i * stagger / level)
        n = 0
        socket = None
        try:
            while loop.time() < window_end:
                if socket is None:
                    try:
                        socket = await battle_socket(web_url, visitor)
                    except (TimeoutError, OSError, websockets.WebSocketException) as exc:
                        failure = BattleResult.failure(f"socket: {type(exc).__name__}: {exc}")
                        results.append((loop.time(), visitor, failure))
                        await asyncio.sleep(1)  # the visitor reloads the page
                        continue
                result = await battle_on_socket(socket, f"Load prompt {i}.{n} at level {level}")
                if result.retry_after:  # told "busy": a visitor waits as asked, then tries again
                    refused.append(result)
                    await asyncio.sleep(result.retry_after)
                    continue
                results.append((loop.time(), visitor, result))
                n += 1
                if not result.ok:
                    await socket.close()
                    socket = None
        finally:
            if socket is not None:
                await socket.close()

    async def direct_probe() -> list[float]:
        # The scripted server's own time to first token, under the same load at the same moments: one
        # stream straight to it every half second through the steady window, read to the end.
        await asyncio.sleep(stagger)
        probes = []
        while loop.time() < window_end:
            probes.append(asyncio.ensure_future(direct_first_tokens(scripted_url, 1)))
            await asyncio.sleep(0.5)
        return [t for batch in await asyncio.gather(*probes) for t in batch]

    *_, direct = await asyncio.gather(
        *(visitor_loop(i, visitor) for i, visitor in enumerate(visitors[:level])), direct_probe()
    )
    elapsed = loop.time() - started
    last_done = max((at for at, _, r in results if r.ok), default=loop.time())
    web_cpu, server_cpu, driver_cpu, machine_cpu = (
        group_cpu_seconds(web_group) - cpu[0], group_cpu_seconds(server_pid) - cpu[1], own_cpu_seconds() - cpu[2],
        machine_busy_seconds() - cpu[3],
    )  # fmt: skip
    done = [(v, r) for _, v, r in results if r.ok]
    ttfts = [t for _, _, r in results for t in r.ttft.values()]
    errors = sorted({r.error for _, _, r in results if not r.ok})
    row = {
        "level": level,
        "battles": len(results),
        # Every battle completed, over the time from the first start to the last end: at saturation, the
        # rate the web tier serves battles at.
        "battles_per_s": len(done) / (last_done - started),
        "failures": len(results) - len(done),
        "busy": len(refused),
        "ttft_p50": percentile(ttfts, 50),
        "ttft_p95": percentile(ttfts, 95),
        "added_p95": percentile(ttfts, 95) - percentile(direct, 95),
        "direct_p95": percentile(direct, 95),
        "web_ms_per_battle": 1000 * web_cpu / max(1, len(done)),
        "cores": (web_cpu / elapsed, server_cpu / elapsed, driver_cpu / elapsed, machine_cpu / elapsed),
        "elapsed": elapsed,
        "errors": errors[:3],
    }
    return row, done


async def timed(awaitable, web_group: int) -> tuple[object, float, float]:
    """Await it: its result, the seconds it took and the web processes' CPU seconds meanwhile."""
    cpu, started = group_cpu_seconds(web_group), time.perf_counter()
    result = await awaitable
    return result, time.perf_counter() - started, group_cpu_seconds(web_group) - cpu


async def votes_run(web_url, client, pairs, web_group: int) -> tuple[float, int, int, float]:
    """Vote on every battle over HTTP, 64 at a time; returns votes/s, votes recorded, votes refused or lost,
    and the web processes' CPU seconds meanwhile."""
    import httpx

    from tests.load_driver import vote_cast

    limit = asyncio.Semaphore(64)

    async def one(visitor, battle) -> int:
        async with limit:
            try:
                return (await vote_cast(client, web_url, visitor, battle)).status_code
            except httpx.TransportError:  # the connection went away: this vote did not get through
                return 0

    statuses, elapsed, cpu = await timed(asyncio.gather(*(one(v, b) for v, b in pairs)), web_group)
    recorded = statuses.count(200)
    return recorded / elapsed, recorded, len(statuses) - recorded, cpu


async def votes_on_sockets_run(web_url, pairs, web_group: int) -> tuple[float, int, int, float]:
    """Vote on every battle over its visitor's socket, as the page does: the sockets are open first (the
    page votes on the socket its battle streamed over), then the votes are timed, 64 visitors at a time,
    each voting on its battles one after another. Returns what votes_run returns."""
    from tests.load_driver import battle_socket, vote_on_socket

    by_visitor: dict[str, tuple[object, list]] = {}
    for visitor, battle in pairs:
        by_visitor.setdefault(visitor.session, (visitor, []))[1].append(battle)
    async with contextlib.AsyncExitStack() as sockets:
        opened = []
        for visitor, battles in by_visitor.values():  # one after another: not timed
            opened.append((await sockets.enter_async_context(battle_socket(web_url, visitor)), battles))
        limit = asyncio.Semaphore(64)

        async def one(socket, battles) -> int:
            async with limit:
                return sum([await vote_on_socket(socket, battle) for battle in battles])

        counts, elapsed, cpu = await timed(asyncio.gather(*(one(s, battles) for s, battles in opened)), web_group)
    recorded = sum(counts)
    return recorded / elapsed, recorded, len(pairs) - recorded, cpu


def print_row(processes: int, row: dict) -> None:
    web, server, driver, machine = row["cores"]
    print(
        f"  {processes} proc {row['level']:5d} at once: {row['battles_per_s']:6.1f} battles/s ({row['battles']} in all)  "
        f"failures {row['failures']:4d}  told busy {row['busy']:4d}  TTFT p50 {row['ttft_p50'] * 1000:7.0f} ms  p95 {row['ttft_p95'] * 1000:7.0f} ms  "
        f"added p95 {row['added_p95'] * 1000:+7.0f} ms  web {row['web_ms_per_battle']:5.1f} ms CPU/battle  "
        f"cores: web {web:.2f} scripted {server:.2f} driver {driver:.2f} machine {machine:.2f}/{os.cpu_count()}  "
        f"({row['elapsed']:.1f} s)",
        flush=True,
    )
    for error in row["errors"]:
        print(f"      e.g. {error}", flush=True)


async def ramp(args, env, scratch, scripted_url, server, processes_count):
    import httpx

    from arena import processes
    from arena.processes import free_port, wait_for_http
    from tests.load_driver import visitors_issue

    port = free_port()
    web = processes.start(
        processes.web_program(port=port, processes=processes_count),
        log_path=scratch / f"web-{processes_count}.log",
        env=env,
    )
    web_url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        wait_for_http(web_url + "/", timeout=60, process=web)
        limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            visitors = await visitors_issue(client, web_url, max(args.levels))
            # One warm-up battle per process, so imports and first connections are not timed.
            from tests.load_driver import battle_run

            await asyncio.gather(*(battle_run(web_url, v, "warm up") for v in visitors[: 2 * processes_count]))
            for level in args.levels:
                row, done = await level_run(args, web_url, scripted_url, visitors, level, web.pid, server.pid)
                print_row(processes_count, row)
                rows.append(row)
                # Then (up to --votes of) the level's battles are voted on at once: votes/s.
                # Half over HTTP (POST /api/battles/<id>/vote), half over the visitors' sockets (the page's way).
                to_vote = done[: args.votes]
                for way, votes in (("HTTP", votes_run(web_url, client, to_vote[::2], web.pid)),
                                   ("socket", votes_on_sockets_run(web_url, to_vote[1::2], web.pid))):  # fmt: skip
                    votes_per_s, recorded, refused, web_cpu = await votes
                    vote_cpu = 1000 * web_cpu / max(1, recorded)
                    row[f"votes {way}"] = (votes_per_s, recorded, refused)
                    print(
                        f"      votes ({way}): {votes_per_s:6.1f}/s ({recorded} recorded, {refused} refused or "
                        f"lost), web {vote_cpu:.1f} ms CPU per vote",
                        flush=True,
                    )
                if row["failures"] > 0.05 * row["battles"]:
                    print(f"  ceiling: more than 5% of the battles at {level} failed; stopping this ramp", flush=True)
                    break
    finally:
        processes.stop(web)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="50,100,250,500,1000")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=12.0, help="steady window per level")
    parser.add_argument("--votes", type=int, default=500, help="votes cast after each level, at most")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--db-name", default="arena_load")
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    process_counts = [int(x) for x in args.processes.split(",")]

    scratch = Path(tempfile.mkdtemp(prefix="arena-load-"))
    database_url = database_recreate(args.database_url, args.db_name)
    env = {
        **os.environ,
        "ARENA_VAR_DIR": str(scratch),
        "DJANGO_SETTINGS_MODULE": "arena.settings",
        "DATABASE_URL": database_url,
        "SHARED_STATE_PREFIX": f"load-{os.getpid()}",
        "BATTLES_PER_HOUR": "10000000",
        "ANSWERS_PER_HOUR": "10000000",
        "SESSIONS_PER_HOUR": "10000000",
        "SOCKETS_PER_ADDRESS": "0",  # every visitor here is 127.0.0.1
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    import django

    from arena import processes
    from arena.embedded_redis import embedded_redis
    from arena.processes import free_port, wait_for_http

    try:
        with embedded_redis(data_dir=scratch / "redis") as embedded_url:
            env["REDIS_URL"] = os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", embedded_url)
            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            scripted_port = free_port()
            server = processes.start(
                processes.Program(
                    name="scripted",
                    argv=processes.python_module(
                        "tests.load_driver",
                        "--port",
                        str(scripted_port),
                        "--tokens",
                        str(args.tokens),
                        "--rate",
                        str(args.rate),
                    ),  # fmt: skip
                ),
                log_path=scratch / "scripted.log",
            )
            scripted_url = f"http://127.0.0.1:{scripted_port}/v1"
            try:
                wait_for_http(scripted_url + "/models", timeout=20, process=server)
                models_register(scripted_url)
                print(
                    f"load: {args.tokens} tokens per answer at {args.rate:g} tokens/s per stream; "
                    f"{os.cpu_count()} cores; database {django.db.connection.vendor}",
                    flush=True,
                )
                results = {}
                for count in process_counts:
                    results[count] = asyncio.run(ramp(args, env, scratch, scripted_url, server, count))
            finally:
                processes.stop(server)
            summary(results)
    finally:
        from django.db import connections

        connections.close_all()
        database_recreate(args.database_url, args.db_name, drop_only=True)


def summary(results: dict[int, list[dict]]) -> None:
    print("summary (medians over the levels where they apply)")
    for count, rows in results.items():
        clean = [r for r in rows if r["failures"] == 0]
        held = max((r["level"] for r in clean), default=0)
        cpu = statistics.median(r["web_ms_per_battle"] for r in rows) if rows else float("nan")
        votes = {
            way: statistics.median(r[f"votes {way}"][0] for r in rows if f"votes {way}" in r) if rows else float("nan")
            for way in ("HTTP", "socket")
        }
        print(f"  {count} web process(es): held {held} concurrent battles with 0 failures; "
              f"web CPU per battle {cpu:.1f} ms; votes {votes['HTTP']:.0f}/s over HTTP, "
              f"{votes['socket']:.0f}/s on the sockets")  # fmt: skip
    if 1 in results and 2 in results:
        one = {r["level"]: r["battles_per_s"] for r in results[1]}
        for row in results[2]:
            if row["level"] in one:
                print(f"  level {row['level']}: two processes {row['battles_per_s'] / one[row['level']]:.2f}x "
                      "the battles/s of one")  # fmt: skip


if __name__ == "__main__":
    main()
