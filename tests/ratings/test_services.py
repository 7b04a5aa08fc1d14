import json

import pytest
from django.db import transaction
from django.utils import timezone

from battles.models import Vote
from inference.models import ArenaModel
from ratings import selectors, services
from ratings.engine.arena_votes import position_summary, style_board
from ratings.engine.counts import pair_outcome_counts
from ratings.engine.leaderboard import compute_leaderboard
from ratings.models import EloRating, ImportedLog, LeaderboardPolicy, LeaderboardSnapshot, PairCount
from tests.factories import cast_vote, make_battle, make_model, make_vote
from tests.ratings.conftest import REAL_PAIR_COUNTS, rated_vote, styled_votes


def elo(model) -> EloRating:
    return EloRating.objects.get(model=model)


def pair(model_a, model_b) -> tuple[int, int, int, int]:
    """The ordered pair's counts, over every labels key."""
    rows = PairCount.objects.filter(model_a=model_a, model_b=model_b).values_list(
        "a_wins", "b_wins", "ties", "both_bad"
    )
    return tuple(sum(column) for column in zip(*rows, strict=True)) if rows else (0, 0, 0, 0)


# Online Elo


def test_first_vote_for_a_moves_ratings_from_1000_to_1002_and_998(three_models):
    alpha, bravo, _ = three_models
    rated_vote(alpha, bravo, Vote.Outcome.A)
    assert elo(alpha).rating == pytest.approx(1002.0)
    assert elo(bravo).rating == pytest.approx(998.0)
    assert elo(alpha).votes == elo(bravo).votes == 1


def test_vote_for_b_moves_the_right_hand_model_up(three_models):
    alpha, bravo, _ = three_models
    rated_vote(alpha, bravo, Vote.Outcome.B)
    assert elo(alpha).rating == pytest.approx(998.0)
    assert elo(bravo).rating == pytest.approx(1002.0)


@pytest.mark.parametrize("outcome", [Vote.Outcome.TIE, Vote.Outcome.BOTH_BAD])
def test_tie_and_both_bad_count_as_half_a_win_for_each_side(three_models, outcome):
    alpha, bravo, charlie = three_models
    rated_vote(alpha, bravo, Vote.Outcome.A)  # alpha 1002, bravo 998
    rated_vote(bravo, alpha, outcome)
    expected_bravo = 1.0 / (1.0 + 10 ** ((1002.0 - 998.0) / 400))
    assert elo(bravo).rating == pytest.approx(998.0 + 4 * (0.5 - expected_bravo))
    assert elo(alpha).rating == pytest.approx(1002.0 - 4 * (0.5 - expected_bravo))
    assert elo(bravo).rating > 998.0  # the weaker side gains from a tie


def test_a_tie_between_equal_ratings_changes_nothing(three_models):
    alpha, bravo, _ = three_models
    rated_vote(alpha, bravo, Vote.Outcome.TIE)
    assert elo(alpha).rating == elo(bravo).rating == pytest.approx(1000.0)


def test_rating_the_same_vote_twice_counts_it_once(three_models):
    alpha, bravo, _ = three_models
    vote = make_vote(make_battle(model_a=alpha, model_b=bravo), outcome=Vote.Outcome.A)
    assert services.vote_rate(vote_id=vote.pk) is True
    assert services.vote_rate(vote_id=vote.pk) is False
    assert elo(alpha).rating == pytest.approx(1002.0)
    assert elo(alpha).votes == 1
    assert pair(alpha, bravo) == (1, 0, 0, 0)


def test_a_vote_already_marked_rated_is_left_alone(three_models):
    alpha, bravo, _ = three_models
    vote = make_vote(make_battle(model_a=alpha, model_b=bravo), rated=True)
    assert services.vote_rate(vote_id=vote.pk) is False
    assert not EloRating.objects.exists()
    assert not PairCount.objects.exists()


def test_rating_a_missing_vote_does_nothing(db):
    assert services.vote_rate(vote_id=12345) is False


def test_rating_sets_rated_at(three_models):
    alpha, bravo, _ = three_models
    before = timezone.now()
    vote = rated_vote(alpha, bravo)
    assert vote.rated_at is not None and vote.rated_at >= before


def test_pair_counts_keep_sides_and_outcomes_apart(three_models):
    alpha, bravo, _ = three_models
    for outcome in [Vote.Outcome.A, Vote.Outcome.B, Vote.Outcome.B, Vote.Outcome.TIE, Vote.Outcome.BOTH_BAD]:
        rated_vote(alpha, bravo, outcome)
    rated_vote(bravo, alpha, Vote.Outcome.A)
    assert pair(alpha, bravo) == (1, 2, 1, 1)
    assert pair(bravo, alpha) == (1, 0, 0, 0)


# Snapshots


def test_recompute_stores_a_snapshot_over_all_pair_counts(small_arena):
    alpha, bravo, charlie = small_arena
    snapshot = services.leaderboard_recompute(rounds=20, seed=3)
    names = [row["name"] for row in snapshot.rows]
    assert names == ["alpha", "bravo", "charlie"]
    assert snapshot.vote_count == 12
    assert snapshot.seed == 3
    assert snapshot.params["rounds"] == 20
    assert snapshot.data_cutoff == Vote.objects.latest("created").created
    # None is an unbounded end: a dozen votes leave a model one-sided in some resamples.
    assert all((row["ci_lower"] or -1e9) <= row["rating"] <= (row["ci_upper"] or 1e9) for row in snapshot.rows)
    assert snapshot.extras["comparison"] == {"note": "", "groups": [{"group": 1, "models": 3, "battles": 12}],
                                             "not_rated": []}  # fmt: skip
    assert snapshot.extras["matrices"]["models"] == names
    assert [row["name"] for row in snapshot.extras["ties"]["models"]] == names
    assert snapshot.extras["ties"]["tie_strength"]["value"] > 0
    assert snapshot.style_rows["models"] == [] and "at least" in snapshot.style_rows["reason"]


def test_recompute_with_the_same_seed_gives_the_same_intervals(small_arena):
    first = services.leaderboard_recompute(rounds=20, seed=7)
    LeaderboardSnapshot.objects.all().delete()
    second = services.leaderboard_recompute(rounds=20, seed=7)
    assert second.is_new and first.rows == second.rows and first.categories == second.categories


def test_no_new_snapshot_when_nothing_changed_and_a_new_one_after_a_vote_or_a_new_seed(small_arena):
    first = services.leaderboard_recompute(rounds=10, seed=0)
    again = services.leaderboard_recompute(rounds=10, seed=0)
    assert first.is_new and not again.is_new and again.pk == first.pk
    assert LeaderboardSnapshot.objects.count() == 1
    assert services.leaderboard_recompute(rounds=10, seed=1).is_new  # other parameters: a new board
    rated_vote(small_arena[2], small_arena[0], Vote.Outcome.A)
    assert services.leaderboard_recompute(rounds=10, seed=1).is_new  # new data: a new board
    assert LeaderboardSnapshot.objects.count() == 3


