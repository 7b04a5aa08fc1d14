import json

import pytest
from django.contrib.sessions.models import Session
from django.test import Client, override_settings
from django.urls import reverse

from battles.models import Vote
from tests.factories import cast_vote, make_battle, make_model

pytestmark = pytest.mark.django_db

TEST_IDS = ["prompt", "send", "answer-a", "answer-b", "vote-a", "vote-b", "vote-tie", "vote-bothbad",
            "model-a", "model-b", "new-round", "regenerate", "notice", "blindness"]  # fmt: skip


def _owned_battle(client, **kwargs):
    assert client.post(reverse("battles:session")).status_code == 200  # as the page does before its first battle
    return make_battle(owner=client.session.session_key, **kwargs)


def _vote(client, battle, body) -> object:
    return client.post(reverse("battles:vote", args=[battle.id]), json.dumps(body), content_type="application/json")


def test_arena_page_has_every_test_id_and_stores_no_session(client):
    for _ in range(5):
        page = client.get(reverse("battles:arena"))
        assert page.status_code == 200
    for test_id in TEST_IDS:
        assert f'data-testid="{test_id}"' in page.content.decode()
    assert Session.objects.count() == 0  # a page view costs no row
    assert "csrftoken" in page.cookies


def test_a_session_is_issued_once_and_kept(client):
    client.post(reverse("battles:session"))
    first = client.session.session_key
    client.post(reverse("battles:session"))
    assert client.session.session_key == first and Session.objects.count() == 1


def test_a_made_up_session_cookie_is_replaced_by_one_the_arena_issues(client):
    client.cookies["sessionid"] = "made-up-session-key-of-mine"
    client.post(reverse("battles:session"))
    assert client.session.session_key != "made-up-session-key-of-mine"


@override_settings(SESSIONS_PER_HOUR=2)
def test_new_sessions_per_address_are_limited():
    for _ in range(2):
        assert Client().post(reverse("battles:session")).status_code == 200
    refused = Client().post(reverse("battles:session"))
    assert refused.status_code == 429 and "Too many new visitors" in refused.json()["error"]


def test_vote_api_reveals_both_names(client):
    battle = _owned_battle(client, model_a=make_model("left-model"), model_b=make_model("right-model"))
    response = _vote(client, battle, {"outcome": "b", "turn": 0, "version": 1})
    assert response.status_code == 200
    assert (response.json()["model_a"], response.json()["model_b"]) == ("left-model", "right-model")
    assert Vote.objects.get().outcome == "b"


def test_vote_from_another_session_is_refused_without_naming_the_models(client):
    battle = make_battle(owner="someone-else", model_a=make_model("hidden-a"))
    client.post(reverse("battles:session"))
    response = _vote(client, battle, {"outcome": "a", "turn": 0, "version": 1})
    assert response.status_code == 400
    assert "hidden-a" not in response.content.decode()
    assert not Vote.objects.exists()


def test_a_made_up_session_cookie_equal_to_the_owners_key_owns_nothing_without_the_session_row(client):
    battle = make_battle(owner="guessed-session-key-123")
    client.cookies["sessionid"] = "guessed-session-key-123"  # never issued: no session row behind it
    assert _vote(client, battle, {"outcome": "a", "turn": 0, "version": 1}).status_code == 400
    assert not Vote.objects.exists()


# Also: nested past json's depth, and an integer longer than Python converts (both were a 500).
@pytest.mark.parametrize(
    "body", ["{not json", "[1, 2]", '"a"', "42", "\xff", "[" * 100_000, '{"turn": ' + "1" * 5000 + "}"]
)
def test_vote_with_a_body_that_is_not_a_json_object_gets_a_clear_400(client, body):
    battle = _owned_battle(client)
    response = client.post(reverse("battles:vote", args=[battle.id]), body, content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


def test_battle_detail_does_not_name_models_before_the_vote(client):
    battle = _owned_battle(client, model_a=make_model("anon-a"), model_b=make_model("anon-b"))
    body = client.get(reverse("battles:battle-detail", args=[battle.id])).content.decode()
    assert "anon-a" not in body and "anon-b" not in body


def test_battle_detail_is_only_for_the_session_that_owns_the_battle(client):
    """Anyone holding a battle's id must not read its prompts and answers (nor, once voted, its models)."""
    battle = _owned_battle(client, model_a=make_model("owned-a"), model_b=make_model("owned-b"))
    battle.turns.update(answer_a="A private answer.")
    cast_vote(battle, owner=client.session.session_key)
    assert "owned-a" in client.get(reverse("battles:battle-detail", args=[battle.id])).content.decode()
    stranger = Client()
    assert stranger.post(reverse("battles:session")).status_code == 200  # a session of its own
    response = stranger.get(reverse("battles:battle-detail", args=[battle.id]))
    body = response.content.decode()
    assert response.status_code == 404
    assert "private answer" not in body and "owned-a" not in body and "owned-b" not in body


def test_battle_detail_gives_a_restoring_page_the_answers_as_shown_and_why_a_vote_would_not_count(client):
    """A page reloaded mid-battle rebuilds it from here: each finished answer as the sanitised HTML the stream
    ended with, and the reason its vote will not count when an answer named a model (the stream said so)."""
    battle = _owned_battle(client)
    # Made before the first request: the leak detector reads the registered models once per test.
    leaking = _owned_battle(client, model_b=make_model("gpt-omega", organization="OmegaAI"))
    leaking.turns.update(answer_b="As a model trained by OmegaAI, I think...")
    body = client.get(reverse("battles:battle-detail", args=[battle.id])).json()
    [turn] = body["turns"]
    assert turn["html_a"] == "<p>Answer <strong>A</strong></p>\n" and "html_b" in turn
    assert body["not_blind"] == ""
    body = client.get(reverse("battles:battle-detail", args=[leaking.id])).json()
    assert body["not_blind"] == "An answer said which company made it, so this vote will not count."


def test_vote_needs_the_csrf_token():
    strict = Client(enforce_csrf_checks=True)
    strict.get(reverse("battles:arena"))
    token = strict.cookies["csrftoken"].value
    assert strict.post(reverse("battles:session"), HTTP_X_CSRFTOKEN=token).status_code == 200
    battle = make_battle(owner=strict.session.session_key)
    assert _vote(strict, battle, {"outcome": "a", "turn": 0, "version": 1}).status_code == 403


def test_pages_carry_a_content_security_policy_allowing_only_our_own_scripts(client):
    for name in ("battles:arena", "ratings:leaderboard"):
        page = client.get(reverse(name))
        policy = page["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy
        assert "<script>" not in page.content.decode()  # no inline script to allow


def test_no_hsts_unless_deploying_behind_https(client):
    assert not client.get(reverse("battles:arena"), secure=True).has_header("Strict-Transport-Security")
