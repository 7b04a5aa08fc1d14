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
    draws = [battle_pair_draw(rng=rng) for _ in range(3000)]
    appearances = Counter(m.name for pair in draws for m in pair)
    left = Counter(a.name for a, _ in draws)
    assert appearances["heavy"] > 0.9 * len(draws)  # heavy is in nearly every battle
    assert 0.4 < left["heavy"] / appearances["heavy"] < 0.6  # and on either side equally


def test_pair_draw_skips_models_without_an_active_endpoint():
    make_model("a"), make_model("b", endpoint=False)
    with pytest.raises(NotEnoughModels):
        battle_pair_draw()


def test_registering_the_same_model_twice_adds_a_replica():
    model_register(name="m", base_url="http://h1/v1", served_model_id="m")
    model_register(name="m", base_url="http://h2/v1", served_model_id="m")
    assert ArenaModel.objects.count() == 1
    assert Endpoint.objects.filter(model__name="m").count() == 2


def test_default_models_are_two_honestly_labelled_smollm2_variants():
    models = default_models_register()
    assert len(models) == 2
    assert all("SmolLM2-135M" in m.name for m in models)
    assert len({m.temperature for m in models}) == 2
    assert len({m.system_prompt for m in models}) == 2
    assert len({m.endpoints.get().port for m in models}) == 2


async def test_check_of_a_down_endpoint_reports_the_error(scripted_api):
    endpoint = Endpoint(base_url="http://127.0.0.1:9/v1", served_model_id="x")
    result = await endpoint_check(endpoint, timeout=2)
    assert not result.ok
    assert "unreachable" in result.error


@pytest.mark.llama
async def test_check_of_the_real_llama_server_reports_latency(llama_server):
    result = await endpoint_check(Endpoint(base_url=llama_server, served_model_id="smollm2-135m-instruct"))
    assert result.ok, result.error
    assert 0 < result.latency < 30
    assert result.reply
