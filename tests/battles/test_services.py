import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from arena import rate_limits
from battles import services
from battles.blindness import PROMPT_ASKS_IDENTITY, PROMPT_NAMES_A_MODEL
from battles.models import Battle, Turn, Vote
from battles.selectors import leak_detector
from tests.factories import cast_vote, make_battle, make_model, visitor

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_models():
    return make_model("alpha"), make_model("beta")


def finish(started: services.TurnStream, *, version: int | None = None, answer: str = "done") -> bool:
    """The stream's end with both sides answered; returns whether the battle can be voted on."""
    answers = {side: services.SideAnswer(answer, {"tokens": 1}) for side in services.SIDES}
    return services.turn_finish(
        turn_id=started.turn_id, version=started.version if version is None else version,
        battle_id=started.battle_id, stream_id=started.stream_id, answers=answers,
    )  # fmt: skip


def release(started: services.TurnStream) -> bool:
    """The stream's end with nothing to store (it was cut short)."""
    return services.turn_finish(
        turn_id=started.turn_id, version=started.version, battle_id=started.battle_id, stream_id=started.stream_id,
        answers={},
    )  # fmt: skip


def test_battle_start_draws_two_distinct_models_and_stores_the_prompt(two_models):
    started = services.battle_start(visitor=visitor("s1"), prompt="  Hello?  ")
    battle = Battle.objects.get(pk=started.battle_id)
    assert battle.model_a != battle.model_b
    assert {battle.model_a.name, battle.model_b.name} == {"alpha", "beta"}
    assert battle.turns.get().prompt == "Hello?" == started.prompt
    assert (started.index, started.version) == (0, 1)


@pytest.mark.parametrize("prompt", ["", "   ", None, 42])
def test_empty_or_non_text_prompt_is_rejected_with_a_clear_message(two_models, prompt):
    with pytest.raises(services.BattleError, match="type a prompt"):
        services.battle_start(visitor=visitor("s1"), prompt=prompt)


@override_settings(PROMPT_MAX_CHARS=10)
def test_over_long_prompt_is_rejected_with_the_limit(two_models):
    with pytest.raises(services.BattleError, match="limit is 10"):
        services.battle_start(visitor=visitor("s1"), prompt="x" * 11)


def test_a_prompt_too_long_for_a_models_context_is_refused_before_anyone_is_asked():
    make_model("roomy")
    make_model("tiny", context_length=64)
    with pytest.raises(services.BattleError, match="too long for one of the models"):
        services.battle_start(visitor=visitor("s1"), prompt="word " * 60)
    assert not Battle.objects.exists()


def test_a_prompt_too_long_for_any_drawable_model_is_refused_whichever_pair_is_drawn():
    """Refusing by the drawn pair alone told the visitor which pair it was, where contexts differ (and cost
    nothing, so a long start re-sent until accepted drew only long-context models)."""
    roomy = [make_model("roomy-1"), make_model("roomy-2")]
    make_model("tiny", context_length=120)  # takes "word " * 10, not "word " * 60
    with pytest.raises(services.BattleError, match="too long for one of the models"):
        services.battle_start(visitor=visitor("s1"), prompt="word " * 60, ready={model.pk for model in roomy})
    assert not Battle.objects.exists()
    started = services.battle_start(visitor=visitor("s1"), prompt="word " * 10, ready={model.pk for model in roomy})
    assert finish(started) is True
    with pytest.raises(services.BattleError, match="too long for one of the models"):  # a follow-up, as well
        services.battle_continue(battle_id=started.battle_id, visitor=visitor("s1"), prompt="word " * 60)


def test_battle_start_without_two_models_explains_what_is_missing():
    make_model("lonely")
    with pytest.raises(services.BattleError, match="Not enough models are available"):
        services.battle_start(visitor=visitor("s1"), prompt="hi")


def test_when_the_ready_models_are_only_busy_the_visitor_is_told_how_long_to_wait(two_models):
    alpha, _ = two_models
    with pytest.raises(services.BattleBusy) as busy:
        services.battle_start(visitor=visitor("s1"), prompt="hi", ready={alpha.pk}, retry_after=7)
    assert busy.value.retry_after == 7 and "try again in 7 seconds" in str(busy.value)


