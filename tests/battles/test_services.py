import pytest
from django.test import override_settings

from battles import services
from battles.models import Turn, Vote
from tests.factories import make_battle, make_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_models():
    return make_model("alpha"), make_model("beta")


def test_battle_start_draws_two_distinct_models_and_stores_the_prompt(two_models):
    battle = services.battle_start(session_key="s1", prompt="  Hello?  ")
    assert battle.model_a != battle.model_b
    assert {battle.model_a.name, battle.model_b.name} == {"alpha", "beta"}
    assert battle.turns.get().prompt == "Hello?"


@pytest.mark.parametrize("prompt", ["", "   ", None, 42])
def test_empty_or_non_text_prompt_is_rejected_with_a_clear_message(two_models, prompt):
    with pytest.raises(services.BattleError, match="type a prompt"):
        services.battle_start(session_key="s1", prompt=prompt)


@override_settings(PROMPT_MAX_CHARS=10)
def test_over_long_prompt_is_rejected_with_the_limit(two_models):
    with pytest.raises(services.BattleError, match="limit is 10"):
        services.battle_start(session_key="s1", prompt="x" * 11)


def test_battle_start_without_two_models_explains_what_is_missing():
    make_model("lonely")
    with pytest.raises(services.BattleError, match="at least two active models"):
        services.battle_start(session_key="s1", prompt="hi")


def test_vote_is_stored_with_both_conversations_timings_and_a_hashed_judge(django_capture_on_commit_callbacks):
    battle = make_battle(session_key="owner")
    with django_capture_on_commit_callbacks() as callbacks:
        vote = services.vote_record(battle_id=battle.id, session_key="owner", outcome="tie")
    assert vote.outcome == Vote.Outcome.TIE
    assert vote.conversation_a == [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Answer **A**"}]
    assert vote.conversation_b[-1] == {"role": "assistant", "content": "Answer B"}
    assert vote.timings_a[0]["finish_reason"] == "stop"
    assert vote.judge_hash == services.judge_hash("owner") != "owner"
    assert len(callbacks) == 1  # the rating task is queued on commit


def test_vote_queues_the_rating_task_on_commit(django_capture_on_commit_callbacks, monkeypatch):
    from ratings import tasks

    queued = []
    monkeypatch.setattr(tasks.vote_rate, "delay", lambda vote_id: queued.append(vote_id))
    battle = make_battle(session_key="owner")
    with django_capture_on_commit_callbacks(execute=True):
        vote = services.vote_record(battle_id=battle.id, session_key="owner", outcome="a")
        assert queued == []  # not before commit
    assert queued == [vote.pk]


def test_vote_is_rejected_when_battle_belongs_to_another_session():
    battle = make_battle(session_key="owner")
    with pytest.raises(services.BattleError, match="belongs to another visitor"):
        services.vote_record(battle_id=battle.id, session_key="intruder", outcome="a")
    assert not Vote.objects.exists()


def test_second_vote_on_a_finished_battle_is_rejected():
    battle = make_battle(session_key="owner")
    services.vote_record(battle_id=battle.id, session_key="owner", outcome="a")
    with pytest.raises(services.BattleError, match="has been voted on"):
        services.vote_record(battle_id=battle.id, session_key="owner", outcome="b")
    assert Vote.objects.get().outcome == "a"


def test_unknown_outcome_is_rejected():
    battle = make_battle(session_key="owner")
    with pytest.raises(services.BattleError, match="Unknown vote"):
        services.vote_record(battle_id=battle.id, session_key="owner", outcome="a-ish")


def test_battle_with_a_failed_side_cannot_be_voted_into_the_ratings():
    battle = make_battle(session_key="owner")
    services.turn_side_finish(turn_id=battle.turns.get().pk, side="b", answer="", timings={}, error="timeout")
    with pytest.raises(services.BattleError, match="can't be voted"):
        services.vote_record(battle_id=battle.id, session_key="owner", outcome="a")


def test_continue_adds_a_turn_and_regenerate_clears_the_last_answers():
    battle = make_battle(session_key="owner")
    turn = services.battle_continue(battle_id=battle.id, session_key="owner", prompt="And then?")
    assert turn.index == 1
    with pytest.raises(services.BattleError, match="must finish"):
        services.battle_continue(battle_id=battle.id, session_key="owner", prompt="Too soon")
    services.turn_side_finish(turn_id=turn.pk, side="a", answer="x", timings={"tokens": 1})
    services.turn_side_finish(turn_id=turn.pk, side="b", answer="y", timings={"tokens": 1})
    regenerated = services.turn_regenerate(battle_id=battle.id, session_key="owner")
    assert regenerated.pk == turn.pk
    turn.refresh_from_db()
    assert (turn.answer_a, turn.status_a, turn.status_b) == ("", Turn.Status.PENDING, Turn.Status.PENDING)


def test_no_more_turns_after_the_vote():
    battle = make_battle(session_key="owner")
    services.vote_record(battle_id=battle.id, session_key="owner", outcome="bothbad")
    with pytest.raises(services.BattleError, match="voted on"):
        services.battle_continue(battle_id=battle.id, session_key="owner", prompt="more")
    with pytest.raises(services.BattleError, match="voted on"):
        services.turn_regenerate(battle_id=battle.id, session_key="owner")


def test_malformed_battle_id_reads_as_missing():
    with pytest.raises(services.BattleError, match="does not exist"):
        services.vote_record(battle_id="not-a-uuid", session_key="owner", outcome="a")


def test_vote_is_kept_when_the_broker_is_down_and_the_sweep_rates_it_later(
    django_capture_on_commit_callbacks, monkeypatch
):
    import kombu.exceptions

    from ratings import tasks
    from ratings.models import EloRating
    from ratings.services import votes_rate_pending

    def broker_down(*args, **kwargs):
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.vote_rate, "delay", broker_down)  # the edge: Redis is unreachable
    battle = make_battle(session_key="owner")
    with django_capture_on_commit_callbacks(execute=True):
        vote = services.vote_record(battle_id=battle.id, session_key="owner", outcome="a")
    vote.refresh_from_db()
    assert vote.rated_at is None
    assert votes_rate_pending(older_than_seconds=0) == 1
    assert votes_rate_pending(older_than_seconds=0) == 0  # once only
    assert EloRating.objects.get(model=battle.model_a).rating == 1002.0


