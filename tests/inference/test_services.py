import random
from collections import Counter

import pytest

from inference.models import ArenaModel, Endpoint
from inference.services import (
    NotEnoughModels,
    battle_pair_draw,
    default_models_register,
    endpoint_check,
    model_register,
)
from tests.factories import make_model

pytestmark = pytest.mark.django_db


def test_pair_draw_returns_two_distinct_active_models():
    make_model("one"), make_model("two"), make_model("off", is_active=False)
    rng = random.Random(1)
    for _ in range(50):
        a, b = battle_pair_draw(rng=rng)
        assert a != b
        assert "off" not in {a.name, b.name}


def test_pair_draw_follows_sampling_weights_and_randomises_sides():
    make_model("heavy", sampling_weight=8.0), make_model("light-1"), make_model("light-2")
    rng = random.Random(7)
    draws = [battle_pair_draw(rng=rng) for _ in range(1000)]
    appearances = Counter(m.name for pair in draws for m in pair)
    left = Counter(a.name for a, _ in draws)
    assert appearances["heavy"] > 0.9 * len(draws)  # heavy is in nearly every battle
    assert 0.4 < left["heavy"] / appearances["heavy"] < 0.6  # and on either side equally


def test_pair_draw_follows_the_newest_sampling_plan_within_the_ready_models():
    from inference.models import SamplingPlan

    one, two, three = make_model("one"), make_model("two"), make_model("three")
    SamplingPlan.objects.create(
        pair_probabilities=[[one.pk, two.pk, 0.9], [one.pk, three.pk, 0.1], [two.pk, three.pk, 0]]
    )
    rng = random.Random(3)
    pairs = Counter(frozenset(m.name for m in battle_pair_draw(rng=rng)) for _ in range(500))
    assert pairs[frozenset({"one", "two"})] > 400 and pairs[frozenset({"two", "three"})] == 0
    # With "two" busy, only the pair the plan allows among the ready ones is drawn.
    ready = {one.pk, three.pk}
    assert {frozenset(m.name for m in battle_pair_draw(ready=ready, rng=rng)) for _ in range(20)} == {
        frozenset({"one", "three"})
    }


def test_a_model_added_after_the_plan_is_drawn_from_the_start():
    from inference.models import SamplingPlan

    one, two = make_model("one"), make_model("two")
    SamplingPlan.objects.create(pair_probabilities=[[one.pk, two.pk, 1.0]])
    make_model("newcomer")
    rng = random.Random(5)
    drawn = Counter(m.name for _ in range(300) for m in battle_pair_draw(rng=rng))
    assert drawn["newcomer"] > 100


def test_retired_models_are_never_drawn():
    from django.utils import timezone

    make_model("one"), make_model("two"), make_model("old", retired_at=timezone.now())
    rng = random.Random(2)
    assert not any("old" in {a.name, b.name} for a, b in (battle_pair_draw(rng=rng) for _ in range(60)))


def test_pair_draw_skips_models_without_an_active_endpoint():
    make_model("a"), make_model("b", endpoint=False)
    with pytest.raises(NotEnoughModels):
        battle_pair_draw()


def test_registering_the_same_model_twice_adds_a_replica():
    model_register(name="m", base_url="http://h1/v1", served_model_id="m")
    model_register(name="m", base_url="http://h2/v1", served_model_id="m")
    assert ArenaModel.objects.count() == 1
    assert Endpoint.objects.filter(model__name="m").count() == 2


def test_default_models_are_two_different_real_models_honestly_labelled_with_the_same_settings():
    smollm, gemma = default_models_register()
    assert smollm.name == "SmolLM2-135M-Instruct" and smollm.weights == "bundled:smollm2-135m-instruct"
    assert "base model" in gemma.name and gemma.weights == "bundled:gemma-3-270m"
    assert gemma.chat_template == "vicuna_v1.1"  # the Vicuna path, run for real
    assert (smollm.temperature, smollm.top_p) == (gemma.temperature, gemma.top_p)
    assert len({m.endpoints.get().port for m in (smollm, gemma)}) == 2
    for model in (smollm, gemma):  # no default system prompt names or describes a model
        assert not any(
            word in model.system_prompt.lower() for word in ("smol", "gemma", "google", "hugging", "precise")
        )
    assert smollm.system_prompt  # without one, SmolLM2's own template would name it


@pytest.mark.usefixtures("pooled_http_closed")
async def test_check_of_a_down_endpoint_reports_the_error():
    endpoint = Endpoint(base_url="http://127.0.0.1:9/v1", served_model_id="x")
    result = await endpoint_check(endpoint, timeout=2)
    assert not result.ok
    assert "unreachable" in result.error


@pytest.mark.llama
@pytest.mark.usefixtures("pooled_http_closed")
async def test_check_of_the_real_llama_server_reports_latency(llama_server):
    result = await endpoint_check(Endpoint(base_url=llama_server, served_model_id="smollm2-135m-instruct"))
    assert result.ok, result.error
    assert 0 < result.latency < 30
    assert result.reply