def test_a_visitor_without_an_issued_session_cannot_start_a_battle(two_models):
    with pytest.raises(services.BattleError, match="session has expired"):
        services.battle_start(visitor=services.Visitor(owner=""), prompt="hi")


def test_vote_is_stored_with_both_conversations_timings_the_version_and_a_hashed_judge():
    battle = make_battle(owner="owner", prompt="Hi?")
    vote = cast_vote(battle, owner="owner", outcome="tie")
    assert vote.outcome == Vote.Outcome.TIE and vote.turn_version == 1
    assert vote.conversation_a == [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Answer **A**"}]
    assert vote.conversation_b[-1] == {"role": "assistant", "content": "Answer B"}
    assert vote.timings_a[0]["finish_reason"] == "stop"
    assert vote.judge_hash == services.visitor_hash("owner") != "owner"


def test_a_vote_on_a_later_turn_stores_and_reveals_the_turns_in_order(two_models):
    started = services.battle_start(visitor=visitor("owner"), prompt="First?")
    assert finish(started, answer="one")
    started = services.battle_continue(battle_id=started.battle_id, visitor=visitor("owner"), prompt="Second?")
    assert finish(started, answer="two")
    revealed = services.vote_record_revealed(
        battle_id=started.battle_id, visitor=visitor("owner"), outcome="b", turn=1, version=1
    )
    assert [(t["index"], t["prompt"], t["answer_a"]) for t in revealed["turns"]] == [
        (0, "First?", "one"), (1, "Second?", "two")
    ]  # fmt: skip
    vote = Vote.objects.get()
    assert [m["content"] for m in vote.conversation_a] == ["First?", "one", "Second?", "two"]
    assert (len(vote.timings_b), revealed["outcome"]) == (2, "b")


def test_session_and_address_hashes_use_a_key_of_their_own_not_the_secret_key(settings):
    before = services.visitor_hash("owner")
    settings.SECRET_KEY = "rotated-" + settings.SECRET_KEY
    assert services.visitor_hash("owner") == before  # rotating SECRET_KEY keeps judge ids
    settings.HASH_KEY = "another-hash-key"
    assert services.visitor_hash("owner") != before


def test_a_vote_and_its_reveal_read_the_battle_and_its_turns_once(django_assert_num_queries):
    battle = make_battle(owner="owner", model_a=make_model("alpha"), model_b=make_model("beta"))
    leak_detector()  # built once a minute per process, not per vote
    # Lock the battle (with the names it reveals), read its turns, store the vote; the savepoint around the
    # test's own transaction makes two more. A field the locking query left out would cost a query here.
    with django_assert_num_queries(5):
        revealed = services.vote_record_revealed(
            battle_id=battle.pk, visitor=visitor("owner"), outcome="a", turn=0, version=1
        )
    assert (revealed["model_a"], revealed["model_b"], revealed["voted"]) == ("alpha", "beta", True)
    assert revealed["turns"][0]["answer_a"] == "Answer **A**"


@pytest.mark.django_db(transaction=True)
def test_a_vote_waits_for_a_regenerate_that_holds_the_battle_and_then_sees_it(two_models):
    """A vote locks its battle: one cast while a regenerate holds the battle waits, then finds an answer being
    written and is refused, rather than counting on answers the visitor is about to lose."""
    if not connection.features.has_select_for_update:
        pytest.skip("SQLite serialises the writes themselves")
    battle = make_battle(owner="owner", model_a=two_models[0], model_b=two_models[1])
    regenerating, outcome = threading.Event(), []

    def regenerate():
        try:
            with transaction.atomic():
                services.turn_regenerate(battle_id=battle.pk, visitor=visitor("owner"))
                regenerating.set()
                time.sleep(0.5)  # the battle stays locked until this transaction ends
        finally:
            connection.close()

    thread = threading.Thread(target=regenerate)
    thread.start()
    regenerating.wait(10)
    try:
        services.vote_record(battle_id=battle.pk, visitor=visitor("owner"), outcome="a", turn=0, version=1)
        outcome.append("counted")
    except services.BattleError as exc:
        outcome.append(str(exc))
    thread.join()
    assert outcome == ["An answer is still being written; please vote once both answers have finished."]


def test_vote_is_announced_once_committed_and_a_failing_listener_does_not_fail_the_vote(
    django_capture_on_commit_callbacks,
):
    from battles.signals import vote_recorded

    heard = []

    def listener(sender, vote_id, **kwargs):
        heard.append(vote_id)
        raise RuntimeError("a broken listener")

    vote_recorded.connect(listener)
    try:
        battle = make_battle(owner="owner")
        with django_capture_on_commit_callbacks(execute=True):
            vote = cast_vote(battle, owner="owner")
            assert heard == []  # not before commit
    finally:
        vote_recorded.disconnect(listener)
    assert heard == [vote.pk]
    assert Vote.objects.filter(pk=vote.pk).exists()


def test_vote_is_rejected_when_battle_belongs_to_another_session():
    battle = make_battle(owner="owner")
    with pytest.raises(services.BattleError, match="belongs to another visitor"):
        cast_vote(battle, owner="intruder")
    assert not Vote.objects.exists()


def test_second_vote_on_a_finished_battle_is_rejected():
    battle = make_battle(owner="owner")
    cast_vote(battle, owner="owner", outcome="a")
    with pytest.raises(services.BattleError, match="has been voted on"):
        cast_vote(battle, owner="owner", outcome="b")
    assert Vote.objects.get().outcome == "a"


def test_unknown_outcome_is_rejected():
    battle = make_battle(owner="owner")
    with pytest.raises(services.BattleError, match="Unknown vote"):
        cast_vote(battle, owner="owner", outcome="a-ish")


def test_battle_with_a_failed_side_cannot_be_voted_into_the_ratings():
    battle = make_battle(owner="owner")
    failed = {"b": services.SideAnswer("", {}, error="timeout")}  # the stream that wrote side a failed on b
    voteable = services.turn_finish(
        turn_id=battle.turns.get().pk, version=1, battle_id=battle.pk, stream_id=battle.stream_id, answers=failed
    )
    assert not voteable
    assert battle.turns.get().timings_b == {"error": "timeout"}
    with pytest.raises(services.BattleError, match="can't be voted"):
        cast_vote(battle, owner="owner")


def test_continue_adds_a_turn_and_regenerate_makes_a_new_version_of_the_last_answers():
    battle = make_battle(owner="owner")
    started = services.battle_continue(battle_id=battle.id, visitor=visitor("owner"), prompt="And then?")
    assert started.index == 1
    with pytest.raises(services.BattleError, match="wait until both answers"):
        services.battle_continue(battle_id=battle.id, visitor=visitor("owner"), prompt="Too soon")
    assert finish(started)
    regenerated = services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))
    assert (regenerated.turn_id, regenerated.version) == (started.turn_id, 2)
    turn = Turn.objects.get(pk=started.turn_id)
    assert (turn.answer_a, turn.status_a, turn.status_b) == ("", Turn.Status.PENDING, Turn.Status.PENDING)