def test_vote_whose_answer_names_a_model_is_kept_but_not_counted():
    from ratings.models import EloRating, PairCount
    from ratings.services import vote_rate

    battle = make_battle(session_key="owner", model_a=make_model("gpt-omega", organization="OmegaAI"))
    battle.turns.filter(index=0).update(answer_b="As a model trained by OmegaAI, I think...")
    vote = services.vote_record(battle_id=battle.id, session_key="owner", outcome="b")
    assert "not blind" in vote.excluded_reason
    assert vote_rate(vote_id=vote.pk) is False
    vote.refresh_from_db()
    assert vote.rated_at is not None  # handled once ...
    assert not EloRating.objects.exists() and not PairCount.objects.exists()  # ... and counted nowhere
    assert not Vote.objects.counted().exists()


def test_an_answer_that_merely_contains_a_name_inside_a_word_is_not_a_leak():
    battle = make_battle(session_key="owner", model_a=make_model("mist"), model_b=make_model("orca"))
    battle.turns.filter(index=0).update(answer_a="The morning mistake by orcas was small.")
    vote = services.vote_record(battle_id=battle.id, session_key="owner", outcome="a")
    assert vote.excluded_reason == ""


@override_settings(BATTLES_PER_HOUR=2)
def test_battles_per_hour_are_limited_per_address_and_per_session(two_models):
    services.battle_start(session_key="s1", prompt="one", client_ip="203.0.113.9")
    services.battle_start(session_key="s2", prompt="two", client_ip="203.0.113.9")
    with pytest.raises(services.BattleError, match="2 battles in the last hour"):
        services.battle_start(session_key="s3", prompt="three", client_ip="203.0.113.9")  # same address
    services.battle_start(session_key="s4", prompt="four", client_ip="198.51.100.7")
    services.battle_start(session_key="s4", prompt="five", client_ip="198.51.100.8")
    with pytest.raises(services.BattleError, match="in the last hour"):
        services.battle_start(session_key="s4", prompt="six", client_ip="198.51.100.9")  # same session


def test_client_address_is_stored_only_as_a_keyed_hash(two_models):
    battle = services.battle_start(session_key="s1", prompt="hi", client_ip="203.0.113.9")
    assert battle.client_hash and "203.0.113.9" not in battle.client_hash
    assert battle.client_hash == services.client_hash("203.0.113.9") != services.client_hash("203.0.113.10")
