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


def test_a_policy_whose_shares_add_up_to_more_than_one_is_refused_and_the_policy_cannot_be_deleted(admin_client):
    """0.8 exploration with 0.25 boost (or 25 typed for 25%) was saved, and the planner then refused every
    recompute: no snapshot was made again."""
    from ratings.models import LeaderboardPolicy

    policy = LeaderboardPolicy.current()
    url = reverse("admin:ratings_leaderboardpolicy_change", args=[policy.pk])
    form = {"provisional_votes": "100", "exploration_share": "0.8", "boost_share": "0.25", "top_k": "10"}
    page = admin_client.post(url, form).content.decode()
    assert "together they may be at most 1" in page
    assert (
        "Ensure this value is less than or equal to 1.0"
        in admin_client.post(url, {**form, "boost_share": "25"}).content.decode()
    )
    assert LeaderboardPolicy.current().exploration_share == 0.1
    assert admin_client.post(url, {**form, "exploration_share": "0.5"}).status_code == 302
    assert LeaderboardPolicy.current().exploration_share == 0.5
    delete = reverse("admin:ratings_leaderboardpolicy_delete", args=[policy.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403


def test_records_the_services_keep_are_shown_but_not_edited_or_deleted_in_the_admin(admin_client):
    """A vote deleted here left its count in the pair counts for good; a judge flag deleted here came back."""
    from ratings.models import EloRating, ImportedLog, LeaderboardSnapshot, RatedVote

    alpha, bravo = make_model("alpha"), make_model("bravo")
    rated_vote(alpha, bravo, Vote.Outcome.A, owner="one")
    rated_vote(bravo, alpha, Vote.Outcome.A, owner="two")
    services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False)
    flag = services.judge_flag(judge_hash="some-judge", reason="test")
    ImportedLog.objects.create(sha256="0" * 64, filename="log.json", format="clean_battle", battle_count=2,
                               model_count=2)  # fmt: skip
    vote = Vote.objects.first()
    records = {
        "battles_vote": vote.pk,
        "battles_battle": vote.battle_id,
        "ratings_ratedvote": RatedVote.objects.first().pk,
        "ratings_paircount": PairCount.objects.first().pk,
        "ratings_leaderboardsnapshot": LeaderboardSnapshot.objects.get().pk,
        "ratings_importedlog": ImportedLog.objects.get().pk,
        "ratings_elorating": EloRating.objects.first().pk,
    }
    for name, pk in records.items():
        shown = admin_client.get(reverse(f"admin:{name}_change", args=[pk]))
        assert shown.status_code == 200 and 'name="_save"' not in shown.content.decode(), name
        assert admin_client.post(reverse(f"admin:{name}_delete", args=[pk]), {"post": "yes"}).status_code == 403, name
        assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 403, name
    judge_flag_delete = reverse("admin:ratings_judgeflag_delete", args=[flag.pk])
    assert admin_client.post(judge_flag_delete, {"post": "yes"}).status_code == 403
    assert Vote.objects.count() == 2 and JudgeFlag.objects.count() == 1


def test_staff_who_are_not_superusers_do_not_see_which_models_an_unvoted_battle_drew(
    admin_client, django_user_model, client
):
    from django.contrib.auth.models import Permission

    from tests.factories import make_battle

    battle = make_battle(model_a=make_model("secret-a"), model_b=make_model("secret-b"))
    assert "secret-a" in admin_client.get(reverse("admin:battles_battle_changelist")).content.decode()
    staff = django_user_model.objects.create_user("staff", password="pw-staff-1", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_battle"))
    client.force_login(staff)
    for url in (reverse("admin:battles_battle_changelist"), reverse("admin:battles_battle_change", args=[battle.pk])):
        page = client.get(url)
        assert (
            page.status_code == 200
            and "secret-a" not in page.content.decode()
            and "secret-b" not in page.content.decode()
        )
