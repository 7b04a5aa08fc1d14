from django.urls import reverse

from battles.models import Vote
from battles.services import client_hash
from ratings import services
from ratings.models import JudgeFlag, PairCount
from tests.factories import make_model
from tests.ratings.conftest import rated_vote


def test_the_judge_flags_list_says_which_kind_each_flag_is_and_clearing_an_address_counts_its_votes(admin_client):
    alpha, bravo = make_model("alpha"), make_model("bravo")
    rated_vote(alpha, bravo, Vote.Outcome.A, owner="one", ip="198.51.100.7")
    rated_vote(alpha, bravo, Vote.Outcome.A, owner="two", ip="198.51.100.7")
    flag = services.judge_flag(
        kind=JudgeFlag.Kind.ADDRESS, judge_hash=client_hash("198.51.100.7"), reason="voted for alpha in 2 of 2"
    )
    url = reverse("admin:ratings_judgeflag_changelist")
    page = admin_client.get(url).content.decode()
    assert "Address (all its sessions)" in page and "voted for alpha in 2 of 2" in page
    assert PairCount.objects.get().a_wins == 0
    admin_client.post(url, {"action": "clear", "_selected_action": [flag.pk]})
    assert JudgeFlag.objects.get().state == JudgeFlag.State.CLEARED
    assert PairCount.objects.get().a_wins == 2