def test_old_snapshots_thin_out_to_one_a_day_and_unused_inputs_go(small_arena):
    from datetime import timedelta

    from django.utils import timezone

    from ratings.models import SnapshotArenaVotes, SnapshotInput

    # Midday, so that the two snapshots of 20 days ago fall on one calendar day whatever the hour the test
    # runs (with the clock's own time, between 01:00 and 03:00 UTC they straddled midnight and none went).
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    for seed, age in enumerate([timedelta(days=20, hours=3), timedelta(days=20, hours=1), timedelta(days=9),
                                timedelta(days=2), timedelta(hours=1)]):  # fmt: skip
        snapshot = services.leaderboard_recompute(rounds=0, seed=seed, bootstrap=False)
        LeaderboardSnapshot.objects.filter(pk=snapshot.pk).update(created=now - age)
    SnapshotArenaVotes.objects.create(sha256="0" * 64, votes={})  # votes of a snapshot pruned before
    assert services.snapshots_prune(keep_days=7, now=now) == 1  # the older of the two from 20 days ago
    # Arena votes (a row per vote) stay only with the newest snapshot of each of the last 7 days: those of 2
    # days and of an hour ago, not that of 9 days ago (nor the orphan).
    keeping = LeaderboardSnapshot.objects.exclude(arena_votes=None).order_by("created")
    assert [now - snapshot.created for snapshot in keeping] == [timedelta(days=2), timedelta(hours=1)]
    assert LeaderboardSnapshot.objects.count() == 4
    ages = sorted((now - snapshot.created for snapshot in LeaderboardSnapshot.objects.all()), reverse=True)
    assert ages[0] == timedelta(days=20, hours=1)  # the newer of that day's two is the one kept
    assert SnapshotInput.objects.count() == 1  # every snapshot was fitted on the same counts
    assert SnapshotArenaVotes.objects.count() == 1  # and the same arena votes


def test_a_change_of_the_policys_shares_makes_a_snapshot_with_its_new_plan_without_waiting_for_a_vote(small_arena):
    from ratings.models import LeaderboardPolicy

    assert services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False).is_new
    assert not services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False).is_new  # nothing changed
    LeaderboardPolicy.objects.filter(pk=1).update(exploration_share=0.5)
    snapshot = services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False)
    assert snapshot.is_new and "50%" in json.dumps(snapshot.extras["sampling"])


def test_a_snapshot_keeps_its_arena_votes_for_30_minutes_whatever_comes_after_it(small_arena):
    """A page loaded just before a recompute linked to arena votes that the recompute's prune had just dropped."""
    from datetime import timedelta

    alpha, bravo, _ = small_arena
    now = timezone.now()
    first = services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False)
    LeaderboardSnapshot.objects.filter(pk=first.pk).update(created=now - timedelta(minutes=20))
    rated_vote(alpha, bravo)
    second = services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False)
    LeaderboardSnapshot.objects.filter(pk=second.pk).update(created=now - timedelta(minutes=5))
    services.snapshots_prune(keep_days=7, now=now)
    assert LeaderboardSnapshot.objects.get(pk=first.pk).arena_votes_id is not None
    services.snapshots_prune(keep_days=7, now=now + timedelta(minutes=11))  # the first is 31 minutes old
    assert LeaderboardSnapshot.objects.get(pk=first.pk).arena_votes_id is None
    assert LeaderboardSnapshot.objects.get(pk=second.pk).arena_votes_id is not None


