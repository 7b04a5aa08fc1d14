"""The vote's rating task, consumed by a real Celery worker process over the real Redis broker."""

import time

import pytest

from ratings.models import EloRating, PairCount
from tests.factories import cast_vote, make_battle

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
