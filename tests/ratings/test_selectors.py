import pytest

from battles.models import Vote
from battles.services import judge_hash
from ratings import selectors, services
from tests.factories import make_model, make_vote
from tests.ratings.conftest import rated_vote


def test_pair_counts_load_keeps_sides_and_leaves_out_models_without_battles(three_models):
    alpha, bravo, _ = three_models
    make_model("delta")
    rated_vote(bravo, alpha, Vote.Outcome.A)
    rated_vote(alpha, bravo, Vote.Outcome.TIE)
    pc = selectors.pair_counts_load()
    assert pc.models == ["alpha", "bravo"]
    rows = {tuple(p): tuple(c) for p, c in zip(pc.pairs.tolist(), pc.counts.tolist(), strict=True)}
    assert rows == {(1, 0): (1, 0, 0, 0), (0, 1): (0, 0, 1, 0)}


def test_pair_counts_load_is_empty_without_votes(db):
    pc = selectors.pair_counts_load()
    assert pc.models == [] and pc.n_battles == 0 and pc.pairs.shape == (0, 2)


def test_elo_rows_list_only_rated_models_best_first(three_models):
    alpha, bravo, charlie = three_models
    rated_vote(charlie, alpha, Vote.Outcome.A)
    assert [row["name"] for row in selectors.elo_rows()] == ["charlie", "alpha"]
    assert selectors.elo_rows()[0] == {"name": "charlie", "rating": pytest.approx(1002.0), "votes": 1}


def test_payload_without_snapshot_ranks_online_elo(three_models):
    alpha, bravo, charlie = three_models
    rated_vote(alpha, bravo, Vote.Outcome.A)
    rated_vote(charlie, bravo, Vote.Outcome.A)
    payload = selectors.leaderboard_payload()
    assert payload["snapshot"] is None and payload["method"] == "elo"
    assert [(r["name"], r["rank"], r["ci_lower"]) for r in payload["models"]] == [
        ("alpha", 1, None),
        ("charlie", 2, None),
        ("bravo", 3, None),
    ]


def test_payload_serves_the_newest_snapshot_unless_another_is_asked_for(small_arena):
    old = services.leaderboard_recompute(rounds=10, seed=0)
    new = services.leaderboard_recompute(rounds=10, seed=1)
    assert selectors.leaderboard_payload()["snapshot"]["id"] == new.pk
    assert selectors.leaderboard_payload(snapshot_id=old.pk)["snapshot"]["seed"] == 0
    with pytest.raises(selectors.SnapshotNotFound):
        selectors.leaderboard_payload(snapshot_id=new.pk + 1)


def test_payload_for_method_elo_ignores_snapshots(small_arena):
    services.leaderboard_recompute(rounds=10, seed=0)
    payload = selectors.leaderboard_payload(method="elo")
    assert payload["snapshot"] is None
    assert payload["models"][0]["name"] == payload["online_elo"][0]["name"]
    with pytest.raises(ValueError, match="Unknown method"):
        selectors.leaderboard_payload(method="glicko")


def test_clean_battle_records_carry_no_session_keys(three_models):
    alpha, bravo, _ = three_models
    vote = make_vote(outcome=Vote.Outcome.BOTH_BAD, model_a=alpha, model_b=bravo, session_key="secret-session")
    Vote.objects.filter(pk=vote.pk).update(judge_hash=judge_hash("secret-session"))  # as vote_record stores it
    vote.refresh_from_db()
    [record] = selectors.clean_battle_records()
    assert record["model_a"] == "alpha" and record["model_b"] == "bravo"
    assert record["winner"] == "tie (bothbad)"
    assert record["judge"] == vote.judge_hash
    assert record["anony"] is True and record["turn"] == 1
    assert "secret-session" not in repr(record)