def test_recompute_reads_pair_counts_not_votes(small_arena):
    """The number of queries does not grow with the votes: counts and stored numbers, never conversations."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False, style_min_votes=10**9)  # first-run setup
    queries = []
    for _ in range(2):
        for _ in range(20):
            rated_vote(small_arena[0], small_arena[1])
        with CaptureQueriesContext(connection) as captured:
            services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False, style_min_votes=10**9)
        queries.append(len(captured))
        assert not any("conversation" in query["sql"] for query in captured.captured_queries)
    # 2 of them the savepoint of the reads at one moment, in a test's transaction; 3 the arena votes' stored row;
    # 2 the insert's lock and its second look at the newest snapshot (two recomputes at once store one).
    assert queries[0] == queries[1] <= 27


def test_recompute_without_battles_raises_and_stores_nothing(db):
    with pytest.raises(services.LeaderboardEmpty):
        services.leaderboard_recompute(rounds=10, seed=0)
    assert not LeaderboardSnapshot.objects.exists()


def test_failed_recompute_keeps_the_previous_snapshot(small_arena):
    old = services.leaderboard_recompute(rounds=10, seed=0)
    rated_vote(small_arena[2], small_arena[0], Vote.Outcome.A)
    with pytest.raises(ValueError, match="anchor"):
        services.leaderboard_recompute(rounds=10, seed=0, anchor=("no-such-model", 1000.0))
    assert list(LeaderboardSnapshot.objects.all()) == [old]


def test_recompute_interrupted_mid_bootstrap_stores_nothing(small_arena):
    old = services.leaderboard_recompute(rounds=10, seed=0)

    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        services.leaderboard_recompute(rounds=100, seed=0, progress=interrupt)
    assert list(LeaderboardSnapshot.objects.all()) == [old]


def test_recompute_with_an_anchor_pins_that_model(small_arena):
    snapshot = services.leaderboard_recompute(rounds=10, seed=0, anchor=("bravo", 1200.0))
    bravo = next(row for row in snapshot.rows if row["name"] == "bravo")
    assert bravo["rating"] == pytest.approx(1200.0)


# Imports


def test_importing_pair_counts_adds_historical_inactive_models_and_counts(db):
    record = services.battles_import(path=REAL_PAIR_COUNTS)
    assert record.battle_count == 1_670_250
    assert record.model_count == 129
    assert ArenaModel.objects.filter(is_historical=True, is_active=False).count() == 129
    assert not ArenaModel.objects.filter(endpoints__isnull=False).exists()
    totals = PairCount.objects.values_list("a_wins", "b_wins", "ties", "both_bad")
    assert [sum(col) for col in zip(*totals, strict=True)] == [595_570, 498_305, 281_121, 295_254]


def test_importing_the_same_file_twice_is_refused_and_counts_once(db, tmp_path):
    copy = tmp_path / "renamed.json"
    copy.write_bytes(REAL_PAIR_COUNTS.read_bytes())
    services.battles_import(path=REAL_PAIR_COUNTS)
    with pytest.raises(services.ImportRefused, match="already imported"):
        services.battles_import(path=copy)
    assert ImportedLog.objects.count() == 1
    assert sum(PairCount.objects.values_list("a_wins", flat=True)) == 595_570


def test_import_adds_to_counts_of_an_existing_live_model(three_models, tmp_path):
    alpha, bravo, _ = three_models
    rated_vote(alpha, bravo, Vote.Outcome.A)
    log = tmp_path / "log.json"
    log.write_text('{"models": ["alpha", "bravo", "zulu"], "X": [[0, 1], [1, 2]], "Y": [[2, 1, 0, 1], [0, 0, 5, 0]]}')
    services.battles_import(path=log)
    assert pair(alpha, bravo) == (3, 1, 0, 1)
    assert ArenaModel.objects.get(name="alpha").is_active  # a live model stays live
    zulu = ArenaModel.objects.get(name="zulu")
    assert zulu.is_historical and not zulu.is_active
    assert pair(bravo, zulu) == (0, 0, 5, 0)


def test_clean_battle_import_skips_named_battles_and_deduplicated_prompts(db, tmp_path):
    log = tmp_path / "clean.json"
    log.write_text(
        '[{"model_a": "x", "model_b": "y", "winner": "model_a", "anony": true},'
        ' {"model_a": "x", "model_b": "y", "winner": "tie (bothbad)", "anony": true},'
        ' {"model_a": "y", "model_b": "x", "winner": "model_b", "anony": false},'
        ' {"model_a": "y", "model_b": "x", "winner": "tie", "anony": true, "dedup_tag": {"sampled": false}}]'
    )
    record = services.battles_import(path=log)
    assert record.format == "clean_battle"
    assert record.battle_count == 2
    x, y = ArenaModel.objects.get(name="x"), ArenaModel.objects.get(name="y")
    assert pair(x, y) == (1, 0, 0, 1)
    assert not PairCount.objects.filter(model_a=y).exists()


def test_a_snapshot_over_imported_data_includes_historical_models(db):
    services.battles_import(path=REAL_PAIR_COUNTS)
    make_model("live-but-unvoted")
    snapshot = services.leaderboard_recompute(
        rounds=0, seed=0, bootstrap=False, anchor=("mixtral-8x7b-instruct-v0.1", 1114)
    )
    names = [row["name"] for row in snapshot.rows]
    assert len(names) == 129
    assert "live-but-unvoted" not in names
    assert names[0] == "chatgpt-4o-latest"


def _in_threads(function, arguments: list) -> list:
    """Run function(argument) in one thread each, all released at once; each closes its connection."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(len(arguments))
    results = [None] * len(arguments)

    def work(i, argument):
        try:
            barrier.wait()
            results[i] = function(argument)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, a)) for i, a in enumerate(arguments)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_ratings_of_one_vote_apply_it_once():
    alpha, bravo = make_model("alpha"), make_model("bravo")
    vote = make_vote(make_battle(model_a=alpha, model_b=bravo))
    results = _in_threads(lambda vote_id: services.vote_rate(vote_id=vote_id), [vote.pk] * 4)
    assert sorted(results) == [False, False, False, True]
    assert elo(alpha).votes == 1 and pair(alpha, bravo) == (1, 0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_on_the_same_models_are_all_counted():
    alpha, bravo = make_model("alpha"), make_model("bravo")
    votes = [make_vote(make_battle(model_a=a, model_b=b)) for a, b in [(alpha, bravo), (bravo, alpha)] * 3]
    assert all(_in_threads(lambda vote_id: services.vote_rate(vote_id=vote_id), [v.pk for v in votes]))
    assert elo(alpha).votes == elo(bravo).votes == 6
    assert pair(alpha, bravo) == pair(bravo, alpha) == (3, 0, 0, 0)
    # Zero-sum: whatever the interleaving, the points one side gains the other loses.
    assert elo(alpha).rating + elo(bravo).rating == pytest.approx(2000.0)


# Style control and the left-seat advantage (fits over single arena votes)


def test_style_control_separates_length_from_quality(three_models):
    styled_votes(three_models, 900, seed=1, verbose={"alpha": 300, "charlie": 60})
    votes = selectors.arena_votes()
    style = style_board(votes, min_votes=100, rounds=0)
    position = position_summary(votes, min_votes=50)
    assert style["reason"] == "" and style["vote_count"] == 900
    assert style["style"]["length"]["coefficient"] > 0
    assert style["style"]["length"]["ci_lower"] > 0
    controlled = {row["name"]: row["rating"] for row in style["models"]}
    raw = compute_leaderboard(
        pair_outcome_counts(votes.model_a, votes.model_b, votes.outcome, votes.models), bootstrap=False
    )
    raw_ratings = {row["name"]: row["rating"] for row in raw["models"]}
    assert raw_ratings["alpha"] - raw_ratings["charlie"] > 100  # length alone makes alpha look much better
    assert abs(controlled["alpha"] - controlled["charlie"]) < 0.4 * (raw_ratings["alpha"] - raw_ratings["charlie"])
    assert {row["rank"] for row in style["models"]} == {1}  # equally good: no model is significantly ahead
    assert abs(position["elo_points"]) < 40 and position["ci_lower"] < 0 < position["ci_upper"]


def test_too_few_votes_for_style_control_gives_a_reason_not_rows(small_arena):
    snapshot = services.leaderboard_recompute(rounds=10, seed=0)
    assert snapshot.style_rows["models"] == []
    assert snapshot.style_rows["reason"] == "Needs at least 200 rated arena votes; there are 12."
    assert snapshot.extras["position"]["reason"].startswith("Needs at least 50")


def test_snapshot_carries_style_rows_and_position_once_there_are_enough_votes(three_models):
    styled_votes(three_models, 300, seed=2)
    snapshot = services.leaderboard_recompute(rounds=20, seed=0)
    assert [row["name"] for row in snapshot.style_rows["models"]] != []
    assert snapshot.style_rows["rounds"] == 20 and snapshot.style_rows["intervals"] == "bootstrap"
    assert {"name", "rating", "ci_lower", "ci_upper", "rank", "votes"} <= snapshot.style_rows["models"][0].keys()
    assert set(snapshot.style_rows["style"]) == {"length", "headers", "lists", "bold"}
    assert snapshot.extras["position"]["reason"] == "" and snapshot.extras["position"]["vote_count"] == 300


# Prompt labels, down-sampling of frequent prompts, category boards


def test_a_vote_is_counted_under_its_prompts_labels(three_models):
    alpha, bravo, _ = three_models
    vote = rated_vote(alpha, bravo, prompt="Write a Python function that reverses a linked list.")
    assert vote.rating.labels == "en:c" and vote.rating.in_counts
    assert PairCount.objects.get(model_a=alpha, model_b=bravo).labels == "en:c"


def test_votes_on_a_very_frequent_prompt_are_down_sampled_and_each_decision_is_recorded(three_models):
    from ratings.models import RatedVote

    alpha, bravo, _ = three_models
    for _ in range(15):
        rated_vote(alpha, bravo, prompt="hi")  # threshold: 10 (the policy's floor)
    decisions = list(RatedVote.objects.order_by("prompt_occurrence").values_list("prompt_occurrence", "in_counts"))
    assert decisions == [(n, n <= 10 or n in (12, 14)) for n in range(1, 16)]  # then every 2nd, up to 20
    left_out = RatedVote.objects.filter(in_counts=False).first()
    assert "Frequent prompt" in left_out.left_out_reason
    assert pair(alpha, bravo)[0] == 12 and elo(alpha).votes == 12


def test_a_flagged_judges_votes_do_not_count_towards_a_prompts_frequency_until_its_flag_is_cleared(three_models):
    """A flagged visitor voting again and again on "hi" (within its budgets) advanced its count, so honest votes
    on it were down-sampled sooner. Cleared, its votes are counted then, in the order they were cast."""
    from ratings.models import JudgeFlag, PromptCount, RatedVote
    from ratings.prompt_labels import keep_prompt_vote

    alpha, bravo, _ = three_models
    services.judge_flag(kind=JudgeFlag.Kind.SESSION, judge_hash=make_battle(owner="spammer").owner_hash,
                        reason="a test", by="test")  # fmt: skip
    for _ in range(12):
        rated_vote(alpha, bravo, prompt="hi", owner="spammer")
    assert not PromptCount.objects.filter(votes__gt=0).exists()
    honest = [rated_vote(alpha, bravo, prompt="hi", owner=f"visitor-{i}") for i in range(10)]
    assert all(vote.rating.in_counts for vote in honest)  # the first 10 votes on it, as without the spammer
    assert [vote.rating.prompt_occurrence for vote in honest] == list(range(1, 11))
    services.judge_clear(kind=JudgeFlag.Kind.SESSION, judge_hash=make_battle(owner="spammer").owner_hash, by="test")
    spam = RatedVote.objects.filter(judge_hash=make_battle(owner="spammer").owner_hash).order_by("vote_id")
    assert [r.prompt_occurrence for r in spam] == list(range(11, 23))  # counted now, in the order cast
    assert [r.in_counts for r in spam] == [keep_prompt_vote(n, 10) for n in range(11, 23)]  # then down-sampled
    assert PromptCount.objects.get().votes == 22


def test_a_vote_counted_before_its_judge_was_flagged_comes_back_as_it_was_whatever_the_threshold_now(three_models):
    """A clear asked the down-sampling again of every vote coming back, under the threshold of the moment: a
    vote kept as the 12th on "hi" at threshold 10 was left out for good once the threshold had moved to 11."""
    from ratings.models import JudgeFlag

    alpha, bravo, _ = three_models
    for i in range(11):
        rated_vote(alpha, bravo, prompt="hi", owner=f"visitor-{i}")
    twelfth = rated_vote(alpha, bravo, prompt="hi", owner="later-flagged")
    assert twelfth.rating.prompt_occurrence == 12 and twelfth.rating.in_counts
    judge = twelfth.rating.judge_hash
    services.judge_flag(kind=JudgeFlag.Kind.SESSION, judge_hash=judge, reason="a test", by="test")
    LeaderboardPolicy.objects.update(duplicate_prompt_threshold=11)
    services.judge_clear(kind=JudgeFlag.Kind.SESSION, judge_hash=judge, by="test")
    twelfth.rating.refresh_from_db()
    assert twelfth.rating.in_counts and twelfth.rating.left_out_reason == ""


def test_a_clear_counts_the_prompts_of_its_held_votes_in_a_few_statements(three_models, django_assert_max_num_queries):
    """Three statements per distinct prompt, under the flags and judge locks, while honest votes on those
    prompts waited: an address held for a while and cleared brought thousands."""
    from ratings.models import JudgeFlag, PromptCount

    alpha, bravo, _ = three_models
    judge = make_battle(owner="held").owner_hash
    services.judge_flag(kind=JudgeFlag.Kind.SESSION, judge_hash=judge, reason="a test", by="test")
    for i in range(40):
        rated_vote(alpha, bravo, prompt=f"Question {i}?", owner="held")
    with django_assert_max_num_queries(25):
        services.judge_clear(kind=JudgeFlag.Kind.SESSION, judge_hash=judge, by="test")
    assert sorted(PromptCount.objects.values_list("votes", flat=True)) == [1] * 40


def test_each_category_with_enough_votes_gets_a_board_in_the_snapshot(three_models):
    alpha, bravo, charlie = three_models
    for i in range(12):
        rated_vote(alpha, bravo, prompt=f"Write Python code to sort list number {i}.")
        rated_vote(bravo, charlie, Vote.Outcome.B, prompt=f"What is {i} + {i} * 3?")
    rated_vote(charlie, alpha, Vote.Outcome.B, prompt="Hola, ¿cómo estás hoy?")
    snapshot = services.leaderboard_recompute(rounds=10, seed=0, category_min_votes=10)
    assert {"coding", "math", "exclude_ties", "language:en"} <= set(snapshot.categories)
    assert "language:es" not in snapshot.categories  # one vote: under the minimum
    coding = snapshot.categories["coding"]
    assert coding["n_battles"] == 12 and {r["name"] for r in coding["models"]} == {"alpha", "bravo"}


# Anomalous judges


def test_flagging_a_judge_takes_its_votes_out_of_the_counts_and_clearing_puts_them_back(three_models):
    alpha, bravo, _ = three_models
    for _ in range(3):
        rated_vote(alpha, bravo, owner="stuffer")
    rated_vote(alpha, bravo, Vote.Outcome.B, owner="honest")
    from battles.services import visitor_hash

    stuffer = visitor_hash("stuffer")
    services.judge_flag(judge_hash=stuffer, reason="always votes left")
    assert pair(alpha, bravo) == (0, 1, 0, 0)
    rated_vote(alpha, bravo, owner="stuffer")  # a flagged judge's new votes stay out too
    assert pair(alpha, bravo) == (0, 1, 0, 0)
    services.judge_clear(judge_hash=stuffer, by="admin")
    assert pair(alpha, bravo) == (4, 1, 0, 0)
    services.judge_clear(judge_hash=stuffer, by="admin")  # once only
    assert pair(alpha, bravo) == (4, 1, 0, 0)


def test_clearing_a_judge_leaves_out_what_the_down_sampling_of_frequent_prompts_would_have(three_models):
    """A flagged judge's votes were left out for the flag before the down-sampling was asked about them;
    cleared, the 11th "hi" and later still follow the down-sampling, as if the judge had never been flagged."""
    from battles.services import visitor_hash
    from ratings.models import RatedVote

    alpha, bravo, _ = three_models
    services.judge_flag(judge_hash=visitor_hash("bot"), reason="a bot")
    for _ in range(15):
        rated_vote(alpha, bravo, prompt="hi", owner="bot")  # threshold: 10 (the policy's floor)
    assert pair(alpha, bravo)[0] == 0
    services.judge_clear(judge_hash=visitor_hash("bot"), by="admin")
    assert pair(alpha, bravo)[0] == 12  # as an unflagged judge's 15 "hi": 10, then every 2nd
    decisions = list(RatedVote.objects.order_by("prompt_occurrence").values_list("prompt_occurrence", "in_counts"))
    assert decisions == [(n, n <= 10 or n in (12, 14)) for n in range(1, 16)]
    assert all("Frequent prompt" in r.left_out_reason for r in RatedVote.objects.filter(in_counts=False))


ATTACKER_IP = "198.51.100.7"
# A judge is a session, or an address (then the vote rated meanwhile comes from another session there).
JUDGE_KINDS = pytest.mark.parametrize("kind", ["session", "address"])


def judge_of(kind: str) -> tuple[str, str]:
    """The flagged judge's hash, and the session of the vote rated while it is flagged."""
    from battles.services import client_hash, visitor_hash

    if kind == "address":
        return client_hash(ATTACKER_IP), "judge-2"
    return visitor_hash("judge"), "judge"


def _started_moving_counts_slowly(monkeypatch, action):
    """`action` started on a thread of its own whose pair-count changes take 0.5 s each (a large arena's loop
    takes seconds), and an Event set when it begins to move counts: the window a race test acts in."""
    import threading
    import time

    from django.db import connection

    moving, original = threading.Event(), services._pair_count_change

    def slowly(**change):  # that thread only
        if threading.current_thread().name == "moving counts":
            moving.set()
            time.sleep(0.5)
        original(**change)

    monkeypatch.setattr(services, "_pair_count_change", slowly)

    def run():
        try:
            action()
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="moving counts")
    thread.start()
    return thread, moving


