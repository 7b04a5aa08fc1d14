"""/metrics: Prometheus text for operators only, with exact vote figures from the database."""

import os
from pathlib import Path

import pytest
from django.test import Client

from arena import metrics
from tests.factories import make_battle, make_vote

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_metrics_are_refused_to_a_visitor_from_elsewhere_and_served_to_staff_and_the_token(admin_user, settings):
    settings.METRICS_TOKEN = "metrics-secret"
    remote = Client(REMOTE_ADDR="203.0.113.9")
    assert remote.get("/metrics").status_code == 403
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-secret").status_code == 200
    staff = Client(REMOTE_ADDR="203.0.113.9")
    staff.force_login(admin_user)
    assert staff.get("/metrics").status_code == 200


def test_loopback_access_can_be_turned_off_for_hosts_behind_a_local_proxy(settings):
    local = Client(REMOTE_ADDR="127.0.0.1")
    assert local.get("/metrics").status_code == 200
    settings.METRICS_FROM_LOOPBACK = False
    assert local.get("/metrics").status_code == 403


@pytest.mark.parametrize("header", ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP", "HTTP_X_FORWARDED_PROTO",
                                    "HTTP_X_FORWARDED_HOST", "HTTP_VIA"])  # fmt: skip
def test_a_visitor_through_a_local_proxy_is_not_taken_for_this_machine(header):
    """With PROXY_HEADERS off (the default), nginx on this machine made every visitor 127.0.0.1: polling
    /metrics while a battle streamed (streams in flight per model) named both models before the vote."""
    through_proxy = Client(REMOTE_ADDR="127.0.0.1", **{header: "203.0.113.9"})
    assert through_proxy.get("/metrics").status_code == 403


def test_the_scrape_carries_stream_metrics_and_exact_vote_figures_with_the_rating_lag():
    metrics.TTFT.labels(model="m", endpoint="1").observe(0.3)
    metrics.SIDES_FINISHED.labels(model="m", outcome="timeout").inc()
    from datetime import timedelta

    from django.utils import timezone

    from battles.models import Vote
    from ratings.models import JudgeFlag
    from ratings.services import judge_flag, vote_rate

    unrated = make_vote(make_battle(owner="a"))
    Vote.objects.filter(pk=unrated.pk).update(created=timezone.now() - timedelta(seconds=60))  # waiting a minute
    vote_rate(vote_id=make_vote(make_battle(owner="b")).pk)
    not_blind = make_vote(make_battle(owner="c"))
    Vote.objects.filter(pk=not_blind.pk).update(excluded_reason="An answer said which company made it.")
    vote_rate(vote_id=not_blind.pk)
    flagged = make_vote(make_battle(owner="d"))
    judge_flag(kind=JudgeFlag.Kind.SESSION, judge_hash=flagged.judge_hash, reason="a test", by="test")
    vote_rate(vote_id=flagged.pk)  # rated, and left out of the counts: counted once as such, not as "counted"
    text = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()
    assert 'arena_ttft_seconds_bucket{endpoint="1",le="0.5",model="m"}' in text
    assert 'arena_sides_finished_total{model="m",outcome="timeout"}' in text
    figures = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line.startswith("arena_")}
    states = ("total", "counted", "left_out", "excluded", "unrated")
    assert [figures[f'arena_votes{{state="{state}"}}'] for state in states] == [4, 1, 1, 1, 1]
    assert 60 <= figures["arena_rating_lag_seconds"] < 120


@pytest.mark.django_db(transaction=True)
def test_behind_a_proxy_a_client_cannot_pass_for_the_machine_itself(child_env):
    """With PROXY_HEADERS, the client's address is the last one the trusted proxy wrote. The client's own
    X-Forwarded-For comes first (the proxy appends): trusted as such, it opened /metrics to anyone, and let
    anyone choose the address its per-address limits are counted by."""
    import httpx

    from arena import processes
    from arena.processes import free_port
    from tests.conftest import serving

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    program = processes.web_program(port=port, proxy_headers=True, trusted_proxies=("127.0.0.1",))
    with serving(program, ready_url=url + "/", log_name=f"web-proxy-{port}.log", env=child_env, timeout=60):
        assert httpx.get(url + "/metrics").status_code == 200  # from this machine, no proxy in between
        through_the_proxy = {"X-Forwarded-For": "127.0.0.1, 203.0.113.7"}  # the client's claim, then the proxy's
        assert httpx.get(url + "/metrics", headers=through_the_proxy).status_code == 403
        assert httpx.get(url + "/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 403


def test_a_web_process_that_died_stops_reporting_its_live_gauges(tmp_path, monkeypatch):
    """Each process writes its gauges to files of its own; prometheus-client drops a dead process's live ones
    only when told. A web process killed under load kept reporting its loop lag and its streams in flight in
    every scrape until the next `make run`."""
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    killed = "from arena import metrics; metrics.IN_FLIGHT.labels(model='gone').inc(3); metrics.LOOP_LAG.set(9.5)"
    subprocess.run([sys.executable, "-c", killed], cwd=ROOT, env=env, check=True)
    running = (
        "from arena import metrics; metrics.IN_FLIGHT.labels(model='here').inc(); print('ready', flush=True); input()"
    )
    with subprocess.Popen([sys.executable, "-c", running], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as alive:  # fmt: skip
        assert alive.stdout.readline().strip() == "ready"
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        text = metrics.exposition().decode()
        alive.communicate("")
    assert 'arena_streams_in_flight{model="here"} 1.0' in text
    assert 'model="gone"' not in text and "9.5" not in text
