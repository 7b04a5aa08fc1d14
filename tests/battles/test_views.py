import json

import pytest
from django.urls import reverse

from battles.models import Vote
from tests.factories import make_battle, make_model

pytestmark = pytest.mark.django_db

TEST_IDS = ["prompt", "send", "answer-a", "answer-b", "vote-a", "vote-b", "vote-tie", "vote-bothbad",
            "model-a", "model-b", "new-round", "regenerate"]  # fmt: skip


def _owned_battle(client, **kwargs):
    client.get(reverse("battles:arena"))  # creates the session
    return make_battle(session_key=client.session.session_key, **kwargs)


def test_arena_page_has_every_test_id_and_starts_a_session(client):
    page = client.get(reverse("battles:arena"))
    assert page.status_code == 200
    for test_id in TEST_IDS:
        assert f'data-testid="{test_id}"' in page.content.decode()
    assert client.session.session_key


def test_vote_api_reveals_both_names(client):
    battle = _owned_battle(client, model_a=make_model("left-model"), model_b=make_model("right-model"))
    response = client.post(
        reverse("battles:vote", args=[battle.id]), json.dumps({"outcome": "b"}), content_type="application/json"
    )
    assert response.status_code == 200
    assert (response.json()["model_a"], response.json()["model_b"]) == ("left-model", "right-model")
    assert Vote.objects.get().outcome == "b"


def test_vote_from_another_session_is_refused_without_naming_the_models(client):
    battle = make_battle(session_key="someone-else", model_a=make_model("hidden-a"))
    client.get(reverse("battles:arena"))
    response = client.post(
        reverse("battles:vote", args=[battle.id]), json.dumps({"outcome": "a"}), content_type="application/json"
    )
    assert response.status_code == 400
    assert "hidden-a" not in response.content.decode()
    assert not Vote.objects.exists()


def test_vote_with_bad_json_gets_a_clear_error(client):
    battle = _owned_battle(client)
    response = client.post(reverse("battles:vote", args=[battle.id]), "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


def test_battle_detail_does_not_name_models_before_the_vote(client):
    battle = _owned_battle(client, model_a=make_model("anon-a"), model_b=make_model("anon-b"))
    body = client.get(reverse("battles:battle-detail", args=[battle.id])).content.decode()
    assert "anon-a" not in body and "anon-b" not in body


def test_vote_needs_the_csrf_token(client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    battle = _owned_battle(strict)
    response = strict.post(
        reverse("battles:vote", args=[battle.id]), json.dumps({"outcome": "a"}), content_type="application/json"
    )
    assert response.status_code == 403