@pytest.mark.django_db(transaction=True)
@JUDGE_KINDS
def test_a_vote_rated_while_its_judge_is_being_flagged_is_neither_flipped_uncounted_nor_counted_twice(
    monkeypatch, kind
):
    """The flag moves the judge's votes out one by one (slowly here, on a large arena really), then marks
    them out. A vote of that judge rated and committed meanwhile, on another pair, was marked out too
    without its count taken back: still counted, yet a later clear counted it again. Now the vote waits for
    the flag (the judge's lock) and is left out; the clear counts each vote once."""
    from ratings.models import RatedVote

    judge, later_session = judge_of(kind)
    alpha, bravo, charlie = make_model("alpha"), make_model("bravo"), make_model("charlie")
    rated_vote(alpha, bravo, owner="judge", ip=ATTACKER_IP)
    flagging, moving = _started_moving_counts_slowly(
        monkeypatch, lambda: services.judge_flag(kind=kind, judge_hash=judge, reason="test")
    )
    moving.wait(10)
    late = rated_vote(alpha, charlie, owner=later_session, ip=ATTACKER_IP)  # while the flag moves votes out
    flagging.join()
    assert RatedVote.objects.get(vote=late).in_counts is False  # it waited for the flag
    counted = RatedVote.objects.filter(in_counts=True).count()
    assert sum(sum(pair(a, b)) for a, b in [(alpha, bravo), (alpha, charlie)]) == counted
    services.judge_clear(kind=kind, judge_hash=judge, by="admin")
    assert pair(alpha, bravo) == pair(alpha, charlie) == (1, 0, 0, 0)


