"""Benchmark: import the real 1,670,250 battles into PostgreSQL and recompute a full leaderboard snapshot.

Run: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/recompute.py [--rounds 1000]

Works in a database of its own (`arena_bench` by default), created fresh on the server DATABASE_URL
names and dropped afterwards (`--keep` keeps it); the database DATABASE_URL names is never touched.

Figures and their baselines:
- import: `services.battles_import` (bulk, O(pairs)) against a straightforward per-pair loop
  (get_or_create + F() update for every pair, run in a transaction that is rolled back);
- recompute: `services.leaderboard_recompute` (DB read + engine + insert) against the engine alone on
  the same counts read from the file, i.e. the database's overhead; and against the beat interval;
- serving: /api/leaderboard and /leaderboard for the 129-model snapshot;
- online Elo: `services.vote_rate` per vote.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "data" / "chatbot-arena-20240814" / "pair_counts.json"
ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)


def database_recreate(url: str, name: str, *, drop_only: bool = False) -> str:
    """Drop and (unless drop_only) create database `name` on the server of `url`; returns its URL."""
    import psycopg

    parts = urlsplit(url)
    if parts.path.strip("/") == name:
        raise SystemExit(f"Refusing to use {name!r}: it is the database DATABASE_URL names.")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name))


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="Timed recomputes (the best is reported).")
    parser.add_argument("--votes", type=int, default=300, help="Votes to rate for the online Elo figure.")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--db-name", default="arena_bench")
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database afterwards.")
    args = parser.parse_args()

    bench_url = database_recreate(args.database_url, args.db_name)
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    import django

    django.setup()
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            database_recreate(args.database_url, args.db_name, drop_only=True)


def run(args) -> None:
    import numpy as np
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import F
    from django.test import Client
    from django.test.utils import override_settings
    from tqdm import tqdm

    from battles.models import Battle, Vote
    from inference.models import ArenaModel
    from ratings import battle_logs, charts, selectors, services
    from ratings.engine.leaderboard import compute_leaderboard
    from ratings.models import LeaderboardSnapshot, PairCount

    call_command("migrate", verbosity=0)
    print(f"PostgreSQL {connection.pg_version / 10000:.1f}, database {args.db_name}; data {DATA.name}")

    # Import
    log, parse_seconds = timed(battle_logs.read_battle_log, DATA)
    record, import_seconds = timed(services.battles_import, path=DATA)
    assert record.battle_count == 1_670_250 and PairCount.objects.count() == 3460
    names = dict(ArenaModel.objects.values_list("name", "id"))

    def naive_import() -> None:
        with transaction.atomic():
            for (a, b), row in zip(log.counts.pairs.tolist(), log.counts.counts.tolist(), strict=True):
                pair, _ = PairCount.objects.get_or_create(
                    model_a_id=names[log.counts.models[a]], model_b_id=names[log.counts.models[b]]
                )
                PairCount.objects.filter(pk=pair.pk).update(
                    a_wins=F("a_wins") + row[0], b_wins=F("b_wins") + row[1], ties=F("ties") + row[2],
                    both_bad=F("both_bad") + row[3],
                )  # fmt: skip
            transaction.set_rollback(True)

    _, naive_seconds = timed(naive_import)
    print(f"\nimport {record.battle_count:,} battles / {record.model_count} models / 3,460 pairs")
    print(
        f"  battles_import (bulk):          {import_seconds:7.2f} s   (of which reading the file {parse_seconds:.2f} s)"
    )
    print(
        f"  baseline per-pair loop:         {naive_seconds:7.2f} s   ratio {naive_seconds / import_seconds:.1f}x slower"
    )

    # Recompute: best of --repeat runs each, as other work on the machine adds noise.
    recompute_times, engine_times = [], []
    for attempt in range(args.repeat):
        LeaderboardSnapshot.objects.all().delete()  # otherwise an unchanged recompute adds (and costs) nothing
        with tqdm(total=args.rounds, desc=f"snapshot bootstrap {attempt + 1}", unit="round") as bar:
            snapshot, seconds = timed(
                services.leaderboard_recompute, rounds=args.rounds, seed=args.seed, anchor=ANCHOR,
                progress=lambda done, total: bar.update(done - bar.n),
            )  # fmt: skip
        recompute_times.append(seconds)
        with tqdm(total=args.rounds, desc=f"engine alone       {attempt + 1}", unit="round") as bar:
            board, seconds = timed(
                compute_leaderboard, log.counts, rounds=args.rounds, seed=args.seed, anchor=ANCHOR,
                progress=lambda done, total: bar.update(done - bar.n),
            )  # fmt: skip
        engine_times.append(seconds)
    recompute_seconds, engine_seconds = min(recompute_times), min(engine_times)
    unchanged, unchanged_seconds = timed(
        services.leaderboard_recompute, rounds=args.rounds, seed=args.seed, anchor=ANCHOR
    )
    assert not unchanged.is_new
    by_name = {row["name"]: row for row in board["models"]}
    largest = max(
        max(abs(row[key] - by_name[row["name"]][key]) for key in ("rating", "ci_lower", "ci_upper"))
        for row in snapshot.rows
    )
    _, read_seconds = timed(selectors.pair_counts_load)
    from django.conf import settings

    print(
        f"\nsnapshot recompute, {args.rounds} bootstrap rounds, seed {args.seed}, anchor {ANCHOR[0]}={ANCHOR[1]:g}, best of {args.repeat}"
    )
    print(
        f"  leaderboard_recompute:          {recompute_seconds:7.2f} s   (snapshot #{snapshot.pk}, {len(snapshot.rows)} models)"
    )
    print(f"    of which reading PairCount:   {read_seconds:7.3f} s")
    print(f"    of which robustness of top 10:{snapshot.extras['robustness']['compute_seconds']:7.2f} s")
    print(f"    category boards in it:        {len(snapshot.categories):7d}   (the imported battles are unlabelled)")
    print(f"  recompute with nothing changed: {unchanged_seconds:7.2f} s   (no new snapshot)")
    print(
        f"  baseline engine alone (file):   {engine_seconds:7.2f} s   ratio {recompute_seconds / engine_seconds:.2f}x"
    )
    print(
        f"  beat interval:                  {settings.LEADERBOARD_RECOMPUTE_INTERVAL:7d} s   uses {recompute_seconds / settings.LEADERBOARD_RECOMPUTE_INTERVAL:.1%} of it"
    )
    print(f"  largest difference DB vs file:  {largest:.2e} Elo points")
    top = snapshot.rows[0]
    print(f"  top: {top['name']} {top['rating']:.1f} [{top['ci_lower']:.1f}, {top['ci_upper']:.1f}]")

    # Serving
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        from django.core.cache import cache

        client = Client()
        client.get("/api/leaderboard"), client.get("/leaderboard")  # warm (templates, plotly validators)

        def built(url):  # a new board version: the payload is built and cached
            cache.clear()
            return timed(client.get, url)

        api, api_seconds = min((built("/api/leaderboard") for _ in range(5)), key=lambda r: r[1])
        page, page_seconds = min((built("/leaderboard") for _ in range(5)), key=lambda r: r[1])
        assert api.status_code == page.status_code == 200
        api_cached = min(timed(client.get, "/api/leaderboard")[1] for _ in range(20))
        page_cached = min(timed(client.get, "/leaderboard")[1] for _ in range(20))
        etag = api["ETag"]
        not_modified = min(timed(client.get, "/api/leaderboard", HTTP_IF_NONE_MATCH=etag)[1] for _ in range(20))
    _, figures_seconds = timed(charts.leaderboard_figures, selectors.leaderboard_payload())
    print("\nserving the 129-model snapshot (best of 5 builds, best of 20 cached)")
    print(f"  GET /api/leaderboard, built:    {api_seconds * 1000:7.1f} ms  ({len(api.content) / 1e6:.2f} MB)")
    print(
        f"  GET /api/leaderboard, cached:   {api_cached * 1000:7.1f} ms  (304 with its ETag: {not_modified * 1000:.1f} ms)"
    )
    print(
        f"  GET /leaderboard, built:        {page_seconds * 1000:7.1f} ms  ({len(page.content) / 1e6:.2f} MB; charts {figures_seconds * 1000:.0f} ms)"
    )
    print(f"  GET /leaderboard, cached:       {page_cached * 1000:7.1f} ms")

    # Online Elo
    live = [ArenaModel.objects.create(name=f"bench-live-{i}") for i in range(4)]
    rng = np.random.default_rng(args.seed)
    battles = []
    for _ in range(args.votes):
        a, b = rng.choice(len(live), size=2, replace=False)
        battles.append(Battle(owner_hash="bench", model_a=live[a], model_b=live[b]))
    from ratings.prompt_labels import language

    # lingua loads its models on the first detection (seconds), once per worker process: not part of a
    # vote's cost, so one detection runs before the clock starts.
    language([{"role": "user", "content": "A first question to load the language models."}])
    Battle.objects.bulk_create(battles)
    outcomes = rng.choice(Vote.Outcome.values, size=args.votes)
    votes = Vote.objects.bulk_create(
        [
            Vote(
                battle=battle,
                outcome=str(o),
                judge_hash="bench",
                conversation_a=[{"role": "user", "content": f"Benchmark question number {i}?"}],
                conversation_b=[{"role": "user", "content": f"Benchmark question number {i}?"}],
                timings_a=[],
                timings_b=[],
            )
            for i, (battle, o) in enumerate(zip(battles, outcomes, strict=True))
        ]  # fmt: skip
    )
    started = time.perf_counter()
    for vote in votes:
        services.vote_rate(vote_id=vote.pk)
    per_vote = (time.perf_counter() - started) / len(votes)
    print(f"\nonline Elo: vote_rate {per_vote * 1000:.2f} ms per vote ({1 / per_vote:,.0f} votes/s, one process)")


if __name__ == "__main__":
    main()
