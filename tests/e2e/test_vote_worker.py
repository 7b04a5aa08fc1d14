"""The vote's rating task, consumed by a real Celery worker process over the real Redis broker."""

import time

import pytest

from battles.models import Vote
from ratings.models import EloRating, PairCount
from tests.factories import cast_vote, make_battle, make_vote

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_vote_is_rated_by_a_real_worker_exactly_once(celery_worker):
    from ratings.tasks import vote_rate

    battle = make_battle(owner="owner")
    vote = cast_vote(battle, owner="owner", outcome="a")  # queued on commit
    assert wait_for(lambda: EloRating.objects.filter(votes=1).count() == 2), "the worker never rated the vote"
    assert EloRating.objects.get(model=battle.model_a).rating == pytest.approx(1002.0)
    assert EloRating.objects.get(model=battle.model_b).rating == pytest.approx(998.0)

    vote_rate.delay(vote.pk)  # delivered a second time, as a retry or duplicate would
    marker = make_battle(owner="owner")
    cast_vote(marker, owner="owner", outcome="b")
    assert wait_for(lambda: PairCount.objects.filter(model_a=marker.model_a).exists())
    pair = PairCount.objects.get(model_a=battle.model_a, model_b=battle.model_b)
    assert (pair.a_wins, pair.b_wins) == (1, 0)
    assert EloRating.objects.get(model=battle.model_a).votes == 1


def test_a_backlog_of_votes_leaves_the_worker_to_the_tasks_queued_behind_it(transactional_db, child_env):
    """A rating run takes VOTE_RATING_CHUNK votes and queues the rest behind what was queued meanwhile: here
    the endpoint probe, queued after a run for six votes in chunks of two, runs after the first two are
    rated. Before, it waited for the whole backlog (after an outage, up to the task's 14-minute limit)."""
    from asgiref.sync import async_to_sync

    from arena.celery import app
    from inference import health
    from inference.tasks import endpoints_probe
    from ratings.tasks import votes_rate_waiting
    from tests.conftest import new_task_queue, worker_consuming
    from tests.factories import make_model

    alpha, bravo = make_model("alpha"), make_model("bravo")  # endpoints on a closed port: a probe fails at once
    votes = [make_vote(make_battle(model_a=alpha, model_b=bravo)) for _ in range(6)]
    queue, previous = new_task_queue(), app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        votes_rate_waiting.delay()
        endpoints_probe.delay()
    finally:
        app.conf.task_default_queue = previous
    endpoint = alpha.endpoints.get().pk
    with worker_consuming(queue, env={**child_env, "VOTE_RATING_CHUNK": "2"}):  # started once both are queued
        assert wait_for(lambda: not Vote.objects.filter(rated_at__isnull=True).exists()), "votes left unrated"
        assert wait_for(lambda: async_to_sync(health.health_of)([endpoint])[endpoint].probed_at), "never probed"
    probed_at = async_to_sync(health.health_of)([endpoint])[endpoint].probed_at
    rated_at = [Vote.objects.get(pk=vote.pk).rated_at.timestamp() for vote in votes]
    assert [at < probed_at for at in rated_at] == [True, True, False, False, False, False]
    assert EloRating.objects.get(model=alpha).votes == 6