@pytest.mark.django_db(transaction=True)
@JUDGE_KINDS
def test_a_judge_flagged_while_its_vote_is_rated_has_that_vote_left_out(kind):
    """vote_rate reads the judge's flag, then counts the vote. A flag committed in between could not see the
    vote, not yet committed, to take it out: it stayed counted for a flagged judge. (A clear in between left
    a vote that had read "flagged" out for good; the same lock serialises it, but a vote left out takes no
    row lock to hold it at that point, so it is not staged here.)"""
    import threading
    import time

    from django.db import connection

    from ratings.models import RatedVote
    from tests.ratings.conftest import addressed_battle

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    alpha, bravo = make_model("alpha"), make_model("bravo")
    judge, session = judge_of(kind)
    EloRating.objects.create(model=alpha)
    LeaderboardPolicy.current()  # as in a running arena (created inside both transactions, it serialised them)
    vote = make_vote(addressed_battle(model_a=alpha, model_b=bravo, owner=session, ip=ATTACKER_IP))
    holding, release = threading.Event(), threading.Event()

    def in_thread(work):
        def run():
            try:
                work()
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def hold_the_rating_row():  # vote_rate has read the flag and waits here, before it counts the vote
        with transaction.atomic():
            EloRating.objects.select_for_update().get(model=alpha)
            holding.set()
            release.wait(10)

    holder = in_thread(hold_the_rating_row)
    holding.wait(10)
    rater = in_thread(lambda: services.vote_rate(vote_id=vote.pk))
    time.sleep(0.5)
    flagger = in_thread(lambda: services.judge_flag(kind=kind, judge_hash=judge, reason="test"))
    time.sleep(0.5)  # without the judge's lock the flag commits here, blind to the vote in flight
    release.set()
    for thread in (holder, rater, flagger):
        thread.join(20)
    assert RatedVote.objects.get().in_counts is False
    assert pair(alpha, bravo) == (0, 0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_a_vote_rated_while_a_snapshot_reads_its_inputs_is_in_all_of_them_or_in_none(monkeypatch):
    """The counts, the newest vote they hold and the arena votes were read one after the other: a vote rated in
    between was named the newest included (and in the style board) yet missing from the published counts."""
    import threading

    from django.db import connection

    from ratings.models import RatedVote

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    alpha, bravo = make_model("alpha"), make_model("bravo")
    first = rated_vote(alpha, bravo)
    late = make_vote(make_battle(model_a=alpha, model_b=bravo))
    counts_load = selectors.labelled_pair_counts_load

    def counts_then_a_vote_is_rated_elsewhere():
        counts = counts_load()

        def rate():
            try:
                services.vote_rate(vote_id=late.pk)
            finally:
                connection.close()

        worker = threading.Thread(target=rate)
        worker.start()
        worker.join(20)
        return counts

    monkeypatch.setattr(selectors, "labelled_pair_counts_load", counts_then_a_vote_is_rated_elsewhere)
    snapshot = services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False, style_min_votes=1)
    assert RatedVote.objects.filter(in_counts=True).count() == 2  # the late vote was rated meanwhile
    assert snapshot.vote_count == 1
    assert snapshot.data_cutoff == RatedVote.objects.get(vote=first).voted_at