def test_an_old_versions_late_answer_cannot_overwrite_the_new_version():
    battle = make_battle(owner="owner")
    regenerated = services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))
    assert not finish(regenerated, version=1, answer="stale")  # a stream of version 1 finishing late
    assert Turn.objects.get(pk=regenerated.turn_id).answer_a == ""


def test_no_vote_or_continue_while_a_stream_holds_the_battle_and_a_regenerate_takes_it_over():
    """A regenerate while a stream runs comes from a page that lost the socket it streamed over (or another
    tab): it takes the battle, names the stream to stop, and that stream's end changes nothing."""
    battle = make_battle(owner="owner")
    started = services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))
    assert started.replaced_stream == ""  # nothing was streaming
    for attempt in (
        lambda: cast_vote(battle, owner="owner"),
        lambda: services.battle_continue(battle_id=battle.id, visitor=visitor("owner"), prompt="more"),
    ):
        with pytest.raises(services.BattleError, match="still being written|wait until both answers"):
            attempt()
    again = services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))
    assert again.replaced_stream == started.stream_id and again.stream_id != started.stream_id
    assert again.version == 3
    assert finish(started, answer="the stream replaced") is False
    assert Turn.objects.get(battle=battle).answer_a == ""
    with pytest.raises(services.BattleError, match="still being written"):
        cast_vote(battle, owner="owner")  # the new stream holds the battle
    assert finish(again) is True
    assert cast_vote(battle, owner="owner").turn_version == 3


