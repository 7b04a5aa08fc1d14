from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from arena.celery import app
from battles.models import Vote
from ratings import events, tasks
from ratings.models import EloRating, LeaderboardSnapshot
from tests.factories import cast_vote, make_battle, make_vote


def listen():
    """A channel subscribed to the leaderboard group, and a function returning its next message."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.GROUP, channel)
    return lambda: async_to_sync(layer.receive)(channel)


def test_tasks_are_registered_under_the_names_beat_and_battles_use():
    app.loader.import_default_modules()
    assert "ratings.tasks.vote_rate" in app.tasks  # still consumed: messages queued before an upgrade
    assert "ratings.tasks.votes_rate_waiting" in app.tasks
    assert "ratings.tasks.leaderboard_recompute" in app.tasks
    assert "ratings.tasks.votes_rate_pending" in app.tasks


def test_beat_schedules_the_recompute_and_the_pending_vote_sweep():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"ratings.tasks.leaderboard_recompute", "ratings.tasks.votes_rate_pending"} <= scheduled


def test_sweep_task_rates_only_votes_left_unrated(three_models, settings):
    settings.VOTE_RATING_SWEEP_AGE = 0
    alpha, bravo, _ = three_models
    left_behind = make_vote(make_battle(model_a=alpha, model_b=bravo))
    make_vote(make_battle(model_a=alpha, model_b=bravo), rated=True)
    assert tasks.votes_rate_pending() == 1
    left_behind.refresh_from_db()
    assert left_behind.rated_at is not None
    assert EloRating.objects.get(model=alpha).votes == 1


def test_vote_rate_task_rates_the_vote_and_tells_leaderboard_pages(three_models):
    alpha, bravo, _ = three_models
    receive = listen()
    vote = make_vote(make_battle(model_a=alpha, model_b=bravo), outcome=Vote.Outcome.A)
    assert tasks.vote_rate(vote.pk) is True
    message = receive()
    assert message["type"] == "leaderboard.update" and message["reason"] == "vote"
    assert [(r["name"], r["votes"]) for r in message["online_elo"]] == [("alpha", 1), ("bravo", 1)]
    assert message["snapshot_id"] is None


def test_vote_rate_task_run_twice_counts_once(three_models):
    alpha, bravo, _ = three_models
    vote = make_vote(make_battle(model_a=alpha, model_b=bravo))
    assert tasks.vote_rate(vote.pk) is True
    assert tasks.vote_rate(vote.pk) is False
    assert EloRating.objects.get(model=alpha).votes == 1


def test_vote_rate_task_succeeds_when_redis_is_down(three_models, settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    alpha, bravo, _ = three_models
    vote = make_vote(make_battle(model_a=alpha, model_b=bravo))
    assert tasks.vote_rate(vote.pk) is True
    vote.refresh_from_db()
    assert vote.rated_at is not None
    assert EloRating.objects.get(model=alpha).rating == pytest.approx(1002.0)


def test_recording_a_vote_queues_a_rating_run_once_committed(three_models, django_capture_on_commit_callbacks):
    alpha, bravo, _ = three_models
    battle = make_battle(model_a=alpha, model_b=bravo, owner="s-1")
    with mock.patch.object(tasks.votes_rate_waiting, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            cast_vote(battle, owner="s-1", outcome="tie")
        delay.assert_not_called()  # nothing is queued before the vote is committed
        for callback in callbacks:
            callback()
    delay.assert_called_once_with()


def test_votes_cast_while_a_run_is_queued_queue_nothing_and_that_run_rates_them_all(
    three_models, django_capture_on_commit_callbacks
):
    """A burst of votes queues one rating run, which rates every vote committed before it started; a vote
    after it started queues the next run."""
    alpha, bravo, _ = three_models
    battles = [make_battle(model_a=alpha, model_b=bravo, owner="s-1") for _ in range(4)]
    with mock.patch.object(tasks.votes_rate_waiting, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            for battle in battles[:3]:
                cast_vote(battle, owner="s-1", outcome="a")
        assert delay.call_count == 1
        assert tasks.votes_rate_waiting() == 3  # the queued run, as the worker would run it
        assert EloRating.objects.get(model=alpha).votes == 3
        with django_capture_on_commit_callbacks(execute=True):
            cast_vote(battles[3], owner="s-1", outcome="b")
        assert delay.call_count == 2
    assert tasks.votes_rate_waiting() == 1
    assert tasks.votes_rate_waiting() == 0


def test_a_rating_run_takes_a_chunk_and_queues_a_run_for_the_rest(three_models, settings):
    """So that a backlog (after an outage) leaves the worker to the probes and snapshots queued meanwhile
    every VOTE_RATING_CHUNK votes; the real worker's order is in tests/e2e/test_vote_worker.py."""
    settings.VOTE_RATING_CHUNK = 2
    alpha, bravo, _ = three_models
    for _ in range(3):
        make_vote(make_battle(model_a=alpha, model_b=bravo))
    with mock.patch.object(tasks.votes_rate_waiting, "delay") as delay:  # the edge: the broker
        assert tasks.votes_rate_waiting() == 2
        assert delay.call_count == 1  # the rest, behind whatever was queued meanwhile
        assert tasks.votes_rate_waiting() == 1
        assert delay.call_count == 1  # nothing left: no more runs
        settings.VOTE_RATING_SWEEP_AGE = 0
        for _ in range(3):
            make_vote(make_battle(model_a=alpha, model_b=bravo))
        assert tasks.votes_rate_pending() == 2  # the sweep takes a chunk too, and queues a run for the rest
        assert delay.call_count == 2
    assert EloRating.objects.get(model=alpha).votes == 5


def test_recompute_task_stores_a_snapshot_and_announces_it(small_arena, settings):
    settings.LEADERBOARD_BOOTSTRAP_ROUNDS = 10
    receive = listen()
    snapshot_id = tasks.leaderboard_recompute()
    snapshot = LeaderboardSnapshot.objects.get()
    assert snapshot_id == snapshot.pk
    assert snapshot.params["rounds"] == 10 and snapshot.seed == settings.LEADERBOARD_SEED
    message = receive()
    assert message["reason"] == "snapshot" and message["snapshot_id"] == snapshot.pk


def test_recompute_task_with_no_battles_stores_nothing(db):
    assert tasks.leaderboard_recompute(rounds=10) is None
    assert not LeaderboardSnapshot.objects.exists()


@pytest.mark.django_db
def test_vote_is_kept_when_the_broker_is_down_and_the_sweep_rates_it_later(
    django_capture_on_commit_callbacks, monkeypatch
):
    import kombu.exceptions

    from ratings import tasks
    from ratings.models import EloRating
    from ratings.services import votes_rate_pending

    def broker_down(*args, **kwargs):
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.votes_rate_waiting, "delay", broker_down)  # the edge: Redis is unreachable
    battle = make_battle(owner="owner")
    with django_capture_on_commit_callbacks(execute=True):
        vote = cast_vote(battle, owner="owner", outcome="a")
    vote.refresh_from_db()
    assert vote.rated_at is None
    # Nothing is left saying a run is queued: once the broker is back, the next vote queues one.
    queued = []
    monkeypatch.setattr(tasks.votes_rate_waiting, "delay", lambda: queued.append(True))
    assert tasks.vote_rating_queue(vote_id=vote.pk) is True
    assert queued == [True]
    assert votes_rate_pending(older_than_seconds=0).applied == 1
    assert votes_rate_pending(older_than_seconds=0).applied == 0  # once only
    assert EloRating.objects.get(model=battle.model_a).rating == 1002.0