@pytest.mark.django_db(transaction=True)
def test_two_recomputes_at_once_store_one_snapshot(monkeypatch):
    """Both found nothing new to them, computed, and each stored the same snapshot (a `leaderboard --save`
    during the scheduled one, or two beats on one database)."""
    import threading

    from django.db import connection

    alpha, bravo = make_model("alpha"), make_model("bravo")
    rated_vote(alpha, bravo)
    rated_vote(bravo, alpha)
    plan_refresh, other = services.sampling_plan_refresh, []

    def plan_then_another_recompute_finishes(pc):
        plan = plan_refresh(pc)
        if not other:  # the first recompute, between its look for a newer snapshot and its insert

            def recompute():
                try:
                    other.append(services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False))
                finally:
                    connection.close()

            other.append(None)
            thread = threading.Thread(target=recompute)
            thread.start()
            thread.join(30)
        return plan

    monkeypatch.setattr(services, "sampling_plan_refresh", plan_then_another_recompute_finishes)
    snapshot = services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False)
    assert other[1].is_new and not snapshot.is_new and snapshot.pk == other[1].pk
    assert LeaderboardSnapshot.objects.count() == 1


def test_the_screen_flags_a_judge_who_always_votes_left_and_leaves_honest_ones(three_models):
    import random

    from battles.services import visitor_hash
    from ratings.models import JudgeFlag

    models = list(three_models)
    rng = random.Random(0)
    for i in range(150):  # honest judges, a vote or two each
        a, b = rng.sample(models, 2)
        rated_vote(a, b, rng.choice([Vote.Outcome.A, Vote.Outcome.B, Vote.Outcome.TIE]), owner=f"honest-{i % 60}")
    for _ in range(20):
        a, b = rng.sample(models, 2)
        rated_vote(a, b, Vote.Outcome.A, owner="left-clicker")
    flagged = services.judges_screen(alpha=0.01)
    assert [f.judge_hash for f in flagged] == [visitor_hash("left-clicker")]
    assert "left" in flagged[0].reason
    assert services.judges_screen(alpha=0.01) == []  # flagged once
    JudgeFlag.objects.update(state=JudgeFlag.State.CLEARED)
    assert services.judges_screen(alpha=0.01) == []  # an admin's clearing stands


# Screening addresses: every session's votes from one address, screened as one judge's

VOTE_OUTCOMES = {code: outcome for outcome, code in selectors.OUTCOME_CODES.items()}


@pytest.fixture
def imported_board(db):
    """Four models, m0 (weakest) to m3, with 8,000 imported battles drawn from a two-tie Davidson model (a spread of strengths like the real board's): the fit
    every vote below is screened against. Returns the models and the fitted outcome table."""
    import numpy as np

    from ratings.engine.anomaly import outcome_table_from_counts
    from ratings.engine.simulate import simulate_tie_model

    models = [make_model(f"m{i}") for i in range(4)]
    theta, phi = np.linspace(-1.2, 1.2, 4), np.zeros(4)  # about 420 Elo from m0 to m3
    model_a, model_b, outcome = simulate_tie_model(theta, phi, np.log(0.5), np.log(0.25), 8000, seed=0)
    services.pair_counts_add(pair_outcome_counts(model_a, model_b, outcome, [m.name for m in models]))
    return models, outcome_table_from_counts(selectors.pair_counts_load())


def cast(model_a, model_b, outcome: int, *, owner: str, ip: str = "") -> Vote:
    """A vote (engine outcome code) of session `owner` from `ip`, cast a minute after the answers began to
    appear, as a reader would (the fast-vote test has nothing to say), rated as the task would."""
    from datetime import timedelta

    from tests.ratings.conftest import addressed_battle

    battle = addressed_battle(model_a=model_a, model_b=model_b, owner=owner, ip=ip)
    battle.turns.update(version_started=timezone.now() - timedelta(minutes=1))
    vote = make_vote(battle, outcome=VOTE_OUTCOMES[outcome])
    services.vote_rate(vote_id=vote.pk)
    return vote


def honest_sessions(board, rng, *, ip: str, sessions: int, votes: int, name: str) -> None:
    """`sessions` sessions of `votes` votes each from `ip`, every outcome drawn from the fitted table."""
    from ratings.engine import simulate_judges as sim

    models, table = board
    model_a, model_b = sim.uniform_battles(rng, len(models), (sessions, votes))
    outcome = sim.outcomes_from_table(rng, table, model_a, model_b)
    for session in range(sessions):
        for a, b, y in zip(model_a[session], model_b[session], outcome[session], strict=True):
            cast(models[a], models[b], int(y), owner=f"{name}-{session}", ip=ip)


def target_sessions(board, rng, *, ip: str, sessions: int, votes: int, name: str) -> None:
    """A visitor who votes only on battles with m0 and always for it, taking a new session every `votes`."""
    from ratings.engine import simulate_judges as sim
    from ratings.engine.counts import A_WINS, B_WINS

    models, _ = board
    model_a, model_b = sim.target_battles(rng, len(models), 0, (sessions, votes))
    for session in range(sessions):
        for a, b in zip(model_a[session], model_b[session], strict=True):
            cast(models[a], models[b], A_WINS if a == 0 else B_WINS, owner=f"{name}-{session}", ip=ip)


def counted() -> int:
    """Votes in the pair counts, imported ones included."""
    return sum(sum(row) for row in PairCount.objects.values_list("a_wins", "b_wins", "ties", "both_bad"))


def test_a_visitor_taking_a_new_session_every_5_votes_is_flagged_by_its_address_until_an_admin_clears_it(
    imported_board,
):
    import numpy as np

    from battles.services import client_hash
    from ratings.models import JudgeFlag, RatedVote

    rng = np.random.default_rng(1)
    honest_sessions(imported_board, rng, ip="203.0.113.20", sessions=2, votes=5, name="honest")
    target_sessions(imported_board, rng, ip=ATTACKER_IP, sessions=6, votes=5, name="booster")
    everything = counted()
    flagged = services.judges_screen(alpha=0.01)
    assert [(f.kind, f.judge_hash) for f in flagged] == [(JudgeFlag.Kind.ADDRESS, client_hash(ATTACKER_IP))]
    reason = flagged[0].reason
    assert reason.startswith("6 sessions from one address") and "voted for m0 in 30 of 30" in reason
    assert not JudgeFlag.objects.filter(kind=JudgeFlag.Kind.SESSION).exists()  # 5 votes each: never screened
    attacker = RatedVote.objects.filter(client_hash=client_hash(ATTACKER_IP))
    assert counted() == everything - 30
    assert services.leaderboard_recompute(rounds=0, seed=0, bootstrap=False).vote_count == everything - 30
    assert all(r.left_out_reason.startswith("Address flagged as anomalous: 6 sessions") for r in attacker)
    cast(*imported_board[0][:2], 0, owner="booster-new", ip=ATTACKER_IP)  # a new session, the same address
    assert counted() == everything - 30 and attacker.filter(in_counts=False).count() == 31
    services.judge_clear(kind=JudgeFlag.Kind.ADDRESS, judge_hash=client_hash(ATTACKER_IP), by="admin")
    assert counted() == everything + 1 and attacker.filter(in_counts=True).count() == 31
    assert services.judges_screen(alpha=0.01) == []  # an admin's clearing stands