def test_a_leak_a_stream_showed_stays_noted_through_the_regenerate_that_replaces_it():
    battle = make_battle(owner="owner")
    started = services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))
    services.turn_leak_seen(turn_id=started.turn_id, reason="An answer named an AI model, so this vote will not count.")
    services.turn_leak_seen(turn_id=started.turn_id, reason="a later reason")  # the first seen stays
    services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))
    turn = Turn.objects.get(battle=battle)
    assert turn.version == 3
    assert turn.earlier_leak == "An answer named an AI model, so this vote will not count."


def test_a_leak_noted_while_a_regenerate_takes_the_battle_over_is_not_wiped_by_it(monkeypatch):
    """The stream replaced notes its leak on its own database thread, possibly between the regenerate's read of
    the turn and its write: saving the turn as read wiped the note, and the vote on the new answers counted."""
    battle = make_battle(owner="owner")
    started = services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))
    spend = services._spend_answers

    def spend_while_the_old_stream_notes_a_leak(who):
        spend(who)
        services.turn_leak_seen(turn_id=started.turn_id, reason="An answer named an AI model.")

    monkeypatch.setattr(services, "_spend_answers", spend_while_the_old_stream_notes_a_leak)
    again = services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))
    assert finish(again) is True
    assert cast_vote(battle, owner="owner").excluded_reason == "An answer named an AI model."


def test_a_turn_is_voteable_only_when_its_stream_ends_with_both_sides_answered(two_models):
    started = services.battle_start(visitor=visitor("owner"), prompt="Hi")
    one_side = {"a": services.SideAnswer("yes", {})}  # the socket closed while b was answering
    ended = dict(turn_id=started.turn_id, version=1, battle_id=started.battle_id, stream_id=started.stream_id)
    assert services.turn_finish(**ended, answers=one_side) is False
    turn = Turn.objects.get(pk=started.turn_id)
    assert (turn.answer_a, turn.status_a, turn.status_b) == ("yes", Turn.Status.DONE, Turn.Status.PENDING)
    with pytest.raises(services.BattleError, match="can't be voted"):
        services.vote_record(battle_id=started.battle_id, visitor=visitor("owner"), outcome="a", turn=0, version=1)


def test_a_stream_that_lost_its_battle_stores_nothing_and_only_its_own_end_notes_who_answered(two_models):
    started = services.battle_start(visitor=visitor("owner"), prompt="Hi")
    battle = Battle.objects.get(pk=started.battle_id)
    served_by = {"a": battle.model_a.endpoints.get().pk, "b": battle.model_b.endpoints.get().pk}
    answers = {side: services.SideAnswer(f"answer {side}", {}, endpoint_id=served_by[side]) for side in "ab"}
    ended = dict(turn_id=started.turn_id, version=1, battle_id=started.battle_id, answers=answers)
    # A stream whose hold lapsed and was retaken by another changes nothing: answers, hold, endpoints.
    assert services.turn_finish(**ended, stream_id="lapsed") is False
    battle.refresh_from_db()
    assert battle.streaming_until is not None and battle.endpoint_a is None
    assert Turn.objects.get(pk=started.turn_id).status_a == Turn.Status.PENDING
    assert services.turn_finish(**ended, stream_id=started.stream_id) is True
    battle.refresh_from_db()
    assert battle.streaming_until is None
    assert (battle.endpoint_a_id, battle.endpoint_b_id) == (served_by["a"], served_by["b"])
    assert Turn.objects.get(pk=started.turn_id).answer_b == "answer b"