def test_honest_sessions_sharing_an_address_are_screened_together_and_not_flagged(imported_board):
    """Under the null every honest vote is a draw from the fitted table, whoever cast it: an address's
    sessions together are one honest judge, flagged no more often than the screen's level allows."""
    import numpy as np

    rng = np.random.default_rng(2)
    for address in range(6):
        honest_sessions(imported_board, rng, ip=f"203.0.113.{address}", sessions=4, votes=5, name=f"visitor{address}")
    screened = selectors.judge_votes().address
    assert (screened != "").sum() == 120 and np.unique(screened).size == 6  # each address is screened, at 20 votes
    assert services.judges_screen(alpha=0.01) == []
    assert counted() == 8000 + 120


def test_a_session_voting_on_long_answers_faster_than_they_can_be_read_is_flagged_for_it(imported_board):
    """Its outcomes look honest (drawn from the fit): only the timings the vote stores give it away."""
    from datetime import timedelta

    import numpy as np

    from battles.services import visitor_hash
    from ratings.engine import simulate_judges as sim
    from tests.ratings.conftest import addressed_battle

    models, table = imported_board
    rng = np.random.default_rng(4)
    honest_sessions(imported_board, rng, ip="203.0.113.30", sessions=3, votes=20, name="reader")
    model_a, model_b = sim.uniform_battles(rng, len(models), (1, 20))
    outcomes = sim.outcomes_from_table(rng, table, model_a, model_b)[0]
    long_answer = "word " * 300  # 600 words on the two sides: 40 s to skim at 15 words a second
    for a, b, y in zip(model_a[0], model_b[0], outcomes, strict=True):
        battle = addressed_battle(model_a=models[a], model_b=models[b], owner="clicker", ip="203.0.113.31")
        battle.turns.update(answer_a=long_answer, answer_b=long_answer,
                            version_started=timezone.now() - timedelta(seconds=2))  # fmt: skip
        services.vote_rate(vote_id=make_vote(battle, outcome=VOTE_OUTCOMES[int(y)]).pk)
    flagged = services.judges_screen(alpha=0.01)
    assert [f.judge_hash for f in flagged] == [visitor_hash("clicker")]
    assert "voted before the answers could be read in 20 of 20 timed votes" in flagged[0].reason


def test_votes_without_an_address_are_never_flagged_as_one_address(imported_board):
    """Imported votes and votes of battles started without an address share the empty address: it is no one's."""
    import numpy as np

    from ratings.models import JudgeFlag

    target_sessions(imported_board, np.random.default_rng(3), ip="", sessions=6, votes=5, name="nowhere")
    assert services.judges_screen(alpha=0.01) == []
    assert not JudgeFlag.objects.exists()
    with pytest.raises(ValueError, match="without an address"):
        services.judge_flag(kind=JudgeFlag.Kind.ADDRESS, judge_hash="", reason="test")
    assert counted() == 8000 + 30


def test_a_vote_held_out_by_its_session_and_its_address_counts_again_only_when_both_are_cleared(three_models):
    from battles.services import client_hash, visitor_hash
    from ratings.models import JudgeFlag, RatedVote

    alpha, bravo, _ = three_models
    session, address = visitor_hash("judge"), client_hash(ATTACKER_IP)
    rated_vote(alpha, bravo, owner="judge", ip=ATTACKER_IP)
    rated_vote(alpha, bravo, owner="another", ip=ATTACKER_IP)
    services.judge_flag(judge_hash=session, reason="by session")
    services.judge_flag(kind=JudgeFlag.Kind.ADDRESS, judge_hash=address, reason="by address")
    assert pair(alpha, bravo) == (0, 0, 0, 0)
    services.judge_clear(judge_hash=session, by="admin")
    assert pair(alpha, bravo) == (0, 0, 0, 0)  # the address's flag still holds both
    assert set(RatedVote.objects.values_list("left_out_reason", flat=True)) == {
        "Address flagged as anomalous: by address"
    }
    services.judge_flag(judge_hash=session, reason="by session")
    services.judge_clear(kind=JudgeFlag.Kind.ADDRESS, judge_hash=address, by="admin")
    assert pair(alpha, bravo) == (1, 0, 0, 0)  # the other session's vote; the flagged session's stays out
    assert RatedVote.objects.get(judge_hash=session).left_out_reason == "Judge flagged as anomalous: by session"
    services.judge_clear(judge_hash=session, by="admin")
    assert pair(alpha, bravo) == (2, 0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_an_address_flagged_while_one_of_its_sessions_is_cleared_keeps_that_sessions_vote_out(monkeypatch):
    """Clearing a session asks whether each vote's address is flagged, then counts the vote. An address flag
    committed in between saw the vote left out and had nothing to take out: the vote came back counted for a
    flagged address. Flags and clears now take turns."""
    from battles.services import client_hash, visitor_hash
    from ratings.models import JudgeFlag, RatedVote

    alpha, bravo = make_model("alpha"), make_model("bravo")
    rated_vote(alpha, bravo, owner="judge", ip=ATTACKER_IP)
    services.judge_flag(judge_hash=visitor_hash("judge"), reason="by session")
    # The clear moves counts once it has read that the address is not flagged.
    clearing, moving = _started_moving_counts_slowly(
        monkeypatch, lambda: services.judge_clear(judge_hash=visitor_hash("judge"), by="admin")
    )
    moving.wait(10)
    services.judge_flag(kind=JudgeFlag.Kind.ADDRESS, judge_hash=client_hash(ATTACKER_IP), reason="by address")
    clearing.join()
    assert RatedVote.objects.get().in_counts is False
    assert pair(alpha, bravo) == (0, 0, 0, 0)


# Each snapshot plans the draw and says how robust the top is


def test_a_snapshot_plans_how_pairs_are_drawn_and_how_robust_its_first_place_is(small_arena):
    from inference.models import SamplingPlan

    snapshot = services.leaderboard_recompute(rounds=10, seed=0)
    plan = SamplingPlan.objects.get()
    ids = {m.pk for m in small_arena}
    assert {frozenset(pair[:2]) for pair in plan.pair_probabilities} == {frozenset(p) for p in [
        (a, b) for a in ids for b in ids if a < b]}  # fmt: skip
    assert sum(p for _, _, p in plan.pair_probabilities) == pytest.approx(1.0)
    assert "of battles" in plan.summary["description"] == snapshot.extras["sampling"]["description"]
    first = snapshot.extras["robustness"]["first_place"]
    assert first["leader"] == "alpha" and first["verified"] and "holds unless" in first["sentence"]


def test_a_vote_that_cannot_be_rated_is_left_for_later_and_the_votes_after_it_are_rated(three_models, caplog):
    """The oldest such vote stopped every run at itself: no vote cast after it was ever rated."""
    alpha, bravo, _ = three_models
    broken = make_vote(model_a=alpha, model_b=bravo)
    Vote.objects.filter(pk=broken.pk).update(conversation_a="not a conversation")  # a row no rating can read
    later = [make_vote(model_a=alpha, model_b=bravo) for _ in range(2)]
    assert services.votes_rate_pending(older_than_seconds=0) == services.PendingRated(applied=2, more=False)
    assert all(Vote.objects.get(pk=vote.pk).rated_at for vote in later)
    assert Vote.objects.get(pk=broken.pk).rated_at is None  # tried again next run
    assert f"vote {broken.pk} could not be rated" in caplog.text


def test_a_run_with_a_limit_rates_that_many_of_the_oldest_votes_and_says_more_are_waiting(three_models):
    alpha, bravo, _ = three_models
    votes = [make_vote(model_a=alpha, model_b=bravo) for _ in range(5)]
    assert services.votes_rate_pending(older_than_seconds=0, limit=2) == services.PendingRated(applied=2, more=True)
    assert [Vote.objects.get(pk=vote.pk).rated_at is not None for vote in votes] == [True, True, False, False, False]
    assert services.votes_rate_pending(older_than_seconds=0, limit=2) == services.PendingRated(applied=2, more=True)
    assert services.votes_rate_pending(older_than_seconds=0, limit=2) == services.PendingRated(applied=1, more=False)
    assert not Vote.objects.filter(rated_at__isnull=True).exists()


def test_votes_that_cannot_be_rated_do_not_count_against_a_runs_limit(three_models):
    """Counted, as many such votes as a run's limit would have stopped every run before any later vote."""
    alpha, bravo, _ = three_models
    broken = [make_vote(model_a=alpha, model_b=bravo) for _ in range(2)]
    Vote.objects.filter(pk__in=[vote.pk for vote in broken]).update(conversation_a="not a conversation")
    later = [make_vote(model_a=alpha, model_b=bravo) for _ in range(3)]
    assert services.votes_rate_pending(older_than_seconds=0, limit=2) == services.PendingRated(applied=2, more=True)
    assert services.votes_rate_pending(older_than_seconds=0, limit=2) == services.PendingRated(applied=1, more=False)
    assert all(Vote.objects.get(pk=vote.pk).rated_at for vote in later)
    assert Vote.objects.filter(rated_at__isnull=True).count() == 2  # the broken two, tried again later


def test_a_vote_that_cannot_be_rated_is_not_retried_by_every_chained_run_but_after_a_pause(
    three_models, caplog, monkeypatch
):
    """A backlog is rated in chained runs of VOTE_RATING_CHUNK: each run retried (and logged) every such vote
    before its chunk."""
    alpha, bravo, _ = three_models
    broken = make_vote(model_a=alpha, model_b=bravo)
    Vote.objects.filter(pk=broken.pk).update(conversation_a="not a conversation")
    later = [make_vote(model_a=alpha, model_b=bravo) for _ in range(3)]
    message = f"vote {broken.pk} could not be rated"
    assert services.votes_rate_pending(older_than_seconds=0, limit=1).applied == 1
    assert caplog.text.count(message) == 1
    assert services.votes_rate_pending(older_than_seconds=0, limit=1).applied == 1
    assert services.votes_rate_pending(older_than_seconds=0, limit=5) == services.PendingRated(applied=1, more=False)
    assert caplog.text.count(message) == 1  # left out of the runs after its failure
    assert all(Vote.objects.get(pk=vote.pk).rated_at for vote in later)
    monkeypatch.setattr(services, "FAILED_VOTE_PAUSE", 0.0)  # the pause over
    assert services.votes_rate_pending(older_than_seconds=0).applied == 0
    assert caplog.text.count(message) == 2  # tried again


def test_a_token_count_a_model_server_reported_wrongly_does_not_stop_its_vote_being_rated(three_models):
    alpha, bravo, _ = three_models
    for reported in (-1, 2**40):
        vote = make_vote(model_a=alpha, model_b=bravo)
        Vote.objects.filter(pk=vote.pk).update(timings_a=[{"tokens": reported}])
        assert services.vote_rate(vote_id=vote.pk) is True


def test_the_screen_never_flags_again_a_judge_an_admin_cleared_even_on_a_list_read_before_the_clearing(three_models):
    """A screen reads the flags once, then flags what it finds: an admin's clearing in between was undone."""
    from ratings.models import JudgeFlag

    alpha, bravo, _ = three_models
    rated_vote(alpha, bravo, owner="judge")
    judge = Vote.objects.get().judge_hash
    services.judge_flag(judge_hash=judge, reason="screened")
    services.judge_clear(judge_hash=judge, by="admin")
    assert services.judge_flag(judge_hash=judge, reason="screened again", by="anomaly screen", only_new=True) is None
    assert JudgeFlag.objects.get().state == JudgeFlag.State.CLEARED
    assert pair(alpha, bravo) == (1, 0, 0, 0)


@pytest.mark.django_db
def test_vote_whose_answer_names_a_model_is_kept_but_not_counted():
    from ratings.models import EloRating, PairCount, RatedVote
    from ratings.services import vote_rate

    battle = make_battle(owner="owner", model_a=make_model("gpt-omega", organization="OmegaAI"))
    battle.turns.filter(index=0).update(answer_b="As a model trained by OmegaAI, I think...")
    vote = cast_vote(battle, owner="owner", outcome="b")
    assert vote.excluded_reason == "An answer said which company made it, so this vote will not count."
    assert vote_rate(vote_id=vote.pk) is False
    vote.refresh_from_db()
    assert vote.rated_at is not None  # handled once ...
    assert not EloRating.objects.exists() and not PairCount.objects.exists()  # ... and counted nowhere
    assert not RatedVote.objects.exists()