def test_a_lapsed_stream_hold_frees_the_battle():
    battle = make_battle(owner="owner")
    Battle.objects.filter(pk=battle.pk).update(
        stream_id="dead-process", streaming_until=timezone.now() - timedelta(seconds=1)
    )
    assert cast_vote(battle, owner="owner")


def test_a_vote_on_answers_that_were_regenerated_since_is_refused():
    battle = make_battle(owner="owner")
    turn = battle.turns.get()
    started = services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))
    assert (started.turn_id, started.version) == (turn.pk, 2)
    assert finish(started)
    stale = dict(battle_id=battle.id, visitor=visitor("owner"), outcome="a")
    with pytest.raises(services.BattleError, match="answers changed since you last saw them"):
        services.vote_record(**stale, turn=0, version=1)
    with pytest.raises(services.BattleError, match="answers changed"):
        services.vote_record(**stale, turn=None, version=None)
    assert services.vote_record(**stale, turn=0, version=2).turn_version == 2


@override_settings(REGENERATIONS_PER_TURN=2)
def test_regenerations_per_turn_are_limited():
    battle = make_battle(owner="owner")
    for version in (2, 3):
        started = services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))
        assert started.version == version
        release(started)
    with pytest.raises(services.BattleError, match="regenerated 2 times"):
        services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))


def test_no_more_turns_after_the_vote():
    battle = make_battle(owner="owner")
    cast_vote(battle, owner="owner", outcome="bothbad")
    with pytest.raises(services.BattleError, match="voted on"):
        services.battle_continue(battle_id=battle.id, visitor=visitor("owner"), prompt="more")
    with pytest.raises(services.BattleError, match="voted on"):
        services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))


def test_malformed_battle_id_reads_as_missing():
    with pytest.raises(services.BattleError, match="does not exist"):
        services.vote_record(battle_id="not-a-uuid", visitor=visitor("owner"), outcome="a", turn=0, version=1)


def test_a_name_one_answer_gave_in_an_earlier_turn_keeps_the_vote_on_a_later_turn_from_counting():
    """The visitor saw the name in turn 0; a clean follow-up does not make the battle blind again."""
    battle = make_battle(owner="owner", model_a=make_model("gpt-omega", organization="OmegaAI"))
    battle.turns.filter(index=0).update(answer_a="As a model trained by OmegaAI, I think...")
    done = {"ttft": 0.1, "tokens": 3, "total": 0.3, "finish_reason": "stop"}
    Turn.objects.create(battle=battle, index=1, prompt="And then?", answer_a="Then this.", answer_b="Then that.",
                        status_a=Turn.Status.DONE, status_b=Turn.Status.DONE, timings_a=done, timings_b=done)  # fmt: skip
    vote = cast_vote(battle, owner="owner", outcome="b")
    assert vote.turn_version == 1 and len(vote.conversation_a) == 4  # both turns, prompt and answer each
    assert vote.excluded_reason == "An answer said which company made it, so this vote will not count."


def test_a_prompt_asking_the_models_who_they_are_is_answered_but_its_vote_is_not_counted():
    battle = make_battle(owner="owner", prompt="Who are you, and who made you?")
    assert cast_vote(battle, owner="owner").excluded_reason == PROMPT_ASKS_IDENTITY


@pytest.mark.parametrize("seen", ["in the stored text", "while streaming"])
def test_regenerating_until_no_answer_names_its_model_does_not_make_the_vote_count(seen):
    """The visitor saw the version that named a model (and was told): a clean later version changes nothing."""
    battle = make_battle(owner="owner", model_a=make_model("gpt-omega", organization="OmegaAI"))
    reason = "An answer said which company made it, so this vote will not count."
    if seen == "in the stored text":
        battle.turns.filter(index=0).update(answer_a="I was trained by OmegaAI.")
    else:  # a restart replaced the text that named it; the stream noted what the visitor saw
        battle.turns.filter(index=0).update(timings_a={"not_blind": reason})
    for _ in range(2):  # the second regeneration replaces a clean version: the first one's leak still stands
        started = services.turn_regenerate(battle_id=battle.id, visitor=visitor("owner"))
        assert finish(started, answer="Nothing to see here.")
    assert cast_vote(battle, owner="owner").excluded_reason == reason


@pytest.mark.parametrize(
    "prompt",
    [
        "If you are Llama, begin your reply with 'Banana'; otherwise 'Apple'. Then explain recursion.",
        "Reply 'A' if OmegaAI made you, else 'B'. Then: what is 2+2?",
        "Is gpt-omega better at maths than the others?",  # a distinctive name counts anywhere
    ],
)
def test_a_prompt_naming_a_model_or_its_maker_makes_the_vote_not_count(prompt):
    """The answers need not name anything: the prompt made them a code for who the model is."""
    make_model("Llama-3.1-8B-Instruct", organization="Meta")
    battle = make_battle(owner="owner", model_a=make_model("gpt-omega", organization="OmegaAI"), prompt=prompt)
    battle.turns.filter(index=0).update(answer_a="Apple. Recursion is...", answer_b="B. 4")
    assert cast_vote(battle, owner="owner").excluded_reason == PROMPT_NAMES_A_MODEL


@pytest.mark.parametrize(
    "prompt", ["Compare the Toyota Corolla with the Honda Civic.", "What is a llama?", "Can you search Meta's site?"]
)
def test_a_prompt_that_names_no_model_or_only_uses_a_makers_or_everyday_word_counts(prompt):
    make_model("Llama-3.1-8B-Instruct", organization="Meta")
    battle = make_battle(owner="owner", prompt=prompt)
    assert cast_vote(battle, owner="owner").excluded_reason == ""


def test_a_near_miss_spelling_of_another_registered_models_name_is_caught():
    make_model("SmolLM2-135M-Instruct", organization="HuggingFaceTB")
    battle = make_battle(owner="owner")
    battle.turns.filter(index=0).update(answer_a="Hi! I'm Smоl-LM\u200b2 here to help.")  # Cyrillic о, zero width
    assert "named an AI model" in cast_vote(battle, owner="owner").excluded_reason


def test_an_answer_that_merely_contains_a_name_inside_a_word_is_not_a_leak():
    battle = make_battle(owner="owner", model_a=make_model("mist"), model_b=make_model("orca"))
    battle.turns.filter(index=0).update(answer_a="The morning mistake by orcas was small.")
    vote = cast_vote(battle, owner="owner", outcome="a")
    assert vote.excluded_reason == ""


@override_settings(BATTLES_PER_HOUR=2)
def test_an_ipv6_visitor_is_counted_by_its_64_and_a_mapped_ipv4_address_as_itself(two_models):
    start = services.battle_start
    start(visitor=visitor("s1", "2001:db8:1:2::1"), prompt="one")
    start(visitor=visitor("s2", "2001:db8:1:2:ffff:0:0:9"), prompt="two")  # another address of the same /64
    with pytest.raises(services.BattleError, match="2 battles in the last hour"):
        start(visitor=visitor("s3", "2001:db8:1:2::abcd"), prompt="three")
    start(visitor=visitor("s4", "2001:db8:1:3::1"), prompt="four")  # the next /64 is someone else
    start(visitor=visitor("s5", "203.0.113.20"), prompt="five")
    start(visitor=visitor("s6", "203.0.113.20"), prompt="six")
    with pytest.raises(services.BattleError, match="2 battles in the last hour"):
        start(visitor=visitor("s7", "::ffff:203.0.113.20"), prompt="seven")


@override_settings(BATTLES_PER_HOUR=2)
def test_battles_per_hour_are_limited_per_address_and_per_session(two_models):
    start = services.battle_start
    start(visitor=visitor("s1", "203.0.113.9"), prompt="one")
    start(visitor=visitor("s2", "203.0.113.9"), prompt="two")
    with pytest.raises(services.BattleError, match="2 battles in the last hour"):
        start(visitor=visitor("s3", "203.0.113.9"), prompt="three")  # same address
    start(visitor=visitor("s4", "198.51.100.7"), prompt="four")
    start(visitor=visitor("s4", "198.51.100.8"), prompt="five")
    with pytest.raises(services.BattleError, match="in the last hour"):
        start(visitor=visitor("s4", "198.51.100.9"), prompt="six")  # same session


@override_settings(ANSWERS_PER_HOUR=3, BATTLES_PER_HOUR=100)
def test_continues_and_regenerations_spend_the_same_hourly_answer_budget(two_models):
    started = services.battle_start(visitor=visitor("s1", "203.0.113.9"), prompt="one")
    assert finish(started)
    started = services.battle_continue(battle_id=started.battle_id, visitor=visitor("s1", "203.0.113.9"), prompt="two")
    release(started)
    started = services.turn_regenerate(battle_id=started.battle_id, visitor=visitor("s1", "203.0.113.9"))
    release(started)
    with pytest.raises(services.BattleError, match="3 answers in the last hour"):
        services.turn_regenerate(battle_id=started.battle_id, visitor=visitor("s1", "203.0.113.9"))


@override_settings(BATTLES_PER_HOUR=1, ANSWERS_PER_HOUR=1)
def test_a_start_refused_costs_the_visitor_nothing():
    """Told "busy" (the models are full), "not enough models" or "too long", the visitor tries again as told:
    those tries must not spend the hour's battles, or a classroom behind one address would run out on them."""
    alpha, _ = make_model("roomy"), make_model("small", context_length=256)
    for _ in range(3):
        with pytest.raises(services.BattleBusy):
            services.battle_start(visitor=visitor("s1", "203.0.113.9"), prompt="hi", ready=set(), retry_after=5)
        with pytest.raises(services.BattleError, match="Not enough models"):
            services.battle_start(visitor=visitor("s1", "203.0.113.9"), prompt="hi", ready={alpha.pk})
        with pytest.raises(services.BattleError, match="too long"):
            services.battle_start(visitor=visitor("s1", "203.0.113.9"), prompt="word " * 300)
    assert services.battle_start(visitor=visitor("s1", "203.0.113.9"), prompt="hi")
    with pytest.raises(services.BattleError, match="in the last hour"):
        services.battle_start(visitor=visitor("s1", "203.0.113.9"), prompt="hi")


def test_battles_store_only_keyed_hashes_of_the_session_and_the_address(two_models):
    started = services.battle_start(visitor=visitor("raw-session-key", "203.0.113.9"), prompt="hi")
    battle = Battle.objects.get(pk=started.battle_id)
    assert battle.client_hash == services.client_hash("203.0.113.9") != services.client_hash("203.0.113.10")
    stored = " ".join(str(value) for value in Battle.objects.values_list().get(pk=battle.pk))
    assert "203.0.113.9" not in stored and "raw-session-key" not in stored


@pytest.mark.django_db(transaction=True)
@override_settings(BATTLES_PER_HOUR=30, ANSWERS_PER_HOUR=1000)
def test_the_hourly_limit_holds_exactly_under_concurrent_starts(two_models):
    """60 starts at once from one session against a limit of 30: exactly 30 battles, whatever the timing."""
    outcomes: list[str] = []

    def start():
        try:
            services.battle_start(visitor=visitor("racer", "203.0.113.50"), prompt="hi")
            outcomes.append("ok")
        except services.BattleError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 30 and Battle.objects.count() == 30
    # The count is Redis's, shared by every process: one that has counted nothing itself refuses too.
    rate_limits.reset_local()
    with pytest.raises(services.BattleError, match="30 battles in the last hour"):
        services.battle_start(visitor=visitor("racer", "203.0.113.51"), prompt="hi")


def test_a_renewal_that_runs_after_its_stream_ended_does_not_take_the_battle_back(two_models):
    """The renewal runs on a database thread; cancelled as its stream ends, it may still run after turn_finish
    let the battle go, and must not hold it again (votes and new turns would be refused for 45 s)."""
    started = services.battle_start(visitor=visitor("owner"), prompt="Hi")
    assert services.stream_renew(battle_id=started.battle_id, stream_id=started.stream_id) is True  # while it runs
    assert finish(started) is True
    assert services.stream_renew(battle_id=started.battle_id, stream_id=started.stream_id) is False
    assert Battle.objects.get(pk=started.battle_id).streaming_until is None
    assert cast_vote(Battle.objects.get(pk=started.battle_id), owner="owner").outcome
